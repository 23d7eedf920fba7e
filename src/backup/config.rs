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

use super::{
    BackupError, STANZA,
    repository::{Repo, S3Repo, UriStyle},
    secrets::include_dir,
    server::Server,
    tls::{DEFAULT_TLS_PORT, TlsFiles, TlsLink},
};

/// Where drill results are appended, one JSON object per line, in the state directory.
pub const DRILLS_FILE: &str = "drills.jsonl";

/// Where the configuration lives unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/cabinet-db/pgbackrest.conf";
/// Full backups kept per repository (the oldest expires after the next one completes).
pub(crate) const DEFAULT_RETENTION_FULL: u32 = 2;
/// WAL queued for an unreachable repository before pgBackRest drops it, so a dead repository
/// can never fill the primary's disk (point-in-time recovery across the gap is then lost).
pub(crate) const DEFAULT_ARCHIVE_QUEUE_MAX: &str = "4GiB";

/// Everything `pgbackrest.conf` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupConfig {
    pub(crate) pg_path: PathBuf,
    pub(crate) pg_port: u16,
    pub(crate) pg_socket: PathBuf,
    /// The role pgBackRest connects as (the bootstrap superuser, by peer).
    pub(crate) pg_user: String,
    /// `log/`, `lock/` and `spool/` below it.
    pub(crate) state_dir: PathBuf,
    pub(crate) repos: Vec<Repo>,
    pub(crate) retention_full: u32,
    pub(crate) archive_queue_max: String,
    /// `io-timeout` in seconds: how long pgBackRest waits on a repository that makes no
    /// progress (pgBackRest's default, 60, when unset). It also bounds how long one attempt
    /// to push WAL to an unreachable repository takes.
    pub(crate) io_timeout: Option<u32>,
    /// The link to a second host (a repository host, or seen from it, the database host).
    pub(crate) tls: Option<TlsLink>,
    /// This is the repository host: the database hosts (`pg1-host`, `pg2-host`, … — one, or a
    /// Patroni cluster's nodes), each reached through its `pgbackrest server` and admitted by
    /// ours. Empty on a database host.
    pub(crate) pg_hosts: Vec<PgHost>,
}

/// A database host as the repository host reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgHost {
    /// Its name (or tailnet address), which is also the name in its certificate.
    pub(crate) host: String,
    /// Its data directory.
    pub(crate) path: PathBuf,
    /// Its server's socket directory.
    pub(crate) socket: PathBuf,
}

impl BackupConfig {
    /// The defaults for the rest.
    pub(crate) fn for_server(server: &Server, state_dir: PathBuf, repos: Vec<Repo>) -> BackupConfig {
        let (path, socket) = (server.data_dir.clone(), server.socket_dir.clone());
        BackupConfig::with_pg(path, server.port, socket, server.superuser.clone(), state_dir, repos)
    }

    /// A server described by hand (on a repository host, which cannot ask it); the defaults for
    /// the rest.
    pub(crate) fn with_pg(
        pg_path: PathBuf,
        pg_port: u16,
        pg_socket: PathBuf,
        pg_user: String,
        state_dir: PathBuf,
        repos: Vec<Repo>,
    ) -> BackupConfig {
        BackupConfig {
            pg_path,
            pg_port,
            pg_socket,
            pg_user,
            state_dir,
            repos,
            retention_full: DEFAULT_RETENTION_FULL,
            archive_queue_max: DEFAULT_ARCHIVE_QUEUE_MAX.to_owned(),
            io_timeout: None,
            tls: None,
            pg_hosts: vec![],
        }
    }

    /// The repository numbers a command covers: the one asked for, or each.
    pub(crate) fn repo_numbers(&self, only: Option<u32>) -> Result<Vec<u32>, BackupError> {
        let count = self.repos.len() as u32;
        match only {
            Some(n) if (1..=count).contains(&n) => Ok(vec![n]),
            Some(n) => Err(BackupError::Config(format!(
                "there is no repo{n}: the configuration has {count} (repo1{})",
                if count > 1 { format!("…repo{count}") } else { String::new() }
            ))),
            None => Ok((1..=count).collect()),
        }
    }

    /// Repository `n` (1-based, as in `repo1-…`).
    pub(crate) fn repo(&self, n: u32) -> Option<&Repo> {
        n.checked_sub(1).and_then(|i| self.repos.get(i as usize))
    }

