//! The WAL archive as a restore needs it: an unbroken run of segments from a backup's start
//! to the point in time wanted.
//!
//! pgBackRest drops WAL on purpose when a repository stays unreachable past
//! `archive-push-queue-max` (so the primary's disk survives), and its `verify` lists the runs
//! it found without calling a hole an error. Here the holes are found — from `verify`'s own
//! runs, or from the segment names a repository lists — and priced against the backups: a hole
//! after the newest full backup's start means recovery to the present is broken; one before it
//! means a stretch of the past is lost. `backup list` breaks the window at each (`window`), a
//! restore that stops at one refuses (`reached`).
//!
//! Why archiving fails is read from pgBackRest's asynchronous spool, which keeps the error of
//! each segment it could not push.

use std::path::Path;

use serde::Serialize;

use super::{BackupError, STANZA, catalog::Catalog, pgbackrest::PgBackRest};

/// A WAL segment's name: timeline, then its position (log and segment, each 8 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Segment {
    pub(crate) timeline: u32,
    pub(crate) log: u32,
    pub(crate) seg: u32,
}

impl Segment {
    /// `000000010000000000000003` (and the same followed by `-<sha1>.gz`, as pgBackRest stores
    /// it); not `.backup`, `.history` or `.partial` files.
    pub(crate) fn parse(name: &str) -> Option<Segment> {
        let head = name.get(..24)?;
        let rest = &name[24..];
        if !(rest.is_empty() || rest.starts_with('-')) || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let field = |i: usize| u32::from_str_radix(&head[i..i + 8], 16).ok();
        Some(Segment { timeline: field(0)?, log: field(8)?, seg: field(16)? })
    }

    pub(crate) fn name(&self) -> String {
        format!("{:08X}{:08X}{:08X}", self.timeline, self.log, self.seg)
    }

    /// The position alone, comparable across timelines.
    pub(crate) fn position(&self) -> (u32, u32) {
        (self.log, self.seg)
    }

    /// The segment after this one on the same timeline, for a segment size in bytes.
    pub(crate) fn next(&self, segment_size: u64) -> Segment {
        Segment::from_number(self.timeline, self.number(segment_size) + 1, segment_size)
    }

    /// The segment before this one on the same timeline (itself for the very first).
    pub(crate) fn prev(&self, segment_size: u64) -> Segment {
        Segment::from_number(self.timeline, self.number(segment_size).saturating_sub(1), segment_size)
    }

    /// The segment holding WAL position `lsn` (`0/6000390`, as PostgreSQL prints it) on
    /// `timeline`: its byte position divided by the segment size, named as PostgreSQL names
    /// it (`XLogFileName`: the number split into "log" and segment within it).
    pub(crate) fn of_lsn(lsn: &str, timeline: u32, segment_size: u64) -> Option<Segment> {
        let (high, low) = lsn.trim().split_once('/')?;
        let position = (u64::from(u32::from_str_radix(high, 16).ok()?) << 32)
            | u64::from(u32::from_str_radix(low, 16).ok()?);
        Some(Segment::from_number(timeline, position / segment_size.max(1), segment_size))
    }

    /// The segments per "log" (the 4 GiB the middle 8 hex digits count).
    fn per_log(segment_size: u64) -> u64 {
        (0x1_0000_0000u64 / segment_size.max(1)).max(1)
    }

    fn number(&self, segment_size: u64) -> u64 {
        u64::from(self.log) * Segment::per_log(segment_size) + u64::from(self.seg)
    }

    fn from_number(timeline: u32, number: u64, segment_size: u64) -> Segment {
        let per_log = Segment::per_log(segment_size);
        Segment { timeline, log: (number / per_log) as u32, seg: (number % per_log) as u32 }
    }
}

/// The segments missing strictly between `after` (the last one present) and `before` (the
/// first one present again): the first and the last. Every hole that names its missing WAL
/// counts it here and says it with `segments_in_words`, so none calls a present one missing.
pub(crate) fn missing_between(after: Segment, before: Segment, segment_size: u64) -> (Segment, Segment) {
    (after.next(segment_size), before.prev(segment_size).max(after.next(segment_size)))
}

/// `segment X is` or `segments X to Y are`.
pub(crate) fn segments_in_words(first: &str, last: &str) -> String {
    if first == last { format!("segment {first} is") } else { format!("segments {first} to {last} are") }
}

/// A run of consecutive segments on one timeline in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WalRun {
    pub(crate) repo: u32,
    /// pgBackRest's archive id, e.g. `15-1`.
    pub(crate) archive_id: String,
    pub(crate) start: Segment,
    pub(crate) stop: Segment,
}

