//! Taking a backup, and listing what the repositories hold with the window a restore can
//! reach.

use std::{os::unix::fs::MetadataExt, path::Path};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Connection;

use super::{
    BackupError,
    archive::{self, WalGap},
    catalog::{BackupSet, Catalog},
    config::BackupConfig,
    pgbackrest::PgBackRest,
    server::run_as_owner,
    window::{self, Window},
};
use crate::db::{self, DatabaseUrl};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Everything.
    Full,
    /// What changed since the last full backup.
    Diff,
    /// What changed since the last backup of any kind.
    Incr,
}

impl Kind {
    /// `full`, `diff` or `incr`: pgBackRest's name, and the record's.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Diff => "diff",
            Kind::Incr => "incr",
        }
    }
}

/// pgBackRest for the configuration at `config_path`, run as the user that owns it (`backup
/// setup` gives it to the server's user).
pub fn pgbackrest_for(config_path: &Path) -> Result<PgBackRest, BackupError> {
    let owner = std::fs::metadata(config_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackupError::NotConfigured(config_path.to_owned()),
            _ => BackupError::Io { action: format!("read {}", config_path.display()), source: e },
        })?
        .uid();
    PgBackRest::new(config_path, run_as_owner(owner)?)
}

/// What `run` took.
#[derive(Debug, Clone, Serialize)]
pub struct Ran {
    /// The new backups, as the catalog lists them.
    pub backups: Vec<BackupSet>,
    /// In a Patroni cluster (several database hosts): whether the files came from a streaming
    /// standby (the leader only starts and stops the backup) or, with none, from the leader.
    pub(crate) from_standby: Option<bool>,
}

/// Takes a backup into one repository, or into each (pgBackRest backs up one repository per
/// run); returns them as the catalog lists them. A repository that fails does not stop the
/// others: the error names it and what was done. With several database hosts (a cluster),
/// the files are read from a standby when one streams, else from the leader.
pub fn run(config_path: &Path, kind: Kind, only: Option<u32>) -> Result<Ran, BackupError> {
    let pgbackrest = pgbackrest_for(config_path)?;
    let config = BackupConfig::read(config_path)?;
    if let Some(host) = config.repo_host() {
        return Err(BackupError::Config(format!(
            "backups of this server are taken on its repository host, {host} (pgBackRest backs up only there): run cabinet-db backup run on {host} (its timers do). Nothing was started"
        )));
    }
    let repos = config.repo_numbers(only)?;
    let mut failed = None;
    let mut done = Vec::new();
    let mut from_standby = (config.pg_hosts.len() > 1).then_some(true);
    for repo in repos {
        let args = [format!("--repo={repo}"), format!("--type={}", kind.as_str())];
        let mut result = backup(&pgbackrest, &args, from_standby == Some(true));
        // pgBackRest 2.45 has no backup-standby=prefer: with no standby streaming, the leader.
        if from_standby == Some(true) && result.as_ref().is_err_and(no_standby) {
            from_standby = Some(false);
            result = backup(&pgbackrest, &args, false);
        }
        match result {
            Ok(_) => done.push(repo),
            Err(e) => {
                failed.get_or_insert((repo, e));
            }
        }
    }
    let catalog = Catalog::from_info(&pgbackrest.info_json()?);
    let backups: Vec<BackupSet> = done.iter().filter_map(|&repo| catalog.newest_in(repo).cloned()).collect();
    if let Some((repo, error)) = failed {
        return Err(BackupError::RepoFailed {
            repo,
            done: backups
                .iter()
                .map(|b| format!("{} in repo{}", b.label, b.repo))
                .collect::<Vec<_>>()
                .join(", "),
            source: Box::new(error),
        });
    }
    if backups.len() != done.len() {
        return Err(BackupError::Config("pgBackRest reported success but lists no backup".to_owned()));
    }
    Ok(Ran { backups, from_standby })
}

fn backup(
    pgbackrest: &PgBackRest,
    args: &[String],
    standby: bool,
) -> Result<super::pgbackrest::RunOutput, BackupError> {
    let mut args = args.to_vec();
    if standby {
        args.push("--backup-standby".to_owned());
    }
    pgbackrest.run("backup", &args)
}

/// pgBackRest found no standby to back up from ("unable to find standby cluster").
fn no_standby(error: &BackupError) -> bool {
    matches!(error, BackupError::Tool { message, .. } if message.contains("unable to find standby"))
}

/// PostgreSQL's default WAL segment size, when no live server says.
const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// The repositories' contents and how far a restore can reach.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Listing {
    #[serde(flatten)]
    pub(crate) catalog: Catalog,
    /// A restore can reach any time from here…
    pub(crate) earliest: Option<DateTime<Utc>>,
    /// …to here: the later of the newest backup's end and the live server's last archived
    /// WAL segment (a restore while the server runs archives its current WAL first, and
    /// reaches the present). `None` when a hole cuts the present off (see `windows`).
    pub(crate) latest: Option<DateTime<Utc>>,
    /// The stretches a restore can reach, per repository, broken at each hole.
    pub(crate) windows: Vec<Window>,
    /// The holes in each repository's WAL archive (`after` the last segment before one).
    pub(crate) holes: Vec<WalGap>,
    /// Repositories whose archive could not be listed, and why: their holes are unknown.
    pub(crate) unlisted: Vec<String>,
}

pub(crate) async fn list(config_path: &Path, live: Option<&DatabaseUrl>) -> Result<Listing, BackupError> {
    let pgbackrest = pgbackrest_for(config_path)?;
    let catalog = Catalog::from_info(&pgbackrest.info_json()?);
    let (latest, last_wal, segment_size) = match live {
        Some(url) => {
            let mut conn = db::connect(url, "cabinet-db backup").await?;
            let (latest, last_wal, segment_size): (
                Option<crate::models::timestamps::Checked>,
                Option<String>,
                i64,
            ) = sqlx::query_as(
                "SELECT last_archived_time, last_archived_wal,
                            (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
                       FROM pg_stat_archiver",
            )
            .fetch_one(&mut conn)
            .await?;
            conn.close().await.ok();
            (latest.map(|t| t.0), last_wal, u64::try_from(segment_size).unwrap_or(DEFAULT_SEGMENT_SIZE))
        }
        None => (None, None, DEFAULT_SEGMENT_SIZE),
    };
    let newest_stop = catalog.backups.iter().filter(|b| !b.error).filter_map(|b| b.stopped).max();
    let latest = latest.max(newest_stop);
    let config = BackupConfig::read(config_path)?;
    let mut holes = Vec::new();
    let mut unlisted = Vec::new();
    for repo in config.repo_numbers(None)? {
        match archive::list_archive(&pgbackrest, repo) {
            Ok(names) => {
                let runs = archive::runs_from_names(repo, names.iter().map(String::as_str), segment_size);
                holes.extend(archive::gaps(&runs, &catalog));
                holes.extend(last_wal.as_deref().and_then(|wal| archive::tail_gap(&runs, wal, &catalog)));
            }
            Err(e) => unlisted.push(format!("repo{repo}: {e}")),
        }
    }
    let windows = window::windows(&catalog, &holes, latest);
    // The present is reachable when some repository's last window runs to it.
    let latest = latest.filter(|_| holes.is_empty() || windows.iter().any(|w| w.to_wal.is_none()));
    Ok(Listing { earliest: catalog.earliest(), latest, windows, holes, unlisted, catalog })
}
