//! `cabinet-db migrate`: Alembic's features (up/down to a target, status, history, offline
//! SQL, baseline, drift check, autogenerate-style diff) plus checksums, a lock and a lint.

mod baseline;
mod check;
mod diff;
mod down;
mod history;
mod lint;
mod new;
mod sql;
mod status;
mod up;

use crate::cli::output::outln;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{
    args::{ConnectionArgs, DurationArg, MigrationsDirArgs, parse_duration_arg},
    outcome::Outcome,
};
use crate::migrations::{
    MigrationSet, RunnerOptions,
    runner::{
        DEFAULT_DDL_LOCK_TIMEOUT_MS, DEFAULT_LOCK_RETRIES, DEFAULT_LOCK_WAIT_SECS,
        DEFAULT_STATEMENT_TIMEOUT_SECS,
    },
};

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

/// Safety settings for commands that change the schema.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunnerArgs {
    /// How long to wait for another deployer's migration lock (e.g. 30s, 2m).
    #[arg(long, default_value_t = DurationArg(Duration::from_secs(DEFAULT_LOCK_WAIT_SECS)), value_parser = parse_duration_arg)]
    pub(crate) lock_timeout: DurationArg,
    /// lock_timeout inside each migration: how long a statement may queue for a table lock
    /// before the migration is rolled back and retried.
    #[arg(long, default_value_t = DurationArg(Duration::from_millis(DEFAULT_DDL_LOCK_TIMEOUT_MS)), value_parser = parse_duration_arg)]
    pub(crate) ddl_lock_timeout: DurationArg,
    /// statement_timeout inside each migration (0 for none).
    #[arg(long, default_value_t = DurationArg(Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_SECS)), value_parser = parse_duration_arg)]
    pub(crate) statement_timeout: DurationArg,
    /// Retries of a migration rolled back by lock_timeout (SQLSTATE 55P03), with doubling pauses.
    #[arg(long, default_value_t = DEFAULT_LOCK_RETRIES)]
    pub(crate) lock_retries: u32,
    /// Run migrations as this role (SET ROLE) when it exists and you are a member, so it owns
    /// what they create.
    #[arg(long, env = "CABINET_OWNER_ROLE", default_value = "cabinet_owner")]
    pub(crate) owner_role: String,
}

impl RunnerArgs {
    /// The runner's settings; `connection` (when the command has one) names who runs it.
    pub(crate) fn options(&self, connection: Option<&ConnectionArgs>) -> anyhow::Result<RunnerOptions> {
        let actor = connection.map(|c| crate::history::Actor::for_cli(c.actor.as_deref())).transpose()?;
        Ok(RunnerOptions {
            lock_wait: self.lock_timeout.0,
            ddl_lock_timeout: self.ddl_lock_timeout.0,
            statement_timeout: self.statement_timeout.0,
            lock_retries: self.lock_retries,
            owner_role: Some(self.owner_role.clone()),
            actor,
        })
    }
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

/// `0003 add_x (12 ms)` lines for people.
fn print_steps(steps: &[crate::migrations::runner::StepReport], verb: &str) -> std::io::Result<()> {
    for step in steps {
        outln!("{verb} {} ({} ms)", step.file, step.execution_ms)?;
    }
    Ok(())
}