/// A hole in a repository's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WalGap {
    pub(crate) repo: u32,
    /// The last segment present before the hole.
    pub(crate) after: String,
    /// The first one present after it; `None` when the server reports WAL archived that the
    /// repository does not hold (dropped, nothing archived since).
    pub(crate) before: Option<String>,
    /// The newest full backup of the repository starts after the hole: the present is still
    /// recoverable from it, only a stretch of the past is lost. (A hole after the newest full
    /// backup's start is judged a failure even when an incremental starts after it: the
    /// incremental's chain reaches back to that full backup, and retention counts full ones.)
    pub(crate) behind_newest_backup: bool,
}

impl WalGap {
    /// What the hole costs, in words.
    pub(crate) fn explain(&self) -> String {
        let missing = match &self.before {
            Some(before) => format!("WAL between {} and {before} is missing", self.after),
            None => format!("WAL after {} is missing although the server reports it archived", self.after),
        };
        if self.behind_newest_backup {
            format!(
                "repo{}: {missing}: no point in time in that stretch can be restored (a newer full backup covers later times)",
                self.repo
            )
        } else {
            format!(
                "repo{}: {missing} (dropped while a repository was unreachable, or deleted): a restore cannot pass {}, so point-in-time recovery across the gap is lost",
                self.repo, self.after
            )
        }
    }

    /// What to do.
    pub(crate) fn remedy(&self) -> &'static str {
        if self.behind_newest_backup {
            "nothing for later times; the lost stretch goes when the older backups expire"
        } else {
            "take a new full backup now (cabinet-db backup run --type full): times after it are recoverable again"
        }
    }
}

/// The runs `pgbackrest verify --log-level-console=detail` reports, one line each:
/// `archiveId: 15-1, wal start: 0000…06, wal stop: 0000…0C`.
pub(crate) fn runs_from_verify(repo: u32, text: &str) -> Vec<WalRun> {
    text.lines()
        .filter_map(|line| {
            let rest = line.split_once("archiveId: ")?.1;
            let (archive_id, rest) = rest.split_once(", wal start: ")?;
            let (start, stop) = rest.split_once(", wal stop: ")?;
            Some(WalRun {
                repo,
                archive_id: archive_id.to_owned(),
                start: Segment::parse(start.trim())?,
                stop: Segment::parse(stop.trim())?,
            })
        })
        .collect()
}

/// Runs from the file names a repository lists (`repo-ls` of the archive: `15-1/…/<segment>-…`).
pub(crate) fn runs_from_names<'a>(
    repo: u32,
    names: impl IntoIterator<Item = &'a str>,
    segment_size: u64,
) -> Vec<WalRun> {
    let mut segments: Vec<(String, Segment)> = names
        .into_iter()
        .filter_map(|path| {
            let archive_id = path.split('/').next()?;
            let file = path.rsplit('/').next()?;
            Some((archive_id.to_owned(), Segment::parse(file)?))
        })
        .collect();
    segments.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    segments.dedup();
    let mut runs: Vec<WalRun> = Vec::new();
    for (archive_id, segment) in segments {
        match runs.last_mut() {
            Some(run) if run.archive_id == archive_id && run.stop.next(segment_size) == segment => {
                run.stop = segment;
            }
            _ => runs.push(WalRun { repo, archive_id, start: segment, stop: segment }),
        }
    }
    runs
}

/// The holes between runs of one timeline, priced against the repository's newest backup.
/// (A new timeline starts a new run by nature; only holes within a timeline are reported.)
pub(crate) fn gaps(runs: &[WalRun], catalog: &Catalog) -> Vec<WalGap> {
    runs.windows(2)
        .filter(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            a.repo == b.repo && a.archive_id == b.archive_id && a.stop.timeline == b.start.timeline
        })
        .map(|pair| gap(pair[0].repo, pair[0].stop, Some(pair[1].start), catalog))
        .collect()
}

/// A hole at the end: the server reports `last_archived` archived, the repository's last run
/// on that timeline stops earlier.
pub(crate) fn tail_gap(runs: &[WalRun], last_archived: &str, catalog: &Catalog) -> Option<WalGap> {
    let archived = Segment::parse(last_archived)?;
    let last = runs.iter().filter(|r| r.stop.timeline == archived.timeline).map(|r| r.stop).max()?;
    let repo = runs.first()?.repo;
    (last < archived).then(|| gap(repo, last, None, catalog))
}

