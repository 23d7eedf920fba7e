//! What this host's pgBackRest configuration leads to: whether backups are configured, the
//! repositories' listing, and the records its state directory holds (the drills', the audit's,
//! the backup runs'). Read on the database host by a user who may read that directory and run
//! pgBackRest (root or the server's user: the package's metrics unit).

use std::path::{Path, PathBuf};

use super::exposition::{Family, Kind};
use crate::{
    backup::{
        self,
        config::{BackupConfig, DRILLS_FILE},
        drill,
        repository::Repo,
    },
    db::DatabaseUrl,
    records::{AUDIT_FILE, AuditRecord},
};

/// The families for the configuration at `config`, and the local repositories' directories
/// (label, path) whose free space the scrape measures. Without a configuration:
/// `cabinet_backup_configured 0` alone.
pub(super) async fn families(config: &Path, url: &DatabaseUrl) -> (Vec<Family>, Vec<(String, PathBuf)>) {
    let configured = |value| {
        Family::single(
            "cabinet_backup_configured",
            "1 when pgBackRest's configuration (backup setup) is there to read, else 0.",
            Kind::Gauge,
            value,
        )
    };
    let backup = match BackupConfig::read(config) {
        Ok(backup) => backup,
        Err(backup::BackupError::NotConfigured(_)) => return (vec![configured(0.0)], Vec::new()),
        Err(e) => {
            // There but unreadable (permissions, a broken file): said in the log, and reported
            // as not configured, so the drill and audit alerts do not read a stale view.
            tracing::warn!(error = %e, "pgBackRest's configuration could not be read for the metrics");
            return (vec![configured(0.0)], Vec::new());
        }
    };
    let repos: Vec<u32> = backup.repo_numbers(None).unwrap_or_default();
    let listing = backup::run::list(config, Some(url)).await;
    let drills = drill::recorded(&backup.state_dir.join(DRILLS_FILE));
    let audit = AuditRecord::read(&backup.state_dir.join(AUDIT_FILE));
    let mut families = vec![configured(1.0)];
    families.extend(super::backups::families(&listing, &repos));
    families.extend(super::drills::of(&drills));
    families.extend(super::audit::families(audit.as_ref()));
    families.extend(super::schedule::families(&backup.state_dir, &drills, audit.as_ref()));
    let local_repos = repos
        .iter()
        .filter_map(|&n| match backup.repo(n)? {
            Repo::Posix { path } => Some((format!("repo{n}"), path.clone())),
            Repo::S3(_) | Repo::Remote { .. } => None,
        })
        .collect();
    (families, local_repos)
}
