//! `backup setup`: write `pgbackrest.conf`, turn WAL archiving on through pgBackRest, create
//! the stanza and let pgBackRest check the whole chain. Idempotent: a second run rewrites the
//! same file, changes no setting, and checks again.
//!
//! `archive_mode` takes effect only at a server restart; the first run on a server without it
//! says so (and stops short of `check`), a run after the restart completes.

use std::{
    io::Write,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    BackupError,
    config::{BackupConfig, archive_command},
    pgbackrest::PgBackRest,
    repository::{Repo, S3Repo, check_archive_queue_max, check_config_path},
    secrets::{self, CipherPass, RepoSecrets, S3Credentials},
    server::Server,
    tls::{TlsOptions, check_host},
};
use crate::{
    atomic_file::AtomicFile,
    compat,
    db::{self, DatabaseUrl, quote_literal},
    local_cluster::RunAs,
};

/// The longest a commit can wait before its WAL segment is switched out for archiving: the
/// loss window of a server without a standby.
pub(crate) const ARCHIVE_TIMEOUT: &str = "60s";

#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub config_path: PathBuf,
    /// pgBackRest's logs, locks and spool.
    pub state_dir: PathBuf,
    /// The first repository: a directory on this host (or a mounted one), or on a repository
    /// host (`Repo::Remote`, which needs `tls`).
    pub local: Repo,
    /// The link to the repository host.
    pub tls: Option<TlsOptions>,
    /// The second: an S3 bucket, encrypted.
    pub offsite: Option<Offsite>,
    /// Let this run drop an offsite repository the existing configuration has.
    pub remove_offsite: bool,
    /// `archive-push-queue-max`; the default is `super::config::DEFAULT_ARCHIVE_QUEUE_MAX`.
    pub archive_queue_max: Option<String>,
    /// `io-timeout` in seconds (pgBackRest's default when unset).
    pub io_timeout: Option<u32>,
}

impl SetupOptions {
    /// One repository, a directory; the defaults for the rest.
    pub fn local(config_path: PathBuf, state_dir: PathBuf, repo: PathBuf) -> SetupOptions {
        SetupOptions {
            config_path,
            state_dir,
            local: Repo::Posix { path: repo },
            tls: None,
            offsite: None,
            remove_offsite: false,
            archive_queue_max: None,
            io_timeout: None,
        }
    }
}

/// The offsite repository and what opens it.
#[derive(Debug, Clone)]
pub struct Offsite {
    pub repo: S3Repo,
    pub credentials: S3Credentials,
    pub cipher_pass: CipherPass,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    pub(crate) config: PathBuf,
    pub(crate) pgbackrest_version: String,
    /// Each repository, in pgBackRest's order (`repo1`, `repo2`), described.
    pub(crate) repos: Vec<String>,
    /// Server settings this run changed (`ALTER SYSTEM`).
    pub changed: Vec<String>,
    /// `archive_mode` (or `wal_level`) waits for a server restart; run setup again after it.
    pub restart_needed: bool,
    /// `stanza-create` and `check` passed.
    pub checked: bool,
    /// The server is a standby (a Patroni cluster's replica): it archives nothing until it
    /// leads, and `stanza-create` and `check` need the leader, so they were not run here.
    pub(crate) standby: bool,
    /// The repository host, where backups run (this host's `pgbackrest server` must run).
    pub(crate) repo_host: Option<String>,
}

