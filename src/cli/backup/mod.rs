//! `cabinet-db backup`: pgBackRest, configured and driven.

mod certs;
mod drill;
mod list;
mod repo_host;
mod restore;
mod run;
mod schedule;
pub(crate) mod setup;
mod tls;
mod verify;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::outcome::Outcome;
use crate::backup::config::DEFAULT_CONFIG;

#[derive(Debug, Args)]
#[command(after_help = "Examples (on the database host, as root or the server's user):
  cabinet-db backup setup --repo /var/lib/pgbackrest        # once; again after a restart if it asks
  cabinet-db backup run --type full
  cabinet-db backup list
  cabinet-db backup restore --target-dir /var/tmp/copy --time 2026-11-27T09:59:00Z

Connect with --database-url or DATABASE_URL as a superuser (e.g. postgres over its socket:
postgres:///cabinet?host=/var/run/postgresql&user=postgres).")]
pub(crate) struct BackupArgs {
    #[command(subcommand)]
    pub(crate) command: BackupCommand,
    /// pgBackRest's configuration, written by `backup setup`.
    #[arg(long, env = "CABINET_BACKUP_CONFIG", default_value = DEFAULT_CONFIG, global = true)]
    pub(crate) config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Configure pgBackRest and WAL archiving for this server; create and check the stanza.
    Setup(setup::Args),
    /// Make this host the repository of a database host on the tailnet (pgBackRest's TLS server).
    SetupRepoHost(repo_host::Args),
    /// Issue TLS certificates for a database host and its repository host from a private CA.
    Certs(certs::Args),
    /// Take a backup.
    Run(run::Args),
    /// List the backups and the window a restore can reach.
    List(list::Args),
    /// Restore into a new cluster on loopback, to a time, an LSN or the latest WAL.
    Restore(restore::Args),
    /// Check every backed-up file against its checksum; exit 1 naming the damaged ones.
    Verify(verify::Args),
    /// Restore to a fresh restore point, compare every table with the live database, record it.
    Drill(drill::Args),
    /// Write systemd units and timers: daily full, hourly incremental backup, weekly drill.
    Schedule(schedule::Args),
}

pub(crate) async fn run(args: BackupArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        BackupCommand::Setup(a) => setup::run(a, &args.config, json).await,
        BackupCommand::SetupRepoHost(a) => repo_host::run(a, &args.config, json).await,
        BackupCommand::Certs(a) => certs::run(a, json).await,
        BackupCommand::Run(a) => run::run(a, &args.config, json).await,
        BackupCommand::List(a) => list::run(a, &args.config, json).await,
        BackupCommand::Restore(a) => restore::run(a, &args.config, json).await,
        BackupCommand::Verify(a) => verify::run(a, &args.config, json).await,
        BackupCommand::Drill(a) => drill::run(a, &args.config, json).await,
        BackupCommand::Schedule(a) => schedule::run(a, &args.config, json).await,
    }
}
