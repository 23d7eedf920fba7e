//! Backups and point-in-time recovery, on pgBackRest.
//!
//! pgBackRest is the engine: it copies the data directory, archives every WAL segment,
//! checksums both, encrypts, expires and restores. cabinet-db writes its configuration, turns
//! on WAL archiving through it, runs it as the server's OS user, reads its JSON, explains its
//! errors, and adds what an operator of this database needs on top: restores into a new
//! cluster only (never over the running one, never archiving into the production repository),
//! a refusal to restore past the archived WAL, and the drill that proves a restore works.
//!
//! One stanza, `cabinet`, per server. pgBackRest connects to the server over its unix socket
//! as the bootstrap superuser, by `peer` (as `sudo -u postgres psql` does): no password is
//! stored for it.

/// The WAL archive: holes in it and what they cost; why pushing WAL fails.
pub(crate) mod archive;
/// `pgbackrest info` as typed rows: backups, the recoverable window.
pub mod catalog;
/// `pgbackrest.conf`: rendered from the server and the repositories, and read back.
pub mod config;
/// The restored copy running: its settings, the size-checking `restore_command`, start, stop.
pub(crate) mod copy;
/// `backup drill`: restore to a fresh restore point, compare row for row, record the result.
pub mod drill;
/// The `pgbackrest` program: finding it, its version, running it as the server's user.
pub mod pgbackrest;
/// Where a recovery stopped (the copy's log) and whether at a hole (the repository's listing).
pub(crate) mod reached;
/// `backup setup-repo-host`: the second host that keeps the repository and takes the backups.
pub(crate) mod repo_host;
/// The repositories: a local directory and an encrypted S3 bucket, their values checked.
pub mod repository;
/// Restoring into a new cluster on loopback.
pub mod restore;
/// Why a restore refused or failed.
pub(crate) mod restore_error;
/// Taking a backup; listing backups and the recoverable window.
pub mod run;
/// systemd units and timers: daily full, hourly incremental, weekly drill.
pub(crate) mod schedule;
/// The offsite repository's credentials and passphrase: a 0600 include file, never printed.
pub mod secrets;
/// What pgBackRest needs to know of the server: data directory, port, socket, superuser.
pub mod server;
/// `backup setup`: configuration, archiving, `stanza-create`, `check`.
pub mod setup;
/// Where a restore may go: away from the data, the repositories, the configuration and state.
mod target_dir;
/// A repository on a second tailnet host: certificates, the TLS link, the repository host's
/// own setup.
pub mod tls;
/// `backup verify`: pgBackRest's checksums, read (it exits 0 on damage).
pub(crate) mod verify;
/// The recoverable window per repository, broken at each hole in the WAL.
pub(crate) mod window;

use std::path::PathBuf;

use crate::{db::DbError, local_cluster::ClusterError};

/// The pgBackRest stanza: one per server.
pub(crate) const STANZA: &str = "cabinet";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "pgBackRest is not installed (no `pgbackrest` on PATH); install it: sudo apt-get install pgbackrest"
    )]
    NotInstalled,
    #[error(
        "PostgreSQL {server_major} needs pgBackRest {needed} or newer, but this host has {installed}; install a newer pgBackRest (e.g. from apt.postgresql.org: https://wiki.postgresql.org/wiki/Apt) before setting up backups. Nothing was changed"
    )]
    VersionUnsupported { server_major: u32, installed: String, needed: String },
    #[error("pgbackrest {command} failed (exit {code}): {message}{hint}")]
    Tool { command: String, code: i32, message: String, hint: String },
    #[error("the backup into repo{repo} failed (done: {done}): {source}")]
    RepoFailed {
        repo: u32,
        /// The backups that completed in the other repositories.
        done: String,
        source: Box<BackupError>,
    },
    #[error("could not run pgbackrest")]
    Spawn(#[source] std::io::Error),
    #[error("cannot read pgBackRest's answer to `{command}`")]
    BadJson {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no backup configuration at {0}: run cabinet-db backup setup (or give --config)")]
    NotConfigured(PathBuf),
    #[error("{0}")]
    Config(String),
    #[error("{option} {value:?}: {why}. Nothing was changed")]
    BadSetting { option: String, value: String, why: String },
    #[error("{origin}: {why}. Nothing was changed")]
    BadSecret { origin: String, why: String },
    #[error(
        "the data directory {data_dir} is not on this host (or not readable here): run backup commands on the database host, as root or as the user that owns it"
    )]
    NotOnThisHost { data_dir: PathBuf },
    #[error("could not {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Restore(#[from] restore_error::RestoreError),
}

impl BackupError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
        let action = action.into();
        move |source| BackupError::Io { action, source }
    }
}
