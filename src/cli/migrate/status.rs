use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    migrations::{MigrationSet, runner},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

/// Exit 0 when the database can be migrated (pending migrations are not a problem), 1 when
/// it has problems (an edited, unknown or out-of-order migration).
pub(crate) async fn run(args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let assessment = runner::status(args.connection.url()?, set).await?;
    let outcome = if assessment.problems.is_empty() { Outcome::Success } else { Outcome::CheckFailed };
    if json {
        output::print_json(&assessment)?;
        return Ok(outcome);
    }
    match assessment.current {
        Some(v) => {
            let name = set.get(v).map_or("(unknown)", |m| m.name.as_str());
            outln!("current: {v:04} {name}")?;
        }
        None => outln!("current: none (no migration applied)")?,
    }
    outln!("head:    {:04}", assessment.head)?;
    if assessment.pending.is_empty() {
        outln!("pending: none")?;
    } else {
        outln!("pending:")?;
        for v in &assessment.pending {
            if let Some(m) = set.get(*v) {
                outln!("  {}", m.up.file)?;
            }
        }
    }
    for problem in &assessment.problems {
        outln!("problem: {problem}")?;
    }
    Ok(outcome)
}
