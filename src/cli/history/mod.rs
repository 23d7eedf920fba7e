//! `cabinet-db history`: maintenance of the change history (reading it is `sites history`
//! and `users history`).

mod prune;

use clap::{Args, Subcommand};

use super::outcome::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Example (as the owner role or a superuser; sites' history is kept forever unless pruned):
  cabinet-db history prune --before 2025-01-01T00:00:00Z"
)]
pub(crate) struct HistoryArgs {
    #[command(subcommand)]
    pub(crate) command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// Remove history older than a date (each record keeps its newest version); recorded.
    Prune(prune::Args),
}

pub(crate) async fn run(args: HistoryArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        HistoryCommand::Prune(a) => prune::run(a, json).await,
    }
}
