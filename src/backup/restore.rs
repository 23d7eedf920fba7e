//! Restoring a backup into a **new** cluster on loopback: never over the running one, and with
//! archiving off in the copy (a restored copy must never push WAL into the production
//! repository — pgBackRest's `--archive-mode=off`).
//!
//! A recovery target the archive cannot reach is refused: a time in the future, or before the
//! oldest backup, before anything is restored; and when the live server is reachable, its
//! current WAL segment is switched out and archived first, so "a minute ago" is in the
//! archive. When it is not (the disaster case), PostgreSQL's own "recovery ended before
//! configured recovery target was reached" is caught and explained, and the copy removed.
//!
//! A restore ends where it was asked to or refuses. PostgreSQL ends recovery at the first WAL
//! it cannot read and, without a target, promotes there as if it were the end: so where it
//! stopped is read from the copy's log and held against the repository's listing (`reached`).
//! A hole before the target — `--latest` included — is a refusal naming the hole, the point
//! reached and the command that restores to it; the copy is stopped and removed. Only
//! `--end-of-continuous-wal` asks for that point, and gets it with the hole said.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Connection;

pub use super::copy::{socket_url, stop_and_remove};
pub use super::restore_error::RestoreError;
use super::restore_error::TARGET_NOT_REACHED;
use super::{
    BackupError, archive,
    catalog::Catalog,
    config::BackupConfig,
    copy,
    pgbackrest::PgBackRest,
    reached::{self, Hole, Reached},
    run::pgbackrest_for,
    setup::make_owned_dir,
};
use crate::{
    db::{self, DatabaseUrl},
    local_cluster::{LocalCluster, PgBinaries},
    models::timestamps,
};

/// How long to wait for the live server to archive its current segment.
const ARCHIVE_WAIT: Duration = Duration::from_secs(60);

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The end of the archived WAL; a hole before it is refused.
    Latest,
    /// As far as the WAL runs unbroken: the end of the archive, or the first hole.
    ContinuousEnd,
    Time(DateTime<Utc>),
    Lsn(String),
    /// A restore point (`pg_create_restore_point`): what the drill uses.
    Name(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Latest => f.write_str("the latest archived WAL"),
            Target::ContinuousEnd => f.write_str("the end of the continuous WAL"),
            Target::Time(t) => write!(f, "{}", timestamps::format(*t)),
            Target::Lsn(lsn) => write!(f, "LSN {lsn}"),
            Target::Name(name) => write!(f, "restore point {name}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub config_path: PathBuf,
    pub target_dir: PathBuf,
    /// Loopback TCP port for the copy; a free one when `None`.
    pub port: Option<u16>,
    pub target: Target,
    /// Restore from this repository (default: pgBackRest's choice, the first that has it).
    pub repo: Option<u32>,
    /// The live server, when reachable: its WAL is switched and archived before the restore.
    pub live: Option<DatabaseUrl>,
    /// The application database, for the printed URL.
    pub database: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub(crate) port: u16,
    /// The superuser's URL, over the copy's private socket.
    #[serde(serialize_with = "expose")]
    pub url: DatabaseUrl,
    pub(crate) target: String,
    /// From the start of the restore to the copy answering as a promoted primary.
    pub seconds_to_recovery: f64,
    pub timeline: i64,
    /// Where recovery stopped, as PostgreSQL logged it.
    pub(crate) reached: Reached,
    /// The hole it stopped at (only with `--end-of-continuous-wal`; any other target refuses).
    pub(crate) hole: Option<Hole>,
    /// The command that stops the copy (it is left running), as the user who restored it.
    pub(crate) stop_command: String,
    /// The running copy (to stop and remove it: `stop_and_remove`).
    #[serde(skip)]
    pub cluster: LocalCluster,
}

fn expose<S: serde::Serializer>(url: &DatabaseUrl, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.expose())
}

