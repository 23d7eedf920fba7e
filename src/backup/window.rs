//! The window a restore can reach, per repository, broken at each hole in its WAL archive.
//!
//! A restore starts from a backup and replays WAL from that backup's start; it cannot pass a
//! hole. So a window opens at the end of a backup, runs to the last segment before the next
//! hole (or to the present), and the next window opens only at the end of the first backup
//! that starts after the hole. The holes are `archive::gaps`, the same the audit judges. The
//! time a window ends at a hole is not known without replaying the WAL (a restore with
//! `--end-of-continuous-wal` says it); its last segment is.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{
    archive::{Segment, WalGap},
    catalog::{BackupSet, Catalog},
};

/// One stretch of time a restore can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Window {
    pub(crate) repo: u32,
    /// From the end of this backup (pgBackRest records whole seconds: the second after).
    pub(crate) from: Option<DateTime<Utc>>,
    /// The backup it opens with.
    pub(crate) from_backup: String,
    /// To here; `None` when it ends at a hole (see `to_wal`) or nothing later is known.
    pub(crate) to: Option<DateTime<Utc>>,
    /// The last WAL segment before the hole that ends it; `None` when it runs to the present.
    pub(crate) to_wal: Option<String>,
}

/// Each repository's windows, oldest first; `latest` is the time the last open window reaches.
pub(crate) fn windows(catalog: &Catalog, holes: &[WalGap], latest: Option<DateTime<Utc>>) -> Vec<Window> {
    let mut repos: Vec<u32> = catalog.backups.iter().map(|b| b.repo).collect();
    repos.sort_unstable();
    repos.dedup();
    repos.into_iter().flat_map(|repo| windows_in(repo, catalog, holes, latest)).collect()
}

fn windows_in(repo: u32, catalog: &Catalog, holes: &[WalGap], latest: Option<DateTime<Utc>>) -> Vec<Window> {
    let start = |b: &BackupSet| b.wal_start.as_deref().and_then(Segment::parse);
    let mut backups: Vec<&BackupSet> =
        catalog.backups.iter().filter(|b| b.repo == repo && !b.error && start(b).is_some()).collect();
    backups.sort_by_key(|b| start(b).map(|s| (s.log, s.seg)));
    let mut holes: Vec<(Segment, Option<Segment>)> = holes
        .iter()
        .filter(|h| h.repo == repo)
        .filter_map(|h| Some((Segment::parse(&h.after)?, h.before.as_deref().and_then(Segment::parse))))
        .collect();
    holes.sort_by_key(|(after, _)| (after.log, after.seg));

    let mut out = Vec::new();
    let mut next = backups.first().copied();
    while let Some(backup) = next {
        let opened = start(backup).map(|s| (s.log, s.seg)).unwrap_or_default();
        let from = backup.stopped.map(|t| t + Duration::seconds(1));
        // The first hole this window's WAL would have to cross.
        let Some((after, before)) = holes.iter().find(|(after, _)| (after.log, after.seg) >= opened) else {
            out.push(Window { repo, from, from_backup: backup.label.clone(), to: latest, to_wal: None });
            break;
        };
        out.push(Window {
            repo,
            from,
            from_backup: backup.label.clone(),
            to: None,
            to_wal: Some(after.name()),
        });
        // The next window opens at the first backup that starts past the hole.
        next = before.and_then(|before| {
            backups
                .iter()
                .copied()
                .find(|b| start(b).is_some_and(|s| (s.log, s.seg) >= (before.log, before.seg)))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(label: &str, stopped: &str, wal_start: &str) -> BackupSet {
        BackupSet {
            label: label.into(),
            kind: "full".into(),
            started: None,
            stopped: crate::models::timestamps::parse(stopped),
            lsn_start: None,
            lsn_stop: None,
            wal_start: Some(wal_start.into()),
            wal_stop: None,
            size: None,
            repository_size: None,
            repo: 1,
            error: false,
        }
    }

    fn hole(after: &str, before: &str) -> WalGap {
        WalGap { repo: 1, after: after.into(), before: Some(before.into()), behind_newest_backup: false }
    }

    #[test]
    fn a_hole_closes_the_window_and_the_next_backup_opens_another() {
        let latest = crate::models::timestamps::parse("2026-11-27T18:00:00Z");
        let first = full("A", "2026-11-27T10:00:00Z", "000000010000000000000002");
        let catalog = Catalog { backups: vec![first.clone()], ..Catalog::default() };
        let none = windows(&catalog, &[], latest);
        assert_eq!(none.len(), 1);
        assert_eq!((none[0].to, none[0].to_wal.as_deref()), (latest, None));

        let holes = [hole("000000010000000000000005", "000000010000000000000009")];
        let broken = windows(&catalog, &holes, latest);
        assert_eq!(broken.len(), 1, "no backup after the hole: the present is out of reach");
        assert_eq!((broken[0].to, broken[0].to_wal.as_deref()), (None, Some("000000010000000000000005")));

        let second = full("B", "2026-11-27T15:00:00Z", "00000001000000000000000A");
        let catalog = Catalog { backups: vec![second, first], ..Catalog::default() };
        let two = windows(&catalog, &holes, latest);
        assert_eq!(two.len(), 2, "{two:?}");
        assert_eq!(
            (two[0].from_backup.as_str(), two[0].to_wal.as_deref()),
            ("A", Some("000000010000000000000005"))
        );
        assert_eq!((two[1].from_backup.as_str(), two[1].to), ("B", latest));
        let old_hole = [hole("000000010000000000000001", "000000010000000000000002")];
        assert_eq!(
            windows(&catalog, &old_hole, latest).len(),
            1,
            "a hole before every backup breaks nothing"
        );
    }
}
