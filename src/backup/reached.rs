//! Where a recovery stopped, and whether it stopped at a hole.
//!
//! PostgreSQL ends an archive recovery at the first WAL it cannot read — the end of the
//! archive, or a hole: a segment missing, truncated or damaged, a timeline whose history is
//! gone — and, with no target, promotes there as if that were the end. So after recovery the
//! copy's log is read (its messages in English: the copy runs with `lc_messages = 'C'`): the
//! last segment restored from the archive, the last record replayed (`redo done at`) and the
//! last commit's time (`last completed transaction was at log time`), which PostgreSQL logs
//! on purpose before it judges whether the target was reached.
//!
//! Whether that point is the end is the repository's word, not ours: when it lists WAL beyond
//! that segment, on its timeline or a later one, recovery stopped at a hole. The runs and
//! holes come from `archive` (the same the audit and `backup list` read); nothing here reads
//! WAL.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    archive::{self, Segment, WalRun},
    catalog::Catalog,
};
use crate::models::timestamps;

/// How far a recovery got, as PostgreSQL logged it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Reached {
    /// The last WAL segment restored from the archive.
    pub(crate) segment: Option<String>,
    /// The start of the last record replayed.
    pub(crate) lsn: Option<String>,
    /// The segment holding `lsn` (on the timeline of `segment`): what messages name, the
    /// same whatever was fetched after it.
    pub(crate) lsn_segment: Option<String>,
    /// The time of the last commit replayed; `None` when none was (nothing committed after
    /// the backup, or recovery stopped before the first).
    pub(crate) last_commit: Option<DateTime<Utc>>,
}

impl Reached {
    /// From the copy's server log; `segment_size` is its WAL segment size in bytes.
    pub(crate) fn from_log(log: &str, segment_size: u64) -> Reached {
        let mut reached = Reached::default();
        for line in log.lines() {
            if let Some(rest) = line.split_once("restored log file \"").map(|(_, r)| r)
                && let Some((name, _)) = rest.split_once('"')
                && Segment::parse(name).is_some()
            {
                reached.segment = Some(name.to_owned());
            } else if let Some(rest) = line.split_once("redo done at ").map(|(_, r)| r) {
                reached.lsn = rest.split_whitespace().next().map(str::to_owned);
            } else if let Some(rest) =
                line.split_once("last completed transaction was at log time ").map(|(_, r)| r)
            {
                reached.last_commit = DateTime::parse_from_str(rest.trim(), "%Y-%m-%d %H:%M:%S%.f%#z")
                    .ok()
                    .map(|t| t.with_timezone(&Utc));
            }
        }
        let timeline = reached.segment.as_deref().and_then(Segment::parse).map_or(1, |s| s.timeline);
        reached.lsn_segment = reached
            .lsn
            .as_deref()
            .and_then(|lsn| Segment::of_lsn(lsn, timeline, segment_size))
            .map(|s| s.name());
        reached
    }

    /// In words, for messages: `LSN 0/6000060 (in segment …), last commit at …`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.lsn, &self.lsn_segment, &self.segment) {
            (Some(lsn), Some(segment), _) => parts.push(format!("LSN {lsn} (in segment {segment})")),
            (Some(lsn), None, _) => parts.push(format!("LSN {lsn}")),
            (None, _, Some(segment)) => parts.push(format!("the end of segment {segment}")),
            (None, _, None) => parts.push("the end of the backup (no archived WAL replayed)".to_owned()),
        }
        parts.push(match self.last_commit {
            Some(t) => format!("last commit replayed at {}", timestamps::format(t)),
            None => "no commit replayed after the backup".to_owned(),
        });
        parts.join(", ")
    }
}

/// Why recovery could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HoleKind {
    /// The next segment is not in the repository.
    Missing,
    /// The next segment is listed but could not be read whole (truncated, damaged: pgBackRest
    /// checks each against the checksum in its name).
    Unreadable,
    /// The timeline ends and the repository's later timeline does not continue from it (its
    /// history file or the segments joining them are gone).
    TimelineEnds,
}