/// Restores into `options.target_dir` and starts the copy; it is left running (stop it with
/// the report's `stop_command`, or remove it with `stop_and_remove`).
pub async fn restore(options: &RestoreOptions) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let config = BackupConfig::read(&options.config_path)?;
    super::target_dir::check(&options.target_dir, &options.config_path, &config)?;
    let pgbackrest = pgbackrest_for(&options.config_path)?;
    let run_as = pgbackrest.run_as.clone();
    let catalog = Catalog::from_info(&pgbackrest.info_json()?);
    let earliest = catalog.earliest().ok_or(RestoreError::NoBackups)?;
    if let Target::Time(t) = options.target {
        if t > Utc::now() {
            return Err(RestoreError::Future { target: options.target.to_string() }.into());
        }
        if t < earliest {
            return Err(RestoreError::BeforeBackups {
                target: options.target.to_string(),
                earliest: timestamps::format(earliest),
            }
            .into());
        }
    }
    // With a live server, its current WAL is archived first, and the catalog read again.
    let catalog = match &options.live {
        Some(live) => {
            archive_current_wal(live).await;
            Catalog::from_info(&pgbackrest.info_json()?)
        }
        None => catalog,
    };
    let binaries = PgBinaries::for_major(catalog.pg_major.unwrap_or(0))?;

    let cluster = LocalCluster {
        root: options.target_dir.clone(),
        port: options.port.unwrap_or_else(free_port),
        binaries,
        run_as: run_as.clone(),
    };
    for (dir, mode) in [
        (cluster.root.clone(), 0o750),
        (cluster.pgdata(), 0o700),
        (cluster.socket_dir(), 0o700),
        (cluster.root.join("log"), 0o750),
    ] {
        make_owned_dir(&dir, mode, &run_as)?;
    }
    let restored = restore_files(&pgbackrest, &cluster, options);
    let segment_size = copy::wal_segment_size(&cluster);
    let result = match restored {
        Ok(()) => match copy::write_settings(&cluster, &config.pg_user, segment_size) {
            Ok(()) => copy::start(&cluster, &config.pg_user).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let log = std::fs::read_to_string(cluster.log_file()).unwrap_or_default();
    let reached = Reached::from_log(&log, segment_size);
    let timeline = match result {
        Ok(timeline) => timeline,
        Err(e) => {
            let e = match e {
                // Recovery ended short of the target, or PostgreSQL stopped at a segment of the
                // wrong size (should the copy's restore_command not have caught it): the
                // repository says whether a hole is why. The whole log is read, not its tail.
                BackupError::Restore(RestoreError::DidNotStart { .. })
                    if log.contains(TARGET_NOT_REACHED) || reached::wrong_size(&log).is_some() =>
                {
                    match find_hole(&pgbackrest, &config, options, &catalog, &reached, &log, segment_size) {
                        Some(hole) => hole_refusal(options, &hole, &reached).into(),
                        None => RestoreError::TargetNotReached {
                            target: options.target.to_string(),
                            archive_max: catalog.archive_max.clone().unwrap_or_else(|| "none".to_owned()),
                        }
                        .into(),
                    }
                }
                other => other,
            };
            stop_and_remove(&cluster);
            return Err(e);
        }
    };
    // A target reached is reached; the end of the archive is only the end if nothing lies
    // beyond the point recovery stopped at.
    let hole = match options.target {
        Target::Latest | Target::ContinuousEnd => {
            find_hole(&pgbackrest, &config, options, &catalog, &reached, &log, segment_size)
        }
        _ => None,
    };
    if let Some(hole) = &hole
        && options.target == Target::Latest
    {
        stop_and_remove(&cluster);
        return Err(hole_refusal(options, hole, &reached).into());
    }
    Ok(RestoreReport {
        reached,
        hole,
        data_dir: cluster.pgdata(),
        port: cluster.port,
        url: socket_url(&cluster, &config.pg_user, &options.database),
        stop_command: copy::stop_command(&cluster),
        target: options.target.to_string(),
        seconds_to_recovery: started.elapsed().as_secs_f64(),
        timeline,
        cluster,
    })
}

/// The hole in some repository's archive recovery stopped at, if any. A repository that
/// cannot be listed is passed over: pgBackRest's `archive-get` could not have read it either.
fn find_hole(
    pgbackrest: &PgBackRest,
    config: &BackupConfig,
    options: &RestoreOptions,
    catalog: &Catalog,
    reached: &Reached,
    log: &str,
    segment_size: u64,
) -> Option<Hole> {
    let repos = config.repo_numbers(options.repo).unwrap_or_default();
    repos.into_iter().find_map(|repo| {
        let names = archive::list_archive(pgbackrest, repo).ok()?;
        let runs = archive::runs_from_names(repo, names.iter().map(String::as_str), segment_size);
        reached::hole_after(reached, &runs, catalog, log, segment_size)
    })
}

/// The refusal, with the exact command that restores to the point reached.
fn hole_refusal(options: &RestoreOptions, hole: &Hole, reached: &Reached) -> RestoreError {
    let mut base = format!("cabinet-db backup restore --target-dir {}", options.target_dir.display());
    if options.config_path != Path::new(super::config::DEFAULT_CONFIG) {
        base = format!(
            "cabinet-db backup --config {} restore --target-dir {}",
            options.config_path.display(),
            options.target_dir.display()
        );
    }
    if let Some(repo) = options.repo {
        base.push_str(&format!(" --repo {repo}"));
    }
    let mut command = format!("{base} --end-of-continuous-wal");
    if let Some(t) = reached.last_commit {
        command.push_str(&format!(
            " (or, to the last commit before it: {base} --time {})",
            timestamps::format(t)
        ));
    }
    RestoreError::HoleBeforeTarget {
        target: options.target.to_string(),
        hole: hole.explain(),
        reached: reached.describe(),
        command,
    }
}

/// Restores over the production data directory (`--delta`: only what differs is rewritten),
/// refusing while the server runs. The server is not started: starting it (systemd) replays to
/// the target and promotes, and it archives again, on a new timeline.
pub fn restore_in_place(
    config_path: &Path,
    target: &Target,
    repo: Option<u32>,
) -> Result<PathBuf, BackupError> {
    let config = BackupConfig::read(config_path)?;
    if let Some(pid) = running_postmaster(&config.pg_path) {
        return Err(RestoreError::ServerRunning { data_dir: config.pg_path.clone(), pid }.into());
    }
    let pgbackrest = pgbackrest_for(config_path)?;
    let mut args = vec!["--delta".to_owned()];
    args.extend(target_args(target));
    if let Some(repo) = repo {
        args.push(format!("--repo={repo}"));
    }
    pgbackrest.run("restore", &args)?;
    Ok(config.pg_path)
}

/// The postmaster's pid, when `postmaster.pid` names a live process.
fn running_postmaster(data_dir: &Path) -> Option<i32> {
    let pid: i32 =
        std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok().then_some(pid)
}

/// pgBackRest's options for a target.
fn target_args(target: &Target) -> Vec<String> {
    let mut args = Vec::new();
    if !matches!(target, Target::Latest | Target::ContinuousEnd) {
        // At the end of the archive the server promotes by itself; at a target it must be told.
        args.push("--target-action=promote".to_owned());
    }
    match target {
        Target::Latest | Target::ContinuousEnd => {}
        // pgBackRest picks the backup set by parsing the time itself: PostgreSQL's spelling.
        Target::Time(t) => args
            .extend(["--type=time".to_owned(), format!("--target={}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"))]),
        Target::Lsn(lsn) => args.extend(["--type=lsn".to_owned(), format!("--target={lsn}")]),
        Target::Name(name) => args.extend(["--type=name".to_owned(), format!("--target={name}")]),
    }
    args
}

/// Switches the live server's WAL segment and waits (a bounded time) for it to be archived,
/// so the archive reaches the present. Best effort: a dead server is the disaster case.
async fn archive_current_wal(live: &DatabaseUrl) {
    let Ok(mut conn) = db::connect(live, "cabinet-db restore").await else { return };
    let switched: Result<String, _> =
        sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())").fetch_one(&mut conn).await;
    if let Ok(segment) = switched {
        let deadline = Instant::now() + ARCHIVE_WAIT;
        while Instant::now() < deadline {
            let archived: Option<String> =
                sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap_or(None);
            if archived.is_some_and(|a| a >= segment) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    conn.close().await.ok();
}

/// pgBackRest's restore into the copy's data directory, never archiving.
fn restore_files(
    pgbackrest: &PgBackRest,
    cluster: &LocalCluster,
    options: &RestoreOptions,
) -> Result<(), BackupError> {
    let mut args =
        vec![format!("--pg1-path={}", cluster.pgdata().display()), "--archive-mode=off".to_owned()];
    args.extend(target_args(&options.target));
    if let Some(repo) = options.repo {
        args.push(format!("--repo={repo}"));
    }
    pgbackrest.run("restore", &args).map(drop)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(54399)
}
