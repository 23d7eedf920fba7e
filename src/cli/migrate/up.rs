use clap::Args as ClapArgs;

use super::{runner::RunnerArgs, runner::print_steps};
use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    migrations::{MigrationSet, runner},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Stop after this version (default: the newest).
    #[arg(long)]
    pub(crate) to: Option<i64>,
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

pub(crate) async fn run(args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let steps =
        runner::up(args.connection.url()?, set, args.to, &args.runner.options(Some(&args.connection))?)
            .await?;
    if json {
        output::print_json(&steps)?;
    } else if steps.is_empty() {
        outln!("Nothing to apply: every migration up to {:04} is applied.", args.to.unwrap_or(set.head()))?;
    } else {
        print_steps(&steps, "applied")?;
    }
    Ok(Outcome::Success)
}
