//! `cabinet-db migrate`: Alembic's features (up/down to a target, status, history, offline
//! SQL, baseline, drift check, autogenerate-style diff) plus checksums, a lock and a lint.

mod baseline;
mod check;
mod diff;
mod down;
mod history;
mod lint;
mod new;
/// The runner's options and how its steps print.
mod runner;
mod sql;
mod status;
mod up;

use clap::{Args, Subcommand};

use super::{args::MigrationsDirArgs, outcome::Outcome};
use crate::migrations::MigrationSet;

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(subcommand)]
    pub(crate) command: MigrateCommand,
    #[command(flatten)]
    pub(crate) source: MigrationsDirArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Apply pending migrations (all, or up to --to).
    Up(up::Args),
    /// Revert applied migrations (--to V, --steps N or --all).
    Down(down::Args),
    /// Show the database's version and what is pending (read-only, no lock).
    Status(status::Args),
    /// List the known migrations (no database needed).
    History(history::Args),
    /// Print the SQL an upgrade or downgrade would run, without connecting.
    Sql(sql::Args),
    /// Compare the live schema with the models; exit 1 on drift.
    Check(check::Args),
    /// Print SQL that would bring the live schema to the models: a draft for `new`.
    Diff(diff::Args),
    /// Create the next-numbered migration pair in the migrations directory.
    New(new::Args),
    /// Adopt an existing database (optionally Alembic-managed) without running migrations.
    Baseline(baseline::Args),
    /// Lint every migration (squawk rules plus ours); exit 1 on findings.
    Lint(lint::Args),
}

pub(crate) async fn run(args: MigrateArgs, json: bool) -> anyhow::Result<Outcome> {
    let set = || MigrationSet::load(args.source.migrations_dir.as_deref());
    match args.command {
        MigrateCommand::Up(a) => up::run(a, &set()?, json).await,
        MigrateCommand::Down(a) => down::run(a, &set()?, json).await,
        MigrateCommand::Status(a) => status::run(a, &set()?, json).await,
        MigrateCommand::History(a) => history::run(a, &set()?, json),
        MigrateCommand::Sql(a) => sql::run(a, &set()?),
        MigrateCommand::Check(a) => check::run(a, json).await,
        MigrateCommand::Diff(a) => diff::run(a).await,
        MigrateCommand::New(a) => new::run(a, args.source.migrations_dir.as_deref(), json),
        MigrateCommand::Baseline(a) => baseline::run(a, &set()?, json).await,
        MigrateCommand::Lint(a) => lint::run(a, &set()?, json),
    }
}
