//! `cabinet-db config …`: the configuration file (`/etc/cabinet-db/cabinet-db.toml`).

use std::path::Path;

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;

/// `cabinet-db config show`.
pub(crate) mod show;

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    pub(crate) command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print every setting in effect, its value and where it came from (environment, the
    /// file and its line, or the built-in default); passwords are never shown.
    Show(show::Args),
}

/// `cli` is the whole command line's definition (`Cli::command()`): the settings it shows are
/// its options.
pub(crate) fn run(
    args: ConfigArgs,
    cli: &clap::Command,
    config: &Path,
    json: bool,
) -> anyhow::Result<Outcome> {
    match args.command {
        ConfigCommand::Show(args) => show::run(args, cli, config, json),
    }
}
