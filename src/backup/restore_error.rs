//! Why a restore refused or failed: one type for the restore, the copy it starts and the
//! guard on its target directory.

use std::path::PathBuf;

/// What PostgreSQL logs when the WAL ends before the recovery target.
pub(crate) const TARGET_NOT_REACHED: &str = "recovery ended before configured recovery target was reached";

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not empty: a restore goes into a new, empty directory (never over a cluster)")]
    NotEmpty(PathBuf),
    #[error(
        "{target} is the production data directory (or inside it): restore into a new directory, or use --in-place --yes with the server stopped"
    )]
    IntoProduction { target: PathBuf },
    #[error(
        "{target} is inside the backup repository {repository} (or holds it): restore into a directory of its own"
    )]
    IntoRepository { target: PathBuf, repository: PathBuf },
    #[error(
        "{target} overlaps {what} ({path}), symlinks resolved: a restore goes into a directory of its own, away from pgBackRest's configuration and state; choose another --target-dir"
    )]
    IntoBackupState { target: PathBuf, what: String, path: PathBuf },
    #[error("{target} is in the future; the latest point a restore can reach is now")]
    Future { target: String },
    #[error("{target} is before the oldest backup, which ended at {earliest}: nothing can restore to it")]
    BeforeBackups { target: String, earliest: String },
    #[error("the repositories hold no backup yet: run cabinet-db backup run first")]
    NoBackups,
    #[error(
        "the archived WAL ends before {target}: PostgreSQL stopped with \"{TARGET_NOT_REACHED}\". Choose an earlier --time (the last segment archived was {archive_max}), or --latest; the copy was removed"
    )]
    TargetNotReached { target: String, archive_max: String },
    #[error(
        "{target} lies beyond a hole in the WAL archive: {hole}. Recovery stopped before it, at {reached}; nothing after that point can be restored from these backups. The copy was stopped and removed. To restore to that point: {command}. To make later times recoverable again, take a new full backup now (cabinet-db backup run --type full)"
    )]
    HoleBeforeTarget { target: String, hole: String, reached: String, command: String },
    #[error("the restored copy did not start{}:\n{log}", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    DidNotStart { reason: Option<String>, log: String },
    #[error(
        "PostgreSQL is running on {data_dir} (pid {pid}): an in-place restore replaces its data, so stop it first (e.g. systemctl stop postgresql@15-main)"
    )]
    ServerRunning { data_dir: PathBuf, pid: i32 },
}