/// Sets up backups of the server behind `url` (a superuser connection on the database host).
pub async fn setup(url: &DatabaseUrl, options: &SetupOptions) -> Result<SetupReport, BackupError> {
    check_paths(options)?;
    keeps_the_offsite(&options.config_path, options.offsite.is_some(), options.remove_offsite)?;
    let mut conn = db::connect(url, "cabinet-db backup").await?;
    let server = Server::inspect(&mut conn).await?;
    for (what, path) in
        [("data_directory", &server.data_dir), ("unix_socket_directories", &server.socket_dir)]
    {
        check_config_path(what, path)?;
    }
    // A repository inside the data directory is copied into each backup and deleted by an
    // in-place restore (--delta); state there goes with a restore too. Compared as the paths
    // really are, every symlink resolved.
    let local_repo = match &options.local {
        Repo::Posix { path } => Some(path),
        _ => None,
    };
    for (option, path) in [("--repo", local_repo), ("--state-dir", Some(&options.state_dir))] {
        if let Some(path) = path
            && crate::paths::overlap(path, &server.data_dir)
        {
            return Err(BackupError::BadSetting {
                option: option.to_owned(),
                value: path.display().to_string(),
                why: format!(
                    "it is the data directory {} or inside it (symlinks resolved: {}), so each backup would copy it and an in-place restore would delete it; give a directory outside the data directory",
                    server.data_dir.display(),
                    crate::paths::really(path).display()
                ),
            });
        }
    }
    let pgbackrest = PgBackRest::new(&options.config_path, server.os_user.clone())?;
    let (version, version_text) = pgbackrest.version()?;
    // Before anything changes: a pgBackRest that cannot read this server's control file would
    // leave archive_command failing forever and WAL piling up in pg_wal.
    if let Err(needed) = compat::pgbackrest_supports(version, server.major) {
        return Err(BackupError::VersionUnsupported {
            server_major: server.major,
            installed: version_text,
            needed,
        });
    }

    // What the server's archive settings lack, decided before anything is written: a server
    // run by Patroni takes its settings from patroni.yml, and an `ALTER SYSTEM` here would be
    // overridden or, worse, differ between the nodes.
    let (wanted, restart_needed) = wanted_settings(&mut conn, &options.config_path).await?;
    let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await?;
    if !wanted.is_empty() && server.data_dir.join(PATRONI_CACHE).exists() {
        return Err(BackupError::Config(format!(
            "this server is run by Patroni, which owns its settings, and it lacks {}: render the cluster with `cabinet-db cluster render --backups` (the archive settings go into each node's patroni.yml), install the files and reload Patroni (systemctl reload cabinet-db-patroni), then run backup setup again. Nothing was changed",
            wanted.iter().map(|(name, value)| format!("{name} = {value}")).collect::<Vec<_>>().join(", ")
        )));
    }

    let mut repos = vec![options.local.clone()];
    let repo_secrets = add_offsite(&mut repos, options.offsite.as_ref());
    let mut config = BackupConfig::for_server(&server, options.state_dir.clone(), repos);
    if let Some(queue) = &options.archive_queue_max {
        config.archive_queue_max = queue.clone();
    }
    config.io_timeout = options.io_timeout;
    if let (Repo::Remote { host, .. }, Some(tls)) = (&options.local, &options.tls) {
        config.tls = Some(tls.link(&options.config_path, host));
    }
    write_config(&options.config_path, &config, &server.os_user)?;
    secrets::write(&options.config_path, &repo_secrets, &server.os_user)?;
    if let Some(tls) = &options.tls {
        tls.files.install(&options.config_path, &server.os_user)?;
    }
    prepare_directories(&config, &server.os_user)?;
    let changed = apply_settings(&mut conn, &wanted).await?;
    conn.close().await.ok();

    // A standby has nothing to archive yet and cannot create the stanza (pgBackRest needs the
    // primary); the leader's setup, and the repository host's, do both.
    let checked = if standby {
        false
    } else {
        pgbackrest.run("stanza-create", &[])?;
        if restart_needed {
            false
        } else {
            pgbackrest.run("check", &[])?;
            true
        }
    };
    Ok(SetupReport {
        config: options.config_path.clone(),
        pgbackrest_version: version_text,
        repos: config.repos.iter().map(Repo::describe).collect(),
        changed,
        restart_needed,
        checked,
        standby,
        repo_host: config.repo_host().map(str::to_owned),
    })
}

/// Every path that reaches `pgbackrest.conf` or `archive_command`, and the queue size, before
/// anything is written.
fn check_paths(options: &SetupOptions) -> Result<(), BackupError> {
    check_config_path("--config", &options.config_path)?;
    check_config_path("--state-dir", &options.state_dir)?;
    match &options.local {
        Repo::Posix { path } => {
            check_config_path("--repo", path)?;
            if options.tls.is_some() {
                return Err(BackupError::Config(
                    "the --tls-… options are for a repository host: give --repo-host too. Nothing was changed".to_owned(),
                ));
            }
        }
        Repo::Remote { host, path } => {
            check_host("--repo-host", host)?;
            check_config_path("--repo", path)?;
            let Some(tls) = &options.tls else {
                return Err(BackupError::Config(
                    "--repo-host needs --tls-ca, --tls-cert, --tls-key (cabinet-db backup certs makes them) and --tls-listen (this host's tailnet address). Nothing was changed".to_owned(),
                ));
            };
            tls.check()?;
        }
        Repo::S3(_) => {
            return Err(BackupError::Config(
                "the first repository is a directory; an S3 bucket is the offsite one".to_owned(),
            ));
        }
    }
    if let Some(queue) = &options.archive_queue_max {
        check_archive_queue_max(queue)?;
    }
    Ok(())
}

