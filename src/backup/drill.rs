//! `backup drill`: a restore, actually performed and checked — "verifying a backup is not a
//! test restore" (PostgreSQL's documentation).
//!
//! 1. `verify` first: damage fails the drill at once, naming the file.
//! 2. On the live database, with writers to our tables held for a moment (`LOCK … IN SHARE
//!    MODE`), take each table's row count and order-independent checksum and create a restore
//!    point — so the checksums are exactly the state at the restore point.
//! 3. Restore to that point into a scratch cluster on a free loopback port (its WAL archived
//!    first), run the drift check on it, take the same checksums, compare.
//! 4. Tear the copy down and record the result (when, time to recovery, verdict) beside
//!    pgBackRest's logs, where `audit` reads it.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    BackupError,
    config::BackupConfig,
    restore::{self, RestoreOptions, Target},
    verify,
};
use crate::{
    db::{self, DatabaseUrl, quote_ident},
    models::schema::TABLES,
    schema_diff,
};

/// One table's count and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub(crate) table: String,
    pub(crate) rows: i64,
    /// The sum of a 60-bit slice of each row's md5: independent of row order.
    pub(crate) checksum: String,
}

/// Row count and order-independent checksum of each table of the models, in UTC text form.
pub async fn fingerprint(conn: &mut PgConnection) -> Result<Vec<Fingerprint>, sqlx::Error> {
    sqlx::raw_sql("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'").execute(&mut *conn).await?;
    let mut out = Vec::new();
    for table in TABLES {
        let sql = format!(
            "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text FROM {} t",
            quote_ident(table.name)
        );
        let (rows, checksum): (i64, String) =
            sqlx::query_as(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
        out.push(Fingerprint { table: table.name.to_owned(), rows, checksum });
    }
    Ok(out)
}

/// A drill's result, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    pub(crate) at: DateTime<Utc>,
    /// The repository restored from (records older than the offsite repository lack it: 1).
    #[serde(default = "first_repo")]
    pub(crate) repo: u32,
    pub passed: bool,
    pub(crate) seconds_to_recovery: Option<f64>,
    pub(crate) restore_point: String,
    /// What differed or failed; empty when it passed.
    pub(crate) problems: Vec<String>,
    pub(crate) live: Vec<Fingerprint>,
    pub(crate) restored: Vec<Fingerprint>,
}

#[derive(Debug, Clone)]
pub(crate) struct DrillOptions {
    pub(crate) config_path: PathBuf,
    /// The live database (a superuser: it creates a restore point).
    pub(crate) live: DatabaseUrl,
    /// Where the scratch copy goes (a directory of its own is made inside).
    pub(crate) work_dir: PathBuf,
    /// The repository to prove (the first, unless told).
    pub(crate) repo: Option<u32>,
}

pub(crate) async fn drill(options: &DrillOptions) -> Result<DrillRecord, BackupError> {
    let config = BackupConfig::read(&options.config_path)?;
    let at = Utc::now();
    let restore_point = format!("cabinet-drill-{}", at.format("%Y%m%dT%H%M%S%.6fZ"));
    let repo = options.repo.unwrap_or(1);
    let mut record = DrillRecord {
        at,
        repo,
        passed: false,
        seconds_to_recovery: None,
        restore_point: restore_point.clone(),
        problems: Vec::new(),
        live: Vec::new(),
        restored: Vec::new(),
    };

    // With the repository on another host, `backup verify` runs there; the restore below
    // still checks every file it copies against the checksum pgBackRest stored for it.
    if !config.is_remote(repo) {
        let verified = verify::verify(&options.config_path, Some(repo))?;
        if !verified.ok {
            record.problems.extend(verified.repos.iter().flat_map(|r| r.problems()));
            return finish(&config, record);
        }
    }

    let mut conn = db::connect(&options.live, "cabinet-db drill").await?;
    record.live = mark_restore_point(&mut conn, &restore_point).await?;
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut conn).await?;
    conn.close().await.ok();

    let target_dir = options.work_dir.join(format!("drill-{}", at.format("%Y%m%dT%H%M%S")));
    let restored = restore::restore(&RestoreOptions {
        config_path: options.config_path.clone(),
        target_dir: target_dir.clone(),
        port: None,
        target: Target::Name(restore_point),
        repo: Some(repo),
        live: Some(options.live.clone()),
        database: database.clone(),
    })
    .await;
    let report = match restored {
        Ok(report) => report,
        Err(e) => {
            record.problems.push(format!("the restore failed: {e}"));
            return finish(&config, record);
        }
    };
    record.seconds_to_recovery = Some(report.seconds_to_recovery);
    let checked = check_copy(&report.url, &mut record).await;
    // The copy goes whatever happened.
    restore::stop_and_remove(&report.cluster);
    if let Err(e) = checked {
        record.problems.push(format!("could not read the restored copy: {e}"));
    }
    record.passed = record.problems.is_empty();
    finish(&config, record)
}

fn first_repo() -> u32 {
    1
}

/// Holds writers to our tables for the moment it takes to fingerprint them and create the
/// restore point, so the two describe the same state.
async fn mark_restore_point(conn: &mut PgConnection, name: &str) -> Result<Vec<Fingerprint>, BackupError> {
    let mut tx = conn.begin().await?;
    let tables: Vec<String> = TABLES.iter().map(|t| quote_ident(t.name)).collect();
    sqlx::raw_sql(AssertSqlSafe(format!("LOCK TABLE {} IN SHARE MODE", tables.join(", "))))
        .execute(&mut *tx)
        .await?;
    let fingerprints = fingerprint(&mut tx).await?;
    sqlx::query("SELECT pg_create_restore_point($1)").bind(name).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(fingerprints)
}

async fn check_copy(url: &DatabaseUrl, record: &mut DrillRecord) -> Result<(), BackupError> {
    let mut copy = db::connect(url, "cabinet-db drill").await?;
    for difference in schema_diff::drift(&mut copy).await? {
        record.problems.push(format!("the restored schema differs from the models: {difference}"));
    }
    record.restored = fingerprint(&mut copy).await?;
    copy.close().await.ok();
    for (live, restored) in record.live.iter().zip(&record.restored) {
        if live != restored {
            record.problems.push(format!(
                "{}: live {} rows (checksum {}), restored {} rows (checksum {})",
                live.table, live.rows, live.checksum, restored.rows, restored.checksum
            ));
        }
    }
    Ok(())
}

/// Appends the record to the drills file and returns it.
fn finish(config: &BackupConfig, record: DrillRecord) -> Result<DrillRecord, BackupError> {
    let path = drills_file(config);
    let line = serde_json::to_string(&record).expect("drill records serialise");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(BackupError::io(format!("record the drill in {}", path.display())))?;
    Ok(record)
}

pub(crate) fn drills_file(config: &BackupConfig) -> PathBuf {
    config.state_dir.join(super::config::DRILLS_FILE)
}

/// The recorded drills, oldest first (unreadable lines are skipped).
pub fn recorded(path: &Path) -> Vec<DrillRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