/// A hole a recovery stopped at, in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Hole {
    pub(crate) repo: u32,
    pub(crate) kind: HoleKind,
    /// The last segment read before it.
    pub(crate) after: String,
    /// The first segment the repository holds beyond it.
    pub(crate) resumes: String,
    /// The first and last segments recovery could not read: the missing ones, or the one it
    /// could not read whole; `None` when a timeline ends.
    pub(crate) first_unread: Option<String>,
    pub(crate) last_unread: Option<String>,
    /// What pgBackRest said when PostgreSQL asked for the segment (from the copy's log).
    pub(crate) detail: Option<String>,
}

impl Hole {
    pub(crate) fn explain(&self) -> String {
        let unread = match (&self.first_unread, &self.last_unread) {
            (Some(first), last) => {
                format!("WAL {}", archive::segments_in_words(first, last.as_deref().unwrap_or(first)))
            }
            _ => "WAL is".to_owned(),
        };
        let what = match self.kind {
            HoleKind::Missing => format!(
                "{unread} missing in repo{} (the last segment before the hole is {}; the archive resumes at {})",
                self.repo, self.after, self.resumes
            ),
            HoleKind::Unreadable => format!(
                "{unread} in repo{} but could not be read whole (truncated or damaged; cabinet-db backup verify checks every file), so recovery stopped after {}",
                self.repo, self.after
            ),
            HoleKind::TimelineEnds => format!(
                "the timeline of {} does not continue: repo{} holds WAL from {} on, on a timeline recovery cannot follow from it",
                self.after, self.repo, self.resumes
            ),
        };
        match &self.detail {
            Some(detail) => format!("{what} (pgBackRest: {detail})"),
            None => what,
        }
    }
}

/// The hole recovery stopped at, if `reached.segment` is not the end of what `runs` (one
/// repository's archive) holds on its timeline or a later one.
pub(crate) fn hole_after(
    reached: &Reached,
    runs: &[WalRun],
    catalog: &Catalog,
    log: &str,
    segment_size: u64,
) -> Option<Hole> {
    let last = Segment::parse(reached.segment.as_deref()?)?;
    let repo = runs.first()?.repo;
    let same_timeline = |r: &&WalRun| r.start.timeline == last.timeline;
    let short = wrong_size(log);
    let detail = archive_get_error(log).or_else(|| short.as_ref().map(WrongSize::describe));
    // Listed past the last segment read, in the same run: it is there but was not read. The
    // one not read is the one PostgreSQL refused for its size, else the next it asked for.
    if runs.iter().filter(same_timeline).any(|r| r.start <= last && last < r.stop) {
        let unread = short.map_or_else(|| last.next(segment_size).name(), |w| w.segment);
        return Some(Hole {
            repo,
            kind: HoleKind::Unreadable,
            after: last.name(),
            resumes: last.name(),
            first_unread: Some(unread.clone()),
            last_unread: Some(unread),
            detail,
        });
    }
    // The run ends there and a later one on the same timeline begins after a hole.
    if let Some(gap) = archive::gaps(runs, catalog).into_iter().find(|g| g.after == last.name()) {
        let (first, last) = match gap.before.as_deref().and_then(Segment::parse) {
            Some(before) => {
                let (first, last) = archive::missing_between(last, before, segment_size);
                (first.name(), Some(last.name()))
            }
            None => (last.next(segment_size).name(), None),
        };
        return Some(Hole {
            repo,
            kind: HoleKind::Missing,
            after: gap.after,
            resumes: gap.before.clone().unwrap_or_default(),
            first_unread: Some(first),
            last_unread: last,
            detail,
        });
    }
    // A later timeline holds positions beyond, yet recovery did not switch to it.
    runs.iter()
        .filter(|r| r.stop.timeline > last.timeline && r.stop.position() > last.position())
        .map(|r| r.start)
        .min()
        .map(|resumes| Hole {
            repo,
            kind: HoleKind::TimelineEnds,
            after: last.name(),
            resumes: resumes.name(),
            first_unread: None,
            last_unread: None,
            detail,
        })
}

