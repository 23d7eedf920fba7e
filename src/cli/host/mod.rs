//! `cabinet-db host …`: this Debian host as a whole.

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;

/// `cabinet-db host apply`.
pub(crate) mod apply;

#[derive(Debug, Args)]
pub(crate) struct HostArgs {
    #[command(subcommand)]
    pub(crate) command: HostCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Bring this Debian host to the designed state from /etc/cabinet-db/cabinet-db.toml:
    /// server settings, client authentication, firewall, schema, roles, backups, timers, audit.
    Apply(apply::Args),
}

pub(crate) async fn run(args: HostArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        HostCommand::Apply(args) => apply::run(args, json).await,
    }
}
