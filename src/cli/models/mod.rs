//! `cabinet-db models …`: the schema model, for other languages.

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;

/// `cabinet-db models export`.
pub mod export;

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Write the schema as SQLAlchemy 2.0 models (models.py) for the Python side.
    Export(export::Args),
}

pub fn run(args: ModelsArgs) -> anyhow::Result<Outcome> {
    match args.command {
        ModelsCommand::Export(args) => export::run(args),
    }
}
