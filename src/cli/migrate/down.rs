use clap::Args as ClapArgs;

use super::{runner::RunnerArgs, runner::print_steps};
use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    migrations::{
        MigrationSet,
        runner::{self, DownTarget},
    },
};

#[derive(Debug, ClapArgs)]
#[group(id = "target", required = true, multiple = false, args = ["to", "steps", "all"])]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Revert everything newer than this version (0 reverts all).
    #[arg(long)]
    pub(crate) to: Option<i64>,
    /// Revert the newest N applied migrations.
    #[arg(long)]
    pub(crate) steps: Option<u32>,
    /// Revert every applied migration (drops the application tables and their data).
    #[arg(long)]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

pub(crate) async fn run(args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let target = match (args.to, args.steps) {
        (Some(v), _) => DownTarget::To(v),
        (None, Some(n)) => DownTarget::Steps(n),
        (None, None) => DownTarget::All,
    };
    let steps =
        runner::down(args.connection.url()?, set, target, &args.runner.options(Some(&args.connection))?)
            .await?;
    if json {
        output::print_json(&steps)?;
    } else if steps.is_empty() {
        outln!("Nothing to revert.")?;
    } else {
        print_steps(&steps, "reverted")?;
    }
    Ok(Outcome::Success)
}
