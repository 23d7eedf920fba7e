use crate::cli::output::outln;
use clap::Args as ClapArgs;
use sqlx::Connection;

use crate::{
    cli::{ConnectionArgs, Outcome, output},
    db, schema_diff,
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let mut conn = db::connect(args.connection.url()?, "cabinet-db migrate check").await?;
    let differences = schema_diff::drift(&mut conn).await?;
    conn.close().await?;
    if json {
        output::print_json(
            &serde_json::json!({ "clean": differences.is_empty(), "differences": differences }),
        )?;
    } else if differences.is_empty() {
        outln!("No drift: the database matches the models.")?;
    } else {
        outln!("The database differs from the models in {} ways:", differences.len())?;
        for d in &differences {
            outln!("  - {d}")?;
        }
        outln!("cabinet-db migrate diff prints SQL that would fix this (a draft for a new migration).")?;
    }
    Ok(if differences.is_empty() { Outcome::Success } else { Outcome::CheckFailed })
}