    /// Repository `n` is on another host (reached through its `pgbackrest server`).
    pub(crate) fn is_remote(&self, n: u32) -> bool {
        matches!(self.repo(n), Some(Repo::Remote { .. }))
    }

    /// The offsite repository and its number, when there is one.
    pub(crate) fn offsite(&self) -> Option<(usize, &S3Repo)> {
        self.repos.iter().enumerate().find_map(|(i, r)| match r {
            Repo::S3(s3) => Some((i + 1, s3)),
            Repo::Posix { .. } | Repo::Remote { .. } => None,
        })
    }

    /// The repository host, when the first repository is on one (backups run there).
    pub(crate) fn repo_host(&self) -> Option<&str> {
        self.repos.iter().find_map(|r| match r {
            Repo::Remote { host, .. } => Some(host.as_str()),
            _ => None,
        })
    }

    pub(crate) fn log_dir(&self) -> PathBuf {
        self.state_dir.join("log")
    }

    pub(crate) fn lock_dir(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    pub(crate) fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    /// The file's text.
    pub(crate) fn render(&self) -> String {
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
                Repo::S3(s3) => render_s3(&mut out, n, s3),
                Repo::Remote { host, path } => {
                    // Backups, retention and bundling happen on the repository host; this side
                    // only pushes and fetches WAL and files through it. repo1-path is sent
                    // along with each request (without it pgBackRest's default path is used
                    // there), so it must be the directory on that host.
                    let _ = writeln!(out, "repo{n}-host={host}");
                    let _ = writeln!(out, "repo{n}-host-type=tls");
                    if let Some(link) = &self.tls {
                        render_tls_client(&mut out, &format!("repo{n}-host"), link);
                    }
                    let _ = writeln!(out, "repo{n}-path={}", path.display());
                    continue;
                }
            }
            let _ = writeln!(out, "repo{n}-retention-full={}", self.retention_full);
            // Small files go into bundles: fewer files to write and sync, one request per
            // bundle rather than per file on S3 (a full backup ~25 % faster here).
            let _ = writeln!(out, "repo{n}-bundle=y");
        }
        let _ = write!(
            out,
            "log-path={log}
lock-path={lock}
spool-path={spool}
# Backups start at once instead of waiting for a spread checkpoint.
start-fast=y
# zstd: about gzip's ratio for much less CPU (a full backup of 1M users here: 4.3 s, gzip 6.8 s).
compress-type=zst
# WAL is pushed in the background; when the repository is unreachable at most this much
# waits in the spool, then it is dropped so the primary's disk never fills.
archive-async=y
archive-push-queue-max={queue}
log-level-console=warn
log-level-file=info
{io_timeout}{tls_server}
[{STANZA}]
{pg}",
            log = self.log_dir().display(),
            lock = self.lock_dir().display(),
            spool = self.spool_dir().display(),
            queue = self.archive_queue_max,
            io_timeout = self.io_timeout.map(|s| format!("io-timeout={s}\n")).unwrap_or_default(),
            tls_server = self.tls.as_ref().map(|link| self.render_tls_server(link)).unwrap_or_default(),
            pg = self.render_pg(),
        );
        out
    }

    /// The `pgN-…` lines: this host's server, or each database host's (through its server).
    fn render_pg(&self) -> String {
        let mut out = String::new();
        let local =
            [PgHost { host: String::new(), path: self.pg_path.clone(), socket: self.pg_socket.clone() }];
        let hosts = if self.pg_hosts.is_empty() { &local[..] } else { &self.pg_hosts[..] };
        for (index, pg) in hosts.iter().enumerate() {
            let n = index + 1;
            if let (false, Some(link)) = (pg.host.is_empty(), &self.tls) {
                let _ = writeln!(out, "pg{n}-host={}\npg{n}-host-type=tls", pg.host);
                render_tls_client(&mut out, &format!("pg{n}-host"), link);
            }
            let _ = writeln!(out, "pg{n}-path={}", pg.path.display());
            let _ = writeln!(out, "pg{n}-port={}", self.pg_port);
            let _ = writeln!(out, "pg{n}-socket-path={}", pg.socket.display());
            let _ = writeln!(out, "pg{n}-user={}", self.pg_user);
        }
        out
    }

    /// This host's `pgbackrest server`: where it listens, its certificate, and the peers it
    /// admits (by certificate name) for our stanza — the repository host, or every database
    /// host.
    fn render_tls_server(&self, link: &TlsLink) -> String {
        let mut out = String::from(
            "# This host's pgBackRest server (`pgbackrest server`), on the tailnet only; it admits the\n# peer's certificate, signed by our CA, for this stanza and nothing else.\n",
        );
        let _ = writeln!(out, "tls-server-address={}", link.listen);
        if link.port != DEFAULT_TLS_PORT {
            let _ = writeln!(out, "tls-server-port={}", link.port);
        }
        let _ = writeln!(out, "tls-server-ca-file={}", link.files.ca.display());
        let _ = writeln!(out, "tls-server-cert-file={}", link.files.cert.display());
        let _ = writeln!(out, "tls-server-key-file={}", link.files.key.display());
        let peers: Vec<&str> = if self.pg_hosts.is_empty() {
            vec![link.peer.as_str()]
        } else {
            self.pg_hosts.iter().map(|pg| pg.host.as_str()).collect()
        };
        for peer in peers {
            let _ = writeln!(out, "tls-server-auth={peer}={STANZA}");
        }
        out
    }

    /// Reads a file this module wrote.
    pub(crate) fn read(path: &Path) -> Result<BackupConfig, BackupError> {
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
            if let Some(host) = values.get(&format!("global.repo{n}-host")) {
                let path = PathBuf::from(get(&format!("global.repo{n}-path"))?);
                repos.push(Repo::Remote { host: host.clone(), path });
                continue;
            }
            let Some(kind) = values.get(&format!("global.repo{n}-type")) else { break };
            match kind.as_str() {
                "posix" => {
                    repos.push(Repo::Posix { path: PathBuf::from(get(&format!("global.repo{n}-path"))?) })
                }
                "s3" => {
                    let key = |name: &str| format!("global.repo{n}-{name}");
                    let optional = |name: &str| values.get(&key(name)).cloned();
                    repos.push(Repo::S3(S3Repo {
                        endpoint: get(&key("s3-endpoint"))?,
                        port: optional("storage-port").and_then(|p| p.parse().ok()).unwrap_or(443),
                        bucket: get(&key("s3-bucket"))?,
                        region: get(&key("s3-region"))?,
                        path: get(&key("path"))?,
                        uri_style: match optional("s3-uri-style").as_deref() {
                            Some("path") => UriStyle::Path,
                            _ => UriStyle::Host,
                        },
                        ca_file: optional("storage-ca-file").map(PathBuf::from),
                        encrypted: optional("cipher-type").is_some_and(|c| c == "aes-256-cbc"),
                    }));
                }
                other => {
                    return Err(BackupError::Config(format!(
                        "{}: repo{n}-type={other} is not one cabinet-db writes",
                        path.display()
                    )));
                }
            }
        }
        let mut pg_hosts = Vec::new();
        for n in 1.. {
            let Some(host) = values.get(&format!("{STANZA}.pg{n}-host")) else { break };
            pg_hosts.push(PgHost {
                host: host.clone(),
                path: PathBuf::from(get(&format!("{STANZA}.pg{n}-path"))?),
                socket: PathBuf::from(get(&format!("{STANZA}.pg{n}-socket-path"))?),
            });
        }
        let tls = match values.get("global.tls-server-address") {
            Some(listen) => {
                let client = if pg_hosts.is_empty() {
                    "global.repo1-host".to_owned()
                } else {
                    format!("{STANZA}.pg1-host")
                };
                Some(TlsLink {
                    files: TlsFiles {
                        ca: PathBuf::from(get("global.tls-server-ca-file")?),
                        cert: PathBuf::from(get("global.tls-server-cert-file")?),
                        key: PathBuf::from(get("global.tls-server-key-file")?),
                    },
                    listen: listen.clone(),
                    port: values
                        .get("global.tls-server-port")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(DEFAULT_TLS_PORT),
                    peer: get(&client)?,
                })
            }
            None => None,
        };
        let log_dir = PathBuf::from(get("global.log-path")?);
        Ok(BackupConfig {
            pg_path: PathBuf::from(get(&format!("{STANZA}.pg1-path"))?),
            pg_port: get(&format!("{STANZA}.pg1-port"))?.parse().unwrap_or(5432),
            pg_socket: PathBuf::from(get(&format!("{STANZA}.pg1-socket-path"))?),
            pg_user: get(&format!("{STANZA}.pg1-user"))?,
            state_dir: log_dir.parent().map(Path::to_owned).unwrap_or(log_dir),
            retention_full: values
                .get("global.repo1-retention-full")
                .and_then(|r| r.parse().ok())
                .unwrap_or(DEFAULT_RETENTION_FULL),
            archive_queue_max: get("global.archive-push-queue-max")?,
            io_timeout: values.get("global.io-timeout").and_then(|s| s.parse().ok()),
            repos,
            tls,
            pg_hosts,
        })
    }
}

