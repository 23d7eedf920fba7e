//! What the repositories hold, as pgBackRest lists them (`backup list`'s listing): each
//! repository's newest backup of each kind (when it ended, its size), whether pgBackRest could
//! read the repository, and the holes in its WAL archive. The costly part of a scrape
//! (`pgbackrest info` and a listing of each archive): `cabinet-db metrics` runs it, the scrape
//! of `serve` reads what it wrote.

use std::collections::BTreeSet;

use super::exposition::{Family, Kind};
use crate::backup::{BackupError, run::Listing};

/// The families of a listing, or of its failure (`cabinet_backup_listing_ok 0`).
pub(super) fn families(listing: &Result<Listing, BackupError>, configured_repos: &[u32]) -> Vec<Family> {
    let ok = |value| {
        Family::single(
            "cabinet_backup_listing_ok",
            "1 when pgBackRest listed the repositories for this scrape, else 0 (`cabinet-db backup list` says why).",
            Kind::Gauge,
            value,
        )
    };
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            tracing::warn!(error = %e, "pgBackRest could not list the repositories for the metrics");
            return vec![ok(0.0)];
        }
    };
    let catalog = &listing.catalog;
    let mut end = Family::new(
        "cabinet_backup_last_end_timestamp_seconds",
        "When the newest good backup of each type in each repository ended (Unix time); a full one with 0 when there is none.",
        Kind::Gauge,
    );
    let mut size = Family::new(
        "cabinet_backup_last_size_bytes",
        "The database size the newest good backup of each type in each repository copied.",
        Kind::Gauge,
    );
    let mut stored = Family::new(
        "cabinet_backup_last_repository_size_bytes",
        "What the newest good backup of each type added to its repository (compressed, deduplicated).",
        Kind::Gauge,
    );
    for &repo in configured_repos {
        let number = repo.to_string();
        let kinds: BTreeSet<&str> = catalog
            .backups
            .iter()
            .filter(|b| b.repo == repo)
            .map(|b| b.kind.as_str())
            .chain(["full"])
            .collect();
        for kind in kinds {
            let newest = catalog
                .backups
                .iter()
                .filter(|b| b.repo == repo && b.kind == kind && !b.error)
                .max_by_key(|b| b.stopped);
            let labels = [("repo", number.as_str()), ("type", kind)];
            end.push(&labels, newest.and_then(|b| b.stopped).map_or(0.0, |t| t.timestamp() as f64));
            if let Some(backup) = newest {
                if let Some(bytes) = backup.size {
                    size.push(&labels, bytes as f64);
                }
                if let Some(bytes) = backup.repository_size {
                    stored.push(&labels, bytes as f64);
                }
            }
        }
    }
    let mut readable = Family::new(
        "cabinet_backup_repository_ok",
        "1 when pgBackRest read the repository and listed its WAL archive, else 0.",
        Kind::Gauge,
    );
    let mut holes = Family::new(
        "cabinet_wal_holes",
        "Holes in each repository's WAL archive (segments missing between archived ones, or archived by the server but absent); no sample when the archive could not be listed.",
        Kind::Gauge,
    );
    for &repo in configured_repos {
        let number = repo.to_string();
        let unlisted = listing.unlisted.iter().any(|u| u.starts_with(&format!("repo{repo}:")));
        let status_ok = catalog.repos.iter().find(|r| r.repo == repo).is_none_or(|r| r.code == 0);
        readable.push(&[("repo", &number)], if status_ok && !unlisted { 1.0 } else { 0.0 });
        if !unlisted {
            holes.push(&[("repo", &number)], listing.holes.iter().filter(|h| h.repo == repo).count() as f64);
        }
    }
    vec![ok(1.0), end, size, stored, readable, holes]
}
