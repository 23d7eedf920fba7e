//! `cabinet-db models …`: the schema model, for other languages.

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;

/// `cabinet-db models export`.
pub(crate) mod export;

#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    pub(crate) command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// Write the schema as SQLAlchemy 2.0 models (models.py) for the Python side.
    Export(export::Args),
}

pub(crate) fn run(args: ModelsArgs) -> anyhow::Result<Outcome> {
    match args.command {
        ModelsCommand::Export(args) => export::run(args),
    }
}