fn gap(repo: u32, after: Segment, before: Option<Segment>, catalog: &Catalog) -> WalGap {
    let newest_start =
        catalog.newest_full_in(repo).and_then(|b| b.wal_start.as_deref()).and_then(Segment::parse);
    let behind_newest_backup = match (newest_start, before) {
        (Some(start), Some(before)) => start.position() >= before.position(),
        _ => false,
    };
    WalGap { repo, after: after.name(), before: before.map(|b| b.name()), behind_newest_backup }
}

/// The names of the files in a repository's archive of our stanza.
pub(crate) fn list_archive(pgbackrest: &PgBackRest, repo: u32) -> Result<Vec<String>, BackupError> {
    let out = pgbackrest.run(
        "repo-ls",
        &[format!("--repo={repo}"), "--recurse".into(), "--output=json".into(), format!("archive/{STANZA}")],
    )?;
    let listing: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|source| BackupError::BadJson { command: "repo-ls".into(), source })?;
    Ok(listing
        .as_object()
        .map(|files| {
            files.iter().filter(|(_, v)| v["type"] == "file").map(|(name, _)| name.clone()).collect()
        })
        .unwrap_or_default())
}

/// Why pushing WAL last failed, as pgBackRest's asynchronous archiver recorded it in the
/// spool: the segment and pgBackRest's message (its repository, error type and cause, without
/// the generic hints). `None` when no push is failing (or the spool is not readable here).
pub(crate) fn last_push_error(spool_dir: &Path) -> Option<(String, String)> {
    let out = spool_dir.join("archive").join(STANZA).join("out");
    let newest = std::fs::read_dir(out)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".error"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()?
        .1;
    let text = std::fs::read_to_string(&newest).ok()?;
    let segment = newest.file_stem()?.to_string_lossy().into_owned();
    Some((segment, summarize_push_error(&text)))
}