/// An S3 repository's lines. Its secrets (keys, passphrase) go to the secrets include file.
fn render_s3(out: &mut String, n: usize, s3: &S3Repo) {
    let _ = writeln!(out, "repo{n}-type=s3");
    let _ = writeln!(out, "repo{n}-s3-endpoint={}", s3.endpoint);
    if s3.port != 443 {
        let _ = writeln!(out, "repo{n}-storage-port={}", s3.port);
    }
    let _ = writeln!(out, "repo{n}-s3-bucket={}", s3.bucket);
    let _ = writeln!(out, "repo{n}-s3-region={}", s3.region);
    if s3.uri_style == UriStyle::Path {
        let _ = writeln!(out, "repo{n}-s3-uri-style=path");
    }
    let _ = writeln!(out, "repo{n}-path={}", s3.path);
    if let Some(ca) = &s3.ca_file {
        let _ = writeln!(out, "repo{n}-storage-ca-file={}", ca.display());
    }
    if s3.encrypted {
        let _ =
            writeln!(out, "# Everything stored offsite is encrypted; the passphrase is in the secrets file.");
        let _ = writeln!(out, "repo{n}-cipher-type=aes-256-cbc");
    }
}

/// How this host calls the peer's server: `<prefix>-port`, `-ca-file`, `-cert-file`, `-key-file`.
fn render_tls_client(out: &mut String, prefix: &str, link: &TlsLink) {
    if link.port != DEFAULT_TLS_PORT {
        let _ = writeln!(out, "{prefix}-port={}", link.port);
    }
    let _ = writeln!(out, "{prefix}-ca-file={}", link.files.ca.display());
    let _ = writeln!(out, "{prefix}-cert-file={}", link.files.cert.display());
    let _ = writeln!(out, "{prefix}-key-file={}", link.files.key.display());
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

/// The directories pgBackRest writes besides the repositories, as the file at `path` names
/// them (`log-path`, `lock-path`, `spool-path`, which may have been edited away from the state
/// directory): (option, directory). Empty when the file cannot be read.
pub(crate) fn state_paths(path: &Path) -> Vec<(&'static str, PathBuf)> {
    let values = std::fs::read_to_string(path).map(|text| parse(&text)).unwrap_or_default();
    ["log-path", "lock-path", "spool-path"]
        .into_iter()
        .filter_map(|key| Some((key, PathBuf::from(values.get(&format!("global.{key}"))?))))
        .collect()
}

/// Single-quotes a word for `/bin/sh` (`archive_command` runs through it).
pub(crate) fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The `archive_command` that pushes WAL with this configuration.
pub fn archive_command(config_path: &Path) -> String {
    format!(
        "pgbackrest --config={} --config-include-path={} --stanza={STANZA} archive-push %p",
        shell_quote(&config_path.display().to_string()),
        shell_quote(&include_dir(config_path).display().to_string())
    )
}

/// The `restore_command` that fetches WAL with this configuration (a replica that fell behind
/// what the leader still has; a restored copy).
pub(crate) fn restore_command(config_path: &Path) -> String {
    format!(
        "pgbackrest --config={} --config-include-path={} --stanza={STANZA} archive-get %f \"%p\"",
        shell_quote(&config_path.display().to_string()),
        shell_quote(&include_dir(config_path).display().to_string())
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
            io_timeout: None,
            tls: None,
            pg_hosts: vec![],
        }
    }

    fn with_offsite() -> BackupConfig {
        let mut config = sample();
        config.io_timeout = Some(5);
        config.repos.push(Repo::S3(S3Repo {
            endpoint: "localhost".into(),
            port: 9443,
            bucket: "offsite".into(),
            region: "us-east-1".into(),
            path: "/cabinet-db".into(),
            uri_style: UriStyle::Path,
            ca_file: Some("/etc/cabinet-db/s3-ca.pem".into()),
            encrypted: true,
        }));
        config
    }

    fn link(peer: &str) -> TlsLink {
        TlsLink {
            files: TlsFiles::installed(Path::new("/etc/cabinet-db/pgbackrest.conf")),
            listen: "100.64.0.1".into(),
            port: 18432,
            peer: peer.into(),
        }
    }

    /// The database host with its repository on another host.
    fn database_host() -> BackupConfig {
        let mut config = sample();
        config.repos =
            vec![Repo::Remote { host: "backup.example".into(), path: "/var/lib/pgbackrest".into() }];
        config.tls = Some(link("backup.example"));
        config
    }

    /// That repository host.
    fn repository_host() -> BackupConfig {
        let mut config = sample();
        config.tls = Some(link("db.example"));
        config.pg_hosts = vec![PgHost {
            host: "db.example".into(),
            path: config.pg_path.clone(),
            socket: config.pg_socket.clone(),
        }];
        config
    }

    /// The repository host of a Patroni cluster's two nodes.
    fn cluster_repository_host() -> BackupConfig {
        let mut config = repository_host();
        config.pg_hosts.push(PgHost {
            host: "db2.example".into(),
            path: "/srv/pg/db2".into(),
            socket: "/srv/pg/db2-socket".into(),
        });
        config
    }

    #[test]
    fn both_sides_of_a_repository_host_name_each_other_and_read_back() {
        let db = database_host().render();
        for line in [
            "repo1-host=backup.example\nrepo1-host-type=tls\nrepo1-host-port=18432\n",
            "repo1-path=/var/lib/pgbackrest\n",
            "tls-server-address=100.64.0.1\ntls-server-port=18432\n",
            "tls-server-auth=backup.example=cabinet\n",
        ] {
            assert!(db.contains(line), "{line:?} in {db}");
        }
        assert!(!db.contains("repo1-retention") && !db.contains("pg1-host"), "{db}");
        let repo = repository_host().render();
        for line in ["pg1-host=db.example\npg1-host-type=tls\n", "tls-server-auth=db.example=cabinet\n"] {
            assert!(repo.contains(line), "{line:?} in {repo}");
        }
        assert_eq!(database_host().repo_host(), Some("backup.example"));
        assert_eq!(repository_host().repo_host(), None);
        let cluster = cluster_repository_host().render();
        for line in [
            "pg1-host=db.example\npg1-host-type=tls\n",
            "pg2-host=db2.example\npg2-host-type=tls\npg2-host-port=18432\n",
            "pg2-path=/srv/pg/db2\npg2-port=5432\npg2-socket-path=/srv/pg/db2-socket\n",
            "tls-server-auth=db.example=cabinet\ntls-server-auth=db2.example=cabinet\n",
        ] {
            assert!(cluster.contains(line), "{line:?} in {cluster}");
        }
    }

    #[test]
    fn the_rendered_file_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbackrest.conf");
        for config in
            [sample(), with_offsite(), database_host(), repository_host(), cluster_repository_host()]
        {
            std::fs::write(&path, config.render()).unwrap();
            assert_eq!(BackupConfig::read(&path).unwrap(), config);
        }
        assert!(sample().render().contains("archive-push-queue-max=4GiB\n"));
        let text = with_offsite().render();
        assert!(
            text.contains("repo2-type=s3\nrepo2-s3-endpoint=localhost\nrepo2-storage-port=9443\n"),
            "{text}"
        );
        assert!(text.contains("repo2-cipher-type=aes-256-cbc\n"));
        assert!(!text.contains("cipher-pass") && !text.contains("s3-key"), "no secrets in the main file");
        assert_eq!(with_offsite().offsite().map(|(n, _)| n), Some(2));
    }

    #[test]
    fn the_archive_command_quotes_the_path() {
        assert_eq!(
            archive_command(Path::new("/etc/cabinet db/it's.conf")),
            r"pgbackrest --config='/etc/cabinet db/it'\''s.conf' --config-include-path='/etc/cabinet db/it'\''s.d' --stanza=cabinet archive-push %p"
        );
    }
}
