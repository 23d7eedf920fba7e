//! What a scheduled command records of its run, for `cabinet-db metrics` to report: the
//! audit's verdicts (`audit --record`) and each backup run's outcome (`backup run`), kept in
//! pgBackRest's state directory beside the drills' record (the units run as the server's user,
//! who owns it, or as root). A record replaces the previous one whole; a missing or unreadable
//! one is reported as missing, never guessed.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the metrics unit stores a scrape each minute (`metrics --out`), for `serve`'s
/// `/metrics` to pass on: the costly part of a scrape (pgBackRest's listing, the cluster
/// survey) is done there, as root, and a scrape of `serve` costs a file read.
pub(crate) const STORED_SCRAPE: &str = "/var/lib/cabinet-db/metrics/cabinet-db.prom";

/// The audit record's file name in the state directory.
pub(crate) const AUDIT_FILE: &str = "audit.json";

/// One audit run: when, and each check's id and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    pub(crate) at: DateTime<Utc>,
    /// (check id, "pass" | "warn" | "fail")
    pub(crate) checks: Vec<(String, String)>,
}

impl AuditRecord {
    /// Replaces the record at `path` whole (readable by all: it names checks, no secret).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        write_json(self, path)
    }

    /// The record at `path`, if there is a readable one.
    pub(crate) fn read(path: &Path) -> Option<AuditRecord> {
        read_json(path)
    }
}

/// One run of a scheduled job: when it started and ended, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) started: DateTime<Utc>,
    pub(crate) finished: DateTime<Utc>,
    pub(crate) succeeded: bool,
}

/// The file a backup run of `kind` (`full`, `diff`, `incr`) records itself in.
pub(crate) fn backup_run_file(kind: &str) -> String {
    format!("run-backup-{kind}.json")
}

impl RunRecord {
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        write_json(self, path)
    }

    pub(crate) fn read(path: &Path) -> Option<RunRecord> {
        read_json(path)
    }
}

/// Replaces the record at `path` whole (readable by all: records hold no secret).
fn write_json(value: &impl Serialize, path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    let mut file = crate::atomic_file::AtomicFile::create(path, 0o644)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}

/// The record at `path`, if there is a readable one.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = crate::secret::read_regular(path, 1024 * 1024).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_garbage_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let record = AuditRecord {
            at: "2026-12-03T06:00:00Z".parse().unwrap(),
            checks: vec![("pg_hba.final_reject".into(), "pass".into()), ("roles.ours".into(), "fail".into())],
        };
        record.write(&path).unwrap();
        assert_eq!(AuditRecord::read(&path), Some(record));
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(AuditRecord::read(&path), None);
        assert_eq!(AuditRecord::read(&dir.path().join("absent")), None);
    }
}