/// pgBackRest's status file: the error code on the first line, then the message.
fn summarize_push_error(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("HINT:")
                && !l.starts_with("raised from")
                && !l.starts_with("[CommandError] on retry")
        })
        .collect();
    let mut summary = lines.join(" ");
    if summary.chars().count() > 400 {
        summary = summary.chars().take(400).collect::<String>() + "…";
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::BackupSet;

    const SIXTEEN_MIB: u64 = 16 << 20;

    fn catalog_with_backup_at(repo: u32, wal_start: &str) -> Catalog {
        Catalog {
            backups: vec![BackupSet {
                label: "20261127-130703F".into(),
                kind: "full".into(),
                started: None,
                stopped: None,
                lsn_start: None,
                lsn_stop: None,
                wal_start: Some(wal_start.into()),
                wal_stop: None,
                size: None,
                repository_size: None,
                repo,
                error: false,
            }],
            ..Catalog::default()
        }
    }

    #[test]
    fn segment_names_parse_and_count_across_log_boundaries() {
        let s =
            Segment::parse("0000000100000000000000FF-9a593c53945659c02e7a18efbd72073ae91cc45d.gz").unwrap();
        assert_eq!((s.timeline, s.log, s.seg), (1, 0, 0xFF));
        assert_eq!(s.next(SIXTEEN_MIB).name(), "000000010000000100000000");
        assert_eq!(Segment::parse("000000010000000000000003").unwrap().next(SIXTEEN_MIB).seg, 4);
        for not_a_segment in [
            "000000010000000000000003.00000028.backup",
            "00000002.history",
            "000000010000000000000003.partial-9a59.gz",
            "00000001000000000000000G",
            "short",
        ] {
            assert_eq!(Segment::parse(not_a_segment), None, "{not_a_segment}");
        }
    }

    #[test]
    fn an_lsn_names_the_segment_holding_it_and_a_hole_names_only_what_is_missing() {
        let on = |lsn, size| Segment::of_lsn(lsn, 1, size).map(|s| s.name());
        assert_eq!(on("0/6000390", SIXTEEN_MIB).as_deref(), Some("000000010000000000000006"));
        assert_eq!(on("0/6FFFFFF", SIXTEEN_MIB).as_deref(), Some("000000010000000000000006"));
        assert_eq!(on("0/7000000", SIXTEEN_MIB).as_deref(), Some("000000010000000000000007"));
        assert_eq!(on("1/FF000028", SIXTEEN_MIB).as_deref(), Some("0000000100000001000000FF"));
        assert_eq!(on("0/6000390", 64 << 20).as_deref(), Some("000000010000000000000001"));
        assert_eq!(on("0/6000390", 1 << 30).as_deref(), Some("000000010000000000000000"));
        assert_eq!(Segment::of_lsn("6000390", 1, SIXTEEN_MIB), None);
        assert_eq!(Segment::of_lsn("0/zz", 1, SIXTEEN_MIB), None);

        let seg = |name| Segment::parse(name).unwrap();
        let missing = |after, before| {
            let (first, last) = missing_between(seg(after), seg(before), SIXTEEN_MIB);
            segments_in_words(&first.name(), &last.name())
        };
        assert_eq!(
            missing("000000010000000000000006", "000000010000000000000008"),
            "segment 000000010000000000000007 is"
        );
        assert_eq!(
            missing("000000010000000000000006", "00000001000000000000000A"),
            "segments 000000010000000000000007 to 000000010000000000000009 are"
        );
        assert_eq!(
            missing("0000000100000000000000FE", "000000010000000100000001"),
            "segments 0000000100000000000000FF to 000000010000000100000000 are",
            "across a log boundary"
        );
        assert_eq!(seg("000000010000000100000000").prev(SIXTEEN_MIB).name(), "0000000100000000000000FF");
    }

    #[test]
    fn a_hole_after_the_newest_backup_loses_the_present_one_before_it_a_stretch() {
        let verify = "P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000006, wal stop: 00000001000000000000000C
P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000016, wal stop: 000000010000000000000016";
        let runs = runs_from_verify(1, verify);
        assert_eq!(runs.len(), 2);

        let lost = gaps(&runs, &catalog_with_backup_at(1, "000000010000000000000009"));
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (lost[0].after.as_str(), lost[0].before.as_deref()),
            ("00000001000000000000000C", Some("000000010000000000000016"))
        );
        assert!(!lost[0].behind_newest_backup);
        assert!(
            lost[0].explain().contains("point-in-time recovery across the gap is lost"),
            "{}",
            lost[0].explain()
        );
        assert!(lost[0].remedy().contains("new full backup"));

        let behind = gaps(&runs, &catalog_with_backup_at(1, "000000010000000000000016"));
        assert!(behind[0].behind_newest_backup, "{behind:?}");
        assert!(behind[0].explain().contains("no point in time in that stretch"));
        let other_repo = gaps(&runs, &catalog_with_backup_at(2, "000000010000000000000016"));
        assert!(!other_repo[0].behind_newest_backup, "another repository's backup does not help");
    }

    #[test]
    fn runs_from_listed_names_match_verifys_and_a_new_timeline_is_no_hole() {
        let names = [
            "15-1/0000000100000000/000000010000000000000006-aa.gz",
            "15-1/0000000100000000/000000010000000000000007-bb.gz",
            "15-1/0000000100000000/000000010000000000000007.00000028.backup",
            "15-1/0000000100000000/00000001000000000000000A-cc.gz",
            "15-1/0000000200000000/000000020000000000000008-dd.gz",
            "15-1/00000002.history",
        ];
        let runs = runs_from_names(2, names, SIXTEEN_MIB);
        assert_eq!(runs.len(), 3, "{runs:?}");
        let holes = gaps(&runs, &Catalog::default());
        assert_eq!(holes.len(), 1, "timeline 2 starting is not a hole: {holes:?}");
        assert_eq!(holes[0].after, "000000010000000000000007");
        assert_eq!(holes[0].repo, 2);

        let tail = tail_gap(&runs, "00000001000000000000000D", &Catalog::default()).unwrap();
        assert_eq!((tail.after.as_str(), tail.before.as_deref()), ("00000001000000000000000A", None));
        assert!(tail.explain().contains("although the server reports it archived"));
        assert_eq!(tail_gap(&runs, "00000001000000000000000A", &Catalog::default()), None);
    }

    #[test]
    fn a_push_error_keeps_the_repository_and_the_cause() {
        let text = "104
raised from local-1 protocol: archive-push command encountered error(s):
repo2: [HostConnectError] unable to load info file '/cabinet-db/archive/cabinet/archive.info' or '/cabinet-db/archive/cabinet/archive.info.copy':
HostConnectError: unable to connect to 'localhost:19443': [111] Connection refused
HINT: archive.info cannot be opened but is required to push/get WAL segments.
[CommandError] on retry after 0ms";
        let summary = summarize_push_error(text);
        assert!(summary.starts_with("repo2: [HostConnectError]"), "{summary}");
        assert!(summary.contains("Connection refused") && !summary.contains("HINT"), "{summary}");
    }
}
