//! `pgbackrest info --output=json`, as typed rows: each backup, and the window a restore can
//! reach — from the end of the oldest backup to the last archived WAL.
//!
//! The JSON is read tolerantly (only the fields used here, each optional): a pgBackRest
//! release that adds fields does not break us, one that drops them shows as unknown.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One backup in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupSet {
    pub(crate) label: String,
    /// `full`, `diff` or `incr`.
    pub kind: String,
    pub started: Option<DateTime<Utc>>,
    pub(crate) stopped: Option<DateTime<Utc>>,
    pub(crate) lsn_start: Option<String>,
    pub(crate) lsn_stop: Option<String>,
    /// The first and last WAL segment it needs.
    pub(crate) wal_start: Option<String>,
    pub(crate) wal_stop: Option<String>,
    /// Size of the database it copied, and of what it added to the repository.
    pub(crate) size: Option<u64>,
    pub repository_size: Option<u64>,
    pub repo: u32,
    /// pgBackRest marked it as having an error (e.g. a page checksum).
    pub(crate) error: bool,
}

/// One repository as pgBackRest found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RepoStatus {
    pub(crate) repo: u32,
    /// `none` or `aes-256-cbc`, as the repository itself says.
    pub(crate) cipher: Option<String>,
    /// 0 when pgBackRest could read it.
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// What the repositories hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    pub(crate) backups: Vec<BackupSet>,
    pub(crate) repos: Vec<RepoStatus>,
    /// The oldest WAL segment archived and the newest.
    pub(crate) archive_min: Option<String>,
    pub(crate) archive_max: Option<String>,
    /// `none` or `aes-256-cbc`.
    pub(crate) cipher: Option<String>,
    /// pgBackRest's status message for the stanza (`ok`, `no valid backups`, …).
    pub(crate) status: Option<String>,
    /// The PostgreSQL major version of the newest backed-up cluster.
    pub(crate) pg_major: Option<u32>,
}

impl Catalog {
    /// From `info --output=json` (an array of stanzas; ours is the first).
    pub fn from_info(info: &Value) -> Catalog {
        let Some(stanza) = info.as_array().and_then(|a| a.first()) else { return Catalog::default() };
        let time = |v: &Value| v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0));
        let backups = stanza["backup"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|b| BackupSet {
                        label: b["label"].as_str().unwrap_or_default().to_owned(),
                        kind: b["type"].as_str().unwrap_or_default().to_owned(),
                        started: time(&b["timestamp"]["start"]),
                        stopped: time(&b["timestamp"]["stop"]),
                        lsn_start: b["lsn"]["start"].as_str().map(str::to_owned),
                        lsn_stop: b["lsn"]["stop"].as_str().map(str::to_owned),
                        wal_start: b["archive"]["start"].as_str().map(str::to_owned),
                        wal_stop: b["archive"]["stop"].as_str().map(str::to_owned),
                        size: b["info"]["size"].as_u64(),
                        repository_size: b["info"]["repository"]["size"].as_u64(),
                        repo: b["database"]["repo-key"].as_u64().unwrap_or(1) as u32,
                        error: b["error"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let archives = stanza["archive"].as_array();
        let segment = |key: &str| {
            archives?
                .iter()
                .filter_map(|a| a[key].as_str())
                .map(str::to_owned)
                .reduce(|a, b| if key == "min" { a.min(b) } else { a.max(b) })
        };
        let repos = stanza["repo"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|r| RepoStatus {
                        repo: r["key"].as_u64().unwrap_or(1) as u32,
                        cipher: r["cipher"].as_str().map(str::to_owned),
                        code: r["status"]["code"].as_i64().unwrap_or(-1),
                        message: r["status"]["message"].as_str().unwrap_or("unknown").to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Catalog {
            backups,
            repos,
            archive_min: segment("min"),
            archive_max: segment("max"),
            cipher: stanza["cipher"].as_str().map(str::to_owned),
            status: stanza["status"]["message"].as_str().map(str::to_owned),
            pg_major: stanza["db"]
                .as_array()
                .and_then(|dbs| dbs.last())
                .and_then(|db| db["version"].as_str())
                .and_then(|v| v.split('.').next()?.parse().ok()),
        }
    }

    /// The earliest time a restore can reach: the end of the oldest good backup. pgBackRest
    /// records it in whole seconds (the backup ended within the second after), so this is that
    /// second's end: a target inside it may precede the backup's true end.
    pub(crate) fn earliest(&self) -> Option<DateTime<Utc>> {
        self.backups
            .iter()
            .filter(|b| !b.error)
            .filter_map(|b| b.stopped)
            .min()
            .map(|t| t + chrono::Duration::seconds(1))
    }

    /// The newest full backup that completed without error.
    pub fn newest_full(&self) -> Option<&BackupSet> {
        self.newest(|b| b.kind == "full")
    }

    /// The newest good backup in one repository, of any kind.
    pub(crate) fn newest_in(&self, repo: u32) -> Option<&BackupSet> {
        self.newest(|b| b.repo == repo)
    }

    /// The newest good full backup in one repository.
    pub(crate) fn newest_full_in(&self, repo: u32) -> Option<&BackupSet> {
        self.newest(|b| b.repo == repo && b.kind == "full")
    }

    fn newest(&self, pick: impl Fn(&BackupSet) -> bool) -> Option<&BackupSet> {
        self.backups.iter().filter(|b| !b.error && pick(b)).max_by_key(|b| b.stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_json_becomes_backups_and_a_window() {
        let info: Value = serde_json::from_str(
            r#"[{"name":"cabinet","cipher":"none","status":{"code":0,"message":"ok"},
                "archive":[{"id":"15-1","min":"000000010000000000000001","max":"000000010000000000000009"}],
                "repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}},
                        {"cipher":"aes-256-cbc","key":2,"status":{"code":99,"message":"other"}}],
                "backup":[
                  {"label":"20261127-122519F","type":"full","error":false,
                   "timestamp":{"start":1795782319,"stop":1795782322},
                   "lsn":{"start":"0/2000028","stop":"0/3000050"},
                   "archive":{"start":"000000010000000000000002","stop":"000000010000000000000003"},
                   "info":{"size":30730523,"repository":{"size":4065772}},
                   "database":{"id":1,"repo-key":1}},
                  {"label":"20261127-122519F_20261127-130000I","type":"incr","error":false,
                   "timestamp":{"start":1795784400,"stop":1795784402},"database":{"repo-key":1}}]}]"#,
        )
        .unwrap();
        let catalog = Catalog::from_info(&info);
        assert_eq!(catalog.backups.len(), 2);
        assert_eq!(catalog.backups[0].size, Some(30_730_523));
        assert_eq!(
            catalog.earliest(),
            DateTime::from_timestamp(1_795_782_323, 0),
            "the end of the stop second"
        );
        assert_eq!(catalog.newest_full().unwrap().label, "20261127-122519F");
        assert_eq!(catalog.archive_max.as_deref(), Some("000000010000000000000009"));
        assert_eq!(catalog.backups[0].wal_start.as_deref(), Some("000000010000000000000002"));
        assert_eq!(catalog.repos[1].cipher.as_deref(), Some("aes-256-cbc"));
        assert_eq!((catalog.repos[1].code, catalog.repos[1].message.as_str()), (99, "other"));
        assert_eq!(catalog.newest_in(1).unwrap().label, "20261127-122519F_20261127-130000I");
        assert!(catalog.newest_full_in(2).is_none());
        assert_eq!(Catalog::from_info(&serde_json::json!([])).backups.len(), 0, "tolerant of nothing");
    }
}
