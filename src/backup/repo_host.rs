//! `backup setup-repo-host`: make this host the repository of a database host on the tailnet.
//!
//! Here live the repository and the scheduled backups (pgBackRest takes backups only on the
//! repository host); the database host pushes its WAL here and restores from here, both
//! through this host's `pgbackrest server`. Nothing here can connect to PostgreSQL except
//! through the database host's own `pgbackrest server`, which admits only this host's
//! certificate.
//!
//! The order on a new pair: this command (writes the configuration), start this host's
//! server, `backup setup --repo-host` on the database host (archiving, stanza), start its
//! server, then this command again: it checks the whole chain from here.

use std::path::PathBuf;

use nix::unistd::User;
use serde::Serialize;

use super::{
    BackupError,
    config::{BackupConfig, PgHost},
    pgbackrest::PgBackRest,
    repository::{Repo, check_config_path},
    server::run_as_owner,
    setup::{Offsite, add_offsite, keeps_the_offsite, prepare_directories, write_config},
    tls::{TlsOptions, check_host},
};
use crate::local_cluster::RunAs;

#[derive(Debug, Clone)]
pub(crate) struct RepoHostOptions {
    pub(crate) config_path: PathBuf,
    /// pgBackRest's logs, locks and spool on this host.
    pub(crate) state_dir: PathBuf,
    /// The repository: a directory on this host.
    pub(crate) repo: PathBuf,
    /// The database hosts, as this host reaches them (and the names in their certificates): one,
    /// or each node of a Patroni cluster.
    pub(crate) db_hosts: Vec<String>,
    /// The server as seen on the database hosts: one data directory (and socket directory) for
    /// all, or one per host.
    pub(crate) pg_paths: Vec<PathBuf>,
    pub(crate) pg_port: u16,
    pub(crate) pg_sockets: Vec<PathBuf>,
    pub(crate) pg_user: String,
    /// The OS user that runs pgBackRest here and owns the repository.
    pub(crate) os_user: String,
    pub(crate) tls: TlsOptions,
    pub(crate) io_timeout: Option<u32>,
    /// The offsite bucket, as on the database host (the same passphrase): backups taken here
    /// go into it too.
    pub(crate) offsite: Option<Offsite>,
    /// Let this run drop an offsite repository the existing configuration has.
    pub(crate) remove_offsite: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RepoHostReport {
    pub(crate) config: PathBuf,
    pub(crate) pgbackrest_version: String,
    /// Each repository, described (`repo1`, and the offsite `repo2`).
    pub(crate) repos: Vec<String>,
    /// `stanza-create` and `check` passed from here: WAL arrives, backups can be taken.
    pub(crate) checked: bool,
    /// Why not, when not: usually the database host is not set up yet.
    pub(crate) not_checked_because: Option<String>,
}

pub(crate) fn setup_repo_host(options: &RepoHostOptions) -> Result<RepoHostReport, BackupError> {
    let pg_hosts = pg_hosts(options)?;
    for (option, path) in
        [("--config", &options.config_path), ("--state-dir", &options.state_dir), ("--repo", &options.repo)]
    {
        check_config_path(option, path)?;
    }
    if options.pg_user.is_empty()
        || !options.pg_user.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(BackupError::BadSetting {
            option: "--pg-user".to_owned(),
            value: options.pg_user.clone(),
            why: "a role name of letters, digits, '_', '-' and '.'".to_owned(),
        });
    }
    options.tls.check()?;
    keeps_the_offsite(&options.config_path, options.offsite.is_some(), options.remove_offsite)?;
    let run_as = os_user(&options.os_user)?;
    let pgbackrest = PgBackRest::new(&options.config_path, run_as.clone())?;
    let (_, version_text) = pgbackrest.version()?;

