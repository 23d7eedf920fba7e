//! `cabinet-db dev`: the local development database.

mod down;
mod env;
/// How the report prints.
mod report;
mod status;
mod up;
mod url;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;
use crate::dev::default_data_dir;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    #[command(subcommand)]
    pub(crate) command: DevCommand,
    /// Where the cluster lives [default: /var/lib/cabinet-db/dev as root, else
    /// ~/.local/state/cabinet-db/dev].
    #[arg(long, env = "CABINET_DEV_DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Create (first time), start, migrate and seed the local database; idempotent.
    Up(up::Args),
    /// Stop the local database (its data stays).
    Down(down::Args),
    /// Show whether it runs, its URL, version, tables and demo rows.
    Status(status::Args),
    /// Print its connection URL (with the password): export DATABASE_URL="$(cabinet-db dev url)".
    Url(url::Args),
    /// Print `export` lines for a shell: eval "$(cabinet-db dev env)".
    Env(env::Args),
}

pub(crate) async fn run(args: DevArgs, json: bool) -> anyhow::Result<Outcome> {
    let dir = args.data_dir.unwrap_or_else(default_data_dir);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    match args.command {
        DevCommand::Up(a) => up::run(a, &dir, json).await,
        DevCommand::Down(a) => down::run(a, &dir, json).await,
        DevCommand::Status(a) => status::run(a, &dir, json).await,
        DevCommand::Url(a) => url::run(a, &dir).await,
        DevCommand::Env(a) => env::run(a, &dir).await,
    }
}
