use clap::Args as ClapArgs;

use crate::{
    cli::{
        args::{ConnectionArgs, parse_time},
        outcome::Outcome,
        output,
        output::outln,
    },
    history,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Remove what was recorded before this time (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub(crate) before: chrono::DateTime<chrono::Utc>,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let mut conn = args.connection.connect("cabinet-db history").await?;
    let removed = history::prune(&mut conn, None, args.before).await.map_err(|e| {
        let denied = matches!(&e, crate::data::DataError::Query(s) if crate::db::sqlstate(s).as_deref() == Some("42501"));
        if denied {
            anyhow::anyhow!("only the owner role or a superuser may prune the history (this role may not): {e}")
        } else {
            anyhow::Error::new(e)
        }
    })?;
    if json {
        output::print_json(&serde_json::json!({ "removed": removed, "before": args.before }))?;
    } else {
        outln!(
            "removed {removed} history rows recorded before {} (each record keeps its newest version); the prune is recorded in history_prunes",
            args.before.to_rfc3339()
        )?;
    }
    Ok(Outcome::Success)
}