    let mut repos = vec![Repo::Posix { path: options.repo.clone() }];
    let repo_secrets = add_offsite(&mut repos, options.offsite.as_ref());
    let mut config = BackupConfig::with_pg(
        pg_hosts[0].path.clone(),
        options.pg_port,
        pg_hosts[0].socket.clone(),
        options.pg_user.clone(),
        options.state_dir.clone(),
        repos,
    );
    config.io_timeout = options.io_timeout;
    config.tls = Some(options.tls.link(&options.config_path, &pg_hosts[0].host));
    config.pg_hosts = pg_hosts;
    write_config(&options.config_path, &config, &run_as)?;
    super::secrets::write(&options.config_path, &repo_secrets, &run_as)?;
    options.tls.files.install(&options.config_path, &run_as)?;
    prepare_directories(&config, &run_as)?;

    // `stanza-create` needs the database host's server, `check` ours too (WAL comes to it).
    // pgBackRest retries a refused connection for minutes; a plain connect says it at once.
    let port = options.tls.port;
    let not_checked_because = if !answers(&options.tls.listen, port) {
        Some(format!(
            "this host's pgBackRest server does not answer on {}:{port}: start it (cabinet-db-backup-server.service from `cabinet-db backup schedule`)",
            options.tls.listen
        ))
    } else if let Some(host) = options.db_hosts.iter().find(|host| !answers(host, port)) {
        Some(format!(
            "the database host's pgBackRest server does not answer at {host}:{port}: run cabinet-db backup setup --repo-host … there and start its server"
        ))
    } else {
        pgbackrest
            .run("stanza-create", &[])
            .and_then(|_| pgbackrest.run("check", &[]))
            .err()
            .map(|e| e.to_string())
    };
    Ok(RepoHostReport {
        config: options.config_path.clone(),
        pgbackrest_version: version_text,
        repos: config.repos.iter().map(Repo::describe).collect(),
        checked: not_checked_because.is_none(),
        not_checked_because,
    })
}

/// The database hosts with their data and socket directories: every name and path checked,
/// each directory given once for all or once per host.
fn pg_hosts(options: &RepoHostOptions) -> Result<Vec<PgHost>, BackupError> {
    let hosts = &options.db_hosts;
    let per_host = |option: &str, values: &[PathBuf]| -> Result<Vec<PathBuf>, BackupError> {
        match values.len() {
            1 => Ok(vec![values[0].clone(); hosts.len()]),
            n if n == hosts.len() => Ok(values.to_vec()),
            _ => Err(BackupError::BadSetting {
                option: option.to_owned(),
                value: values.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                why: format!("give one for all database hosts or one per --db-host ({} given)", hosts.len()),
            }),
        }
    };
    let paths = per_host("--pg-path", &options.pg_paths)?;
    let sockets = per_host("--pg-socket", &options.pg_sockets)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut pg_hosts = Vec::new();
    for ((host, path), socket) in hosts.iter().zip(paths).zip(sockets) {
        check_host("--db-host", host)?;
        if !seen.insert(host) {
            return Err(BackupError::BadSetting {
                option: "--db-host".to_owned(),
                value: host.clone(),
                why: "named twice".to_owned(),
            });
        }
        check_config_path("--pg-path", &path)?;
        check_config_path("--pg-socket", &socket)?;
        pg_hosts.push(PgHost { host: host.clone(), path, socket });
    }
    if pg_hosts.is_empty() {
        return Err(BackupError::BadSetting {
            option: "--db-host".to_owned(),
            value: String::new(),
            why: "name the database host (once per node of a cluster)".to_owned(),
        });
    }
    Ok(pg_hosts)
}

/// Something accepts TCP connections at `host:port` (within 3 s).
fn answers(host: &str, port: u16) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    (host, port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|address| TcpStream::connect_timeout(&address, std::time::Duration::from_secs(3)).is_ok())
}

/// The user pgBackRest runs as here: as root we switch to it; otherwise we must be it.
fn os_user(name: &str) -> Result<RunAs, BackupError> {
    let user = User::from_name(name).ok().flatten().ok_or_else(|| BackupError::BadSetting {
        option: "--os-user".to_owned(),
        value: name.to_owned(),
        why:
            "no such user on this host; create it (e.g. adduser --system --group pgbackrest) or name another"
                .to_owned(),
    })?;
    run_as_owner(user.uid.as_raw())
}
