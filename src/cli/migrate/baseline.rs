use clap::Args as ClapArgs;

use super::runner::RunnerArgs;
use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    migrations::{
        MigrationSet,
        baseline::{self, BaselineOptions},
    },
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Record migrations up to this version as applied (default: the newest).
    #[arg(long)]
    pub(crate) version: Option<i64>,
    /// The database was created by Alembic/SQLAlchemy: convert its types, add the models'
    /// constraints and drop alembic_version, in one transaction.
    #[arg(long)]
    pub(crate) from_alembic: bool,
    /// The time zone naive `timestamp` values were written in (for --from-alembic).
    #[arg(long, default_value = "UTC")]
    pub(crate) assume_timezone: String,
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

pub(crate) async fn run(args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let options = BaselineOptions {
        version: args.version,
        from_alembic: args.from_alembic,
        assume_timezone: args.assume_timezone,
    };
    let report = baseline::baseline(
        args.connection.url()?,
        set,
        &options,
        &args.runner.options(Some(&args.connection))?,
    )
    .await?;
    if json {
        output::print_json(&report)?;
        return Ok(Outcome::Success);
    }
    if let Some(revision) = &report.alembic_revision {
        outln!("Alembic revision: {revision}")?;
    }
    if report.differences.is_empty() {
        outln!("The schema matched the models.")?;
    } else {
        outln!("Differences from the models found:")?;
        for d in &report.differences {
            outln!("  - {d}")?;
        }
    }
    if !report.statements.is_empty() {
        outln!("Converted with:")?;
        for s in &report.statements {
            outln!("  {}", s.replace('\n', "\n  "))?;
        }
    }
    outln!("Recorded migrations up to {:04} as applied.", report.version)?;
    Ok(Outcome::Success)
}
