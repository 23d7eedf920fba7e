//! `pgbackrest.conf`, rendered from what we know of the server and the repositories — the same
//! input gives the same file — and read back for the few settings later commands need.
//!
//! Everything pgBackRest writes besides the repository (logs, locks, the asynchronous archive
//! spool) lives under one state directory, so two clusters on one host (a test, a drill)
//! never share a lock or a spool.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::{BackupError, STANZA, server::Server};

/// Where the configuration lives unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/cabinet-db/pgbackrest.conf";
/// Full backups kept per repository (the oldest expires after the next one completes).
pub const DEFAULT_RETENTION_FULL: u32 = 2;
/// WAL queued for an unreachable repository before pgBackRest drops it, so a dead repository
/// can never fill the primary's disk (point-in-time recovery across the gap is then lost).
pub const DEFAULT_ARCHIVE_QUEUE_MAX: &str = "4GiB";

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repo {
    /// A directory on this host (or a mounted one).
    Posix { path: PathBuf },
}

/// Everything `pgbackrest.conf` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    pub pg_path: PathBuf,
    pub pg_port: u16,
    pub pg_socket: PathBuf,
    /// The role pgBackRest connects as (the bootstrap superuser, by peer).
    pub pg_user: String,
    /// `log/`, `lock/` and `spool/` below it.
    pub state_dir: PathBuf,
    pub repos: Vec<Repo>,
    pub retention_full: u32,
    pub archive_queue_max: String,
}

impl BackupConfig {
    pub fn for_server(server: &Server, state_dir: PathBuf, repos: Vec<Repo>) -> BackupConfig {
        BackupConfig {
            pg_path: server.data_dir.clone(),
            pg_port: server.port,
            pg_socket: server.socket_dir.clone(),
            pg_user: server.superuser.clone(),
            state_dir,
            repos,
            retention_full: DEFAULT_RETENTION_FULL,
            archive_queue_max: DEFAULT_ARCHIVE_QUEUE_MAX.to_owned(),
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("log")
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# cabinet-db: pgBackRest configuration. Written by `cabinet-db backup setup`; rerun it\n\
             # rather than editing this file (it is replaced whole).\n\n[global]\n",
        );
        for (index, repo) in self.repos.iter().enumerate() {
            let n = index + 1;
            match repo {
                Repo::Posix { path } => {
                    let _ = writeln!(out, "repo{n}-type=posix");
                    let _ = writeln!(out, "repo{n}-path={}", path.display());
                }
            }
            let _ = writeln!(out, "repo{n}-retention-full={}", self.retention_full);
        }
        let _ = write!(
            out,
            "log-path={log}
lock-path={lock}
spool-path={spool}
# Backups start at once instead of waiting for a spread checkpoint.
start-fast=y
# WAL is pushed in the background; when the repository is unreachable at most this much
# waits in the spool, then it is dropped so the primary's disk never fills.
archive-async=y
archive-push-queue-max={queue}
log-level-console=warn
log-level-file=info

[{STANZA}]
pg1-path={pg_path}
pg1-port={port}
pg1-socket-path={socket}
pg1-user={user}
",
            log = self.log_dir().display(),
            lock = self.lock_dir().display(),
            spool = self.spool_dir().display(),
            queue = self.archive_queue_max,
            pg_path = self.pg_path.display(),
            port = self.pg_port,
            socket = self.pg_socket.display(),
            user = self.pg_user,
        );
        out
    }

    /// Reads a file this module wrote.
    pub fn read(path: &Path) -> Result<BackupConfig, BackupError> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackupError::NotConfigured(path.to_owned()),
            _ => BackupError::Io { action: format!("read {}", path.display()), source: e },
        })?;
        let values = parse(&text);
        let get = |key: &str| {
            values.get(key).cloned().ok_or_else(|| {
                BackupError::Config(format!(
                    "{} lacks {key}; rerun cabinet-db backup setup to rewrite it",
                    path.display()
                ))
            })
        };
        let mut repos = Vec::new();
        for n in 1.. {
            let Some(kind) = values.get(&format!("global.repo{n}-type")) else { break };
            match kind.as_str() {
                "posix" => {
                    repos.push(Repo::Posix { path: PathBuf::from(get(&format!("global.repo{n}-path"))?) })
                }
                other => {
                    return Err(BackupError::Config(format!(
                        "{}: repo{n}-type={other} is not one cabinet-db writes",
                        path.display()
                    )));
                }
            }
        }
        let log_dir = PathBuf::from(get("global.log-path")?);
        Ok(BackupConfig {
            pg_path: PathBuf::from(get(&format!("{STANZA}.pg1-path"))?),
            pg_port: get(&format!("{STANZA}.pg1-port"))?.parse().unwrap_or(5432),
            pg_socket: PathBuf::from(get(&format!("{STANZA}.pg1-socket-path"))?),
            pg_user: get(&format!("{STANZA}.pg1-user"))?,
            state_dir: log_dir.parent().map(Path::to_owned).unwrap_or(log_dir),
            retention_full: get("global.repo1-retention-full")?.parse().unwrap_or(DEFAULT_RETENTION_FULL),
            archive_queue_max: get("global.archive-push-queue-max")?,
            repos,
        })
    }
}

/// `section.key` → value, for the simple INI pgBackRest reads.
fn parse(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            values.insert(format!("{section}.{}", key.trim()), value.trim().to_owned());
        }
    }
    values
}

/// Single-quotes a word for `/bin/sh` (`archive_command` runs through it).
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The `archive_command` that pushes WAL with this configuration.
pub fn archive_command(config_path: &Path) -> String {
    format!(
        "pgbackrest --config={} --stanza={STANZA} archive-push %p",
        shell_quote(&config_path.display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupConfig {
        BackupConfig {
            pg_path: "/var/lib/postgresql/15/main".into(),
            pg_port: 5432,
            pg_socket: "/var/run/postgresql".into(),
            pg_user: "postgres".into(),
            state_dir: "/var/lib/cabinet-db/pgbackrest".into(),
            repos: vec![Repo::Posix { path: "/var/lib/pgbackrest".into() }],
            retention_full: 2,
            archive_queue_max: "4GiB".into(),
        }
    }

    #[test]
    fn the_rendered_file_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbackrest.conf");
        std::fs::write(&path, sample().render()).unwrap();
        assert_eq!(BackupConfig::read(&path).unwrap(), sample());
        assert!(sample().render().contains("archive-push-queue-max=4GiB\n"));
    }

    #[test]
    fn the_archive_command_quotes_the_path() {
        assert_eq!(
            archive_command(Path::new("/etc/cabinet db/it's.conf")),
            r"pgbackrest --config='/etc/cabinet db/it'\''s.conf' --stanza=cabinet archive-push %p"
        );
    }
}
