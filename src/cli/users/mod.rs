//! `cabinet-db users`: find and remove users, record that one was seen; import and export.

mod forget;
mod get;
mod history;
mod list;
mod rm;
mod seen;
/// Users as a table.
mod table;

use clap::{Args, Subcommand};

use super::{
    outcome::Outcome,
    transfer::{self, ExportArgs, ImportArgs},
};
use crate::transfer::Table;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cabinet-db users seen 291840123456789012 --email ada@example.com
  cabinet-db users list --seen-after 2026-01-01T00:00:00Z
  cabinet-db users get 291840123456789012
  cabinet-db users rm 291840123456789012 --yes
  cabinet-db users history 291840123456789012
  cabinet-db users forget 291840123456789012 --yes   # a delete-my-data request
  cabinet-db users export --format jsonl --out users.jsonl

Connect with --database-url or DATABASE_URL (e.g. the cabinet_admin role's URL).")]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    pub(crate) command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List users, ordered by user_id, a page at a time.
    List(list::Args),
    /// Show one user.
    Get(get::Args),
    /// Delete a user.
    Rm(rm::Args),
    /// A user's recorded changes: creation, e-mail changes, deletion.
    History(history::Args),
    /// Delete a user and every e-mail address of theirs in the history.
    Forget(forget::Args),
    /// Record that a user was seen (creates the user on first sight).
    Seen(seen::Args),
    /// Load users from CSV or JSON Lines (all or nothing).
    Import(ImportArgs),
    /// Write all users as CSV or JSON Lines.
    Export(ExportArgs),
}

pub(crate) async fn run(args: UsersArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        UsersCommand::List(a) => list::run(a, json).await,
        UsersCommand::Get(a) => get::run(a, json).await,
        UsersCommand::Rm(a) => rm::run(a, json).await,
        UsersCommand::History(a) => history::run(a, json).await,
        UsersCommand::Forget(a) => forget::run(a, json).await,
        UsersCommand::Seen(a) => seen::run(a, json).await,
        UsersCommand::Import(a) => transfer::run_import(Table::Users, a, json).await,
        UsersCommand::Export(a) => transfer::run_export(Table::Users, a).await,
    }
}