/// A segment the archive returned shorter (or longer) than a segment: PostgreSQL's FATAL
/// `archive file "…" has wrong size: N instead of M`, or the same words from the copy's
/// `restore_command`, which refuses such a file so that recovery ends before it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrongSize {
    pub(crate) segment: String,
    pub(crate) size: u64,
    pub(crate) expected: u64,
}

/// What PostgreSQL (or the copy's `restore_command`) wrote in the log about the first segment
/// of the wrong size.
pub(crate) const WRONG_SIZE: &str = "has wrong size: ";

impl WrongSize {
    fn describe(&self) -> String {
        format!(
            "archive-get returned {} as {} bytes instead of {}: the file in the repository is truncated",
            self.segment, self.size, self.expected
        )
    }
}

pub(crate) fn wrong_size(log: &str) -> Option<WrongSize> {
    log.lines().find_map(|line| {
        let (head, sizes) = line.split_once(WRONG_SIZE)?;
        let segment = head.rsplit_once("archive file \"")?.1.split('"').next()?;
        Segment::parse(segment)?;
        let (size, rest) = sizes.split_once(" instead of ")?;
        let expected = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        Some(WrongSize {
            segment: segment.to_owned(),
            size: size.trim().parse().ok()?,
            expected: expected.parse().ok()?,
        })
    })
}