/// A rerun without the offsite options must not silently stop the offsite copies.
pub(super) fn keeps_the_offsite(
    config_path: &Path,
    offsite_given: bool,
    remove: bool,
) -> Result<(), BackupError> {
    if offsite_given || remove {
        return Ok(());
    }
    match BackupConfig::read(config_path) {
        Ok(existing) => match existing.offsite() {
            Some((n, s3)) => Err(BackupError::Config(format!(
                "{} has an offsite repository (repo{n}: {s3}); give the same --s3-… options and --cipher-pass-file to keep it, or --remove-offsite to stop copying offsite. Nothing was changed",
                config_path.display()
            ))),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// The offsite repository's lines and secrets, when there is one: it is `repo2`.
pub(super) fn add_offsite(repos: &mut Vec<Repo>, offsite: Option<&Offsite>) -> Vec<RepoSecrets> {
    let Some(offsite) = offsite else { return Vec::new() };
    repos.push(Repo::S3(offsite.repo.clone()));
    vec![RepoSecrets {
        repo: repos.len(),
        s3: Some(offsite.credentials.clone()),
        cipher_pass: Some(offsite.cipher_pass.clone()),
    }]
}

/// The state directories and each local repository, owned by the server's user.
pub(super) fn prepare_directories(config: &BackupConfig, owner: &RunAs) -> Result<(), BackupError> {
    let mut dirs = vec![config.state_dir.clone(), config.log_dir(), config.lock_dir(), config.spool_dir()];
    for repo in &config.repos {
        match repo {
            Repo::Posix { path } => dirs.push(path.clone()),
            Repo::S3(_) | Repo::Remote { .. } => {}
        }
    }
    for dir in dirs {
        make_owned_dir(&dir, 0o750, owner)?;
    }
    Ok(())
}

/// Creates `dir` (its missing parents open to traversal, 0755; itself `mode`) and gives it to
/// `owner`.
pub(crate) fn make_owned_dir(dir: &Path, mode: u32, owner: &RunAs) -> Result<(), BackupError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(BackupError::io(format!("create {}", parent.display())))?;
    }
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(dir)
            .map_err(BackupError::io(format!("create {}", dir.display())))?;
    }
    owner.hand_over(dir)?;
    Ok(())
}

/// `pgbackrest.conf`, 0640, owned by the server's user. It holds no secret (those are in the
/// secrets include file), so it can be shown when asking for help.
pub(super) fn write_config(path: &Path, config: &BackupConfig, owner: &RunAs) -> Result<(), BackupError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(BackupError::io(format!("create {}", dir.display())))?;
    }
    // (Created before the state directories, a shared parent stays traversable.)
    let io = || BackupError::io(format!("write {}", path.display()));
    let mut file = AtomicFile::create(path, 0o640).map_err(io())?;
    file.write_all(config.render().as_bytes()).map_err(io())?;
    file.commit().map_err(io())?;
    owner.hand_over(path)?;
    Ok(())
}

/// Patroni's cache of its dynamic configuration, in the data directory of every server it runs.
const PATRONI_CACHE: &str = "patroni.dynamic.json";

/// What `archive_mode`, `archive_command`, `archive_timeout` (and `wal_level` when it is
/// `minimal`) must become, and whether the server must restart for them (or still waits for an
/// earlier run's restart). Changes nothing.
async fn wanted_settings(
    conn: &mut PgConnection,
    config_path: &Path,
) -> Result<(Vec<(&'static str, String)>, bool), BackupError> {
    let command = archive_command(config_path);
    let current: Vec<(String, String)> = sqlx::query_as(
        "SELECT name::text, setting FROM pg_settings
          WHERE name IN ('archive_mode', 'archive_command', 'archive_timeout', 'wal_level')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let now = |name: &str| current.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let mut wanted: Vec<(&str, String)> = Vec::new();
    if !matches!(now("archive_mode"), "on" | "always") {
        wanted.push(("archive_mode", "on".to_owned()));
    }
    if now("archive_command") != command {
        wanted.push(("archive_command", command.clone()));
    }
    // pg_settings shows it in seconds.
    if now("archive_timeout") != ARCHIVE_TIMEOUT.trim_end_matches('s') {
        wanted.push(("archive_timeout", ARCHIVE_TIMEOUT.to_owned()));
    }
    if now("wal_level") == "minimal" {
        wanted.push(("wal_level", "replica".to_owned()));
    }
    let restart_needed = wanted.iter().any(|(name, _)| matches!(*name, "archive_mode" | "wal_level"))
        || pending_restart(conn).await?;
    Ok((wanted, restart_needed))
}

/// Sets `wanted` through `ALTER SYSTEM` and reloads; what changed, in words.
async fn apply_settings(
    conn: &mut PgConnection,
    wanted: &[(&str, String)],
) -> Result<Vec<String>, BackupError> {
    let mut changed = Vec::new();
    for (name, value) in wanted {
        sqlx::raw_sql(AssertSqlSafe(format!("ALTER SYSTEM SET {name} = {}", quote_literal(value))))
            .execute(&mut *conn)
            .await?;
        changed.push(format!("{name} = {value}"));
    }
    if !changed.is_empty() {
        sqlx::query("SELECT pg_reload_conf()").execute(&mut *conn).await?;
    }
    Ok(changed)
}

/// An earlier run's `archive_mode` still waiting for the restart.
async fn pending_restart(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings WHERE name IN ('archive_mode', 'wal_level')",
    )
    .fetch_one(&mut *conn)
    .await
}
