//! `cabinet-db backup`: pgBackRest, configured and driven.

mod certs;
mod drill;
mod list;
mod repo_host;
mod restore;
mod run;
mod schedule;
pub(crate) mod setup;
mod verify;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::outcome::Outcome;
use crate::backup::{
    config::DEFAULT_CONFIG,
    tls::{DEFAULT_TLS_PORT, TlsFiles, TlsOptions},
};

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

/// The TLS link between a database host and its repository host (both sides run
/// `pgbackrest server`; each admits only the other's certificate).
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// The CA certificate both hosts trust (from `cabinet-db backup certs`).
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_CA")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This host's certificate, named as the other host reaches it.
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// This host's private key (chmod 600).
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// This host's tailnet address, where its pgBackRest server listens (`tailscale ip -4`).
    #[arg(long, value_name = "ADDRESS", env = "CABINET_BACKUP_TLS_LISTEN")]
    pub(crate) tls_listen: Option<String>,
    /// The pgBackRest servers' port, on both hosts.
    #[arg(long, value_parser = crate::cli::args::parse_port, value_name = "PORT", default_value_t = DEFAULT_TLS_PORT)]
    pub(crate) tls_port: u16,
}

impl TlsArgs {
    /// All four given, or none (`None`); some of them is an error naming the missing ones.
    pub(crate) fn options(&self) -> anyhow::Result<Option<TlsOptions>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key, &self.tls_listen) {
            (Some(ca), Some(cert), Some(key), Some(listen)) => Ok(Some(TlsOptions {
                files: TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() },
                listen: listen.clone(),
                port: self.tls_port,
            })),
            (None, None, None, None) => Ok(None),
            given => {
                let missing: Vec<&str> = [
                    ("--tls-ca", given.0.is_none()),
                    ("--tls-cert", given.1.is_none()),
                    ("--tls-key", given.2.is_none()),
                    ("--tls-listen", given.3.is_none()),
                ]
                .into_iter()
                .filter_map(|(name, missing)| missing.then_some(name))
                .collect();
                anyhow::bail!(
                    "the link to the other host also needs {}. Nothing was changed",
                    missing.join(", ")
                )
            }
        }
    }
}