/// pgBackRest's error for a segment `restore_command` could not fetch, as it reached the log
/// (its console output is the command's stderr): the first `ERROR:` line.
fn archive_get_error(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("ERROR: [") && !l.contains("FATAL"))
        .map(|l| l.split_once("ERROR: ").map_or(l, |(_, r)| r).trim())
        .map(|l| {
            if l.chars().count() > 300 {
                l.chars().take(300).collect::<String>() + "…"
            } else {
                l.to_owned()
            }
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIXTEEN_MIB: u64 = 16 << 20;

    const LOG: &str = r#"2026-11-27 12:35:33.100 UTC [81] LOG:  starting archive recovery
2026-11-27 12:35:33.200 UTC [81] LOG:  restored log file "00000002.history" from archive
2026-11-27 12:35:33.300 UTC [81] LOG:  restored log file "000000010000000000000005" from archive
2026-11-27 12:35:33.400 UTC [81] LOG:  redo starts at 0/5000028
2026-11-27 12:35:33.500 UTC [81] LOG:  restored log file "000000010000000000000006" from archive
2026-11-27 12:35:33.600 UTC [81] LOG:  redo done at 0/6000060 system usage: CPU: user: 0.00 s
2026-11-27 12:35:33.600 UTC [81] LOG:  last completed transaction was at log time 2026-11-27 12:30:01.123456+00
2026-11-27 12:35:33.700 UTC [81] FATAL:  recovery ended before configured recovery target was reached"#;

    fn runs(names: &[&str]) -> Vec<WalRun> {
        archive::runs_from_names(
            1,
            names
                .iter()
                .map(|n| format!("15-1/0000000100000000/{n}-ab.zst"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
            SIXTEEN_MIB,
        )
    }

    #[test]
    fn the_log_says_the_last_segment_record_and_commit() {
        let reached = Reached::from_log(LOG, SIXTEEN_MIB);
        assert_eq!(reached.segment.as_deref(), Some("000000010000000000000006"));
        assert_eq!(reached.lsn.as_deref(), Some("0/6000060"));
        assert_eq!(reached.last_commit, Some(timestamps::parse("2026-11-27T12:30:01.123456Z").unwrap()));
        assert!(
            reached.describe().contains("last commit replayed at 2026-11-27T12:30:01.123456Z"),
            "{}",
            reached.describe()
        );
        // The segment named is the one holding the LSN, whatever was fetched after it.
        let read_ahead = LOG.replace("0/6000060", "0/6000390").replace(
            "LOG:  redo done",
            "LOG:  restored log file \"000000010000000000000007\" from archive\n2026-11-27 12:35:33.600 UTC [81] LOG:  redo done",
        );
        for log in [LOG.replace("0/6000060", "0/6000390"), read_ahead] {
            let described = Reached::from_log(&log, SIXTEEN_MIB).describe();
            assert!(
                described.starts_with("LSN 0/6000390 (in segment 000000010000000000000006)"),
                "{described}"
            );
        }
        assert_eq!(
            Reached::from_log("", SIXTEEN_MIB).describe(),
            "the end of the backup (no archived WAL replayed), no commit replayed after the backup"
        );
    }

    #[test]
    fn wal_listed_beyond_the_point_reached_is_a_hole_of_its_shape() {
        let reached = Reached::from_log(LOG, SIXTEEN_MIB);
        let catalog = Catalog::default();
        let end = runs(&["000000010000000000000005", "000000010000000000000006"]);
        assert_eq!(
            hole_after(&reached, &end, &catalog, LOG, SIXTEEN_MIB),
            None,
            "the end of the archive is no hole"
        );

        let missing =
            runs(&["000000010000000000000005", "000000010000000000000006", "000000010000000000000009"]);
        let hole = hole_after(&reached, &missing, &catalog, LOG, SIXTEEN_MIB).unwrap();
        assert_eq!((hole.kind, hole.resumes.as_str()), (HoleKind::Missing, "000000010000000000000009"));
        assert!(
            hole.explain()
                .contains("WAL segments 000000010000000000000007 to 000000010000000000000008 are missing"),
            "{}",
            hole.explain()
        );
        let one_missing =
            runs(&["000000010000000000000005", "000000010000000000000006", "000000010000000000000008"]);
        let hole = hole_after(&reached, &one_missing, &catalog, LOG, SIXTEEN_MIB).unwrap();
        assert!(
            hole.explain().contains("WAL segment 000000010000000000000007 is missing")
                && !hole.explain().contains("000000010000000000000008 is missing"),
            "{}",
            hole.explain()
        );

        let damaged =
            runs(&["000000010000000000000005", "000000010000000000000006", "000000010000000000000007"]);
        let log =
            format!("{LOG}\nP00  ERROR: [029]: raised from local-1: unexpected eof in compressed data\n");
        let hole = hole_after(&reached, &damaged, &catalog, &log, SIXTEEN_MIB).unwrap();
        assert_eq!(hole.kind, HoleKind::Unreadable);
        assert!(hole.explain().contains("unexpected eof"), "{}", hole.explain());
        assert!(
            hole.explain().contains("WAL segment 000000010000000000000007 is in repo1"),
            "{}",
            hole.explain()
        );

        // A short file: PostgreSQL's FATAL, or the same words from the copy's restore_command.
        for line in [
            r#"2026-12-03 15:33:12.384 UTC [1397] FATAL:  archive file "000000010000000000000007" has wrong size: 8388608 instead of 16777216"#,
            r#"cabinet-db: archive file "000000010000000000000007" has wrong size: 8388608 instead of 16777216 bytes; recovery ends before it"#,
        ] {
            let log = format!("{LOG}\n{line}\n");
            let hole = hole_after(&reached, &damaged, &catalog, &log, SIXTEEN_MIB).unwrap();
            assert_eq!(
                (hole.kind, hole.first_unread.as_deref()),
                (HoleKind::Unreadable, Some("000000010000000000000007"))
            );
            assert!(hole.explain().contains("8388608 bytes instead of 16777216"), "{}", hole.explain());
        }

        let mut forked = end.clone();
        forked.extend(archive::runs_from_names(
            1,
            ["15-1/0000000200000000/000000020000000000000008-cd.zst"],
            SIXTEEN_MIB,
        ));
        let hole = hole_after(&reached, &forked, &catalog, LOG, SIXTEEN_MIB).unwrap();
        assert_eq!((hole.kind, hole.resumes.as_str()), (HoleKind::TimelineEnds, "000000020000000000000008"));
        let mut older = forked.clone();
        older[1].stop = Segment::parse("000000020000000000000004").unwrap();
        older[1].start = older[1].stop;
        assert_eq!(
            hole_after(&reached, &older, &catalog, LOG, SIXTEEN_MIB),
            None,
            "a timeline that ended earlier is no hole"
        );
    }
}
