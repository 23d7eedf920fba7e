//! What the runner's subcommands share: its options, and how its steps print.

use crate::cli::args::{ConnectionArgs, DurationArg, parse_duration_arg};
use crate::cli::output::outln;
use crate::migrations::{
    RunnerOptions,
    runner::{
        DEFAULT_DDL_LOCK_TIMEOUT_MS, DEFAULT_LOCK_RETRIES, DEFAULT_LOCK_WAIT_SECS,
        DEFAULT_STATEMENT_TIMEOUT_SECS,
    },
};
use clap::Args;
use std::time::Duration;

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

/// `0003 add_x (12 ms)` lines for people.
pub(super) fn print_steps(
    steps: &[crate::migrations::runner::StepReport],
    verb: &str,
) -> std::io::Result<()> {
    for step in steps {
        outln!("{verb} {} ({} ms)", step.file, step.execution_ms)?;
    }
    Ok(())
}
