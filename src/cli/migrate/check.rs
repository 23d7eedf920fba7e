use clap::Args as ClapArgs;
use sqlx::Connection;

use crate::cli::output::outln;
use crate::{
    audit,
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    db, schema_diff,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let mut conn = db::connect(args.connection.url()?, "cabinet-db migrate check").await?;
    let differences = schema_diff::drift(&mut conn).await?;
    // The history tells the whole story: no version missing, no record written past it.
    // The history is read only on the models' schema: its checks read row data, and a column of
    // a type someone made could carry their cast into this session.
    let history =
        if differences.is_empty() { audit::history::findings(&mut conn).await? } else { Vec::new() };
    conn.close().await?;
    let clean = differences.is_empty() && history.is_empty();
    if json {
        output::print_json(
            &serde_json::json!({ "clean": clean, "differences": differences, "history": history }),
        )?;
        return Ok(if clean { Outcome::Success } else { Outcome::CheckFailed });
    }
    if !history.is_empty() {
        outln!("The history does not tell the whole story ({} findings):", history.len())?;
        for finding in &history {
            outln!("  - {finding}")?;
        }
    }
    if differences.is_empty() {
        outln!("No drift: the database matches the models.")?;
    } else {
        outln!("The database differs from the models in {} ways:", differences.len())?;
        for d in &differences {
            outln!("  - {d}")?;
        }
        outln!("cabinet-db migrate diff prints SQL that would fix this (a draft for a new migration).")?;
    }
    Ok(if clean { Outcome::Success } else { Outcome::CheckFailed })
}
