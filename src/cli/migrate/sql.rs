use clap::Args as ClapArgs;

use super::runner::RunnerArgs;
use crate::{
    cli::outcome::Outcome,
    migrations::{MigrationSet, offline},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The version the database is at (default 0: empty).
    #[arg(long, default_value_t = 0)]
    pub(crate) from: i64,
    /// The version to reach (default: the newest). Below --from prints a downgrade.
    #[arg(long)]
    pub(crate) to: Option<i64>,
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

pub(crate) fn run(args: Args, set: &MigrationSet) -> anyhow::Result<Outcome> {
    print!(
        "{}",
        offline::render(set, args.from, args.to.unwrap_or(set.head()), &args.runner.options(None)?)?
    );
    Ok(Outcome::Success)
}
