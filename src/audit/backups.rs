//! Can this database be recovered? WAL archiving works (and is ours), a recent full backup
//! exists, and a recent drill proved a restore. A server with no backups at all is a warning
//! (one disk away from loss); one that was set up and has stopped working is a failure.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::Check;
use crate::{
    backup::{
        BackupError,
        catalog::Catalog,
        config::{BackupConfig, archive_command},
        drill::{DrillRecord, drills_file, recorded},
        run::pgbackrest_for,
    },
    models::timestamps::Checked,
};

/// The newest full backup must be younger than this (a daily timer, with slack).
pub const FULL_BACKUP_MAX_AGE_HOURS: i64 = 26;
/// The newest passed drill must be younger than this (a weekly timer, with slack).
pub const DRILL_MAX_AGE_DAYS: i64 = 8;

const SETUP: &str = "run cabinet-db backup setup (docs/deploy.md, Backups)";

pub async fn checks(conn: &mut PgConnection, config_path: &Path) -> Result<Vec<Check>, sqlx::Error> {
    let (mode, command, timeout): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('archive_mode'), current_setting('archive_command'), current_setting('archive_timeout')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let config = BackupConfig::read(config_path);
    if mode == "off" && config.is_err() {
        return Ok(vec![Check::warn(
            "backup.configured",
            "no backups: this database is one lost disk (or one UPDATE without WHERE) away from losing its data",
            SETUP,
        )]);
    }
    let mut checks = vec![if command == archive_command(config_path) && mode != "off" {
        Check::pass("backup.archive_command", "WAL goes to pgBackRest with cabinet-db's configuration")
    } else if mode == "off" {
        Check::fail(
            "backup.archive_command",
            "archive_mode is off: no WAL is archived, so no point in time can be restored",
            SETUP,
        )
    } else {
        Check::fail(
            "backup.archive_command",
            format!("archive_command is {command:?}, not cabinet-db's ({})", archive_command(config_path)),
            SETUP,
        )
    }];
    checks.push(archiving(conn, &timeout).await?);
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            checks.push(Check::fail(
                "backup.newest_full",
                format!("cannot read the backup configuration: {e}"),
                SETUP,
            ));
            return Ok(checks);
        }
    };
    checks.push(match pgbackrest_for(config_path) {
        // Not root and not the server's user: pgBackRest cannot run as it from here.
        Err(BackupError::Config(why)) => Check::warn(
            "backup.newest_full",
            format!("not checked: {why}"),
            "run the audit on the database host as root or as the server's user",
        ),
        Err(e) => Check::fail("backup.newest_full", format!("pgBackRest cannot run: {e}"), SETUP),
        Ok(pgbackrest) => match pgbackrest.info_json() {
            Ok(info) => judge_newest_full(&Catalog::from_info(&info), Utc::now()),
            Err(e) => Check::fail(
                "backup.newest_full",
                format!("pgBackRest could not list the backups: {e}"),
                SETUP,
            ),
        },
    });
    checks.push(judge_drills(&recorded(&drills_file(&config)), Utc::now()));
    Ok(checks)
}

/// Last archived and failed time and WAL, and the bytes written after the last archived one.
type ArchiverRow = (Option<Checked>, Option<Checked>, Option<String>, Option<String>, Option<i64>);

/// `pg_stat_archiver`: no failure since the last success, and nothing written longer ago than
/// twice `archive_timeout` still waiting.
async fn archiving(conn: &mut PgConnection, timeout: &str) -> Result<Check, sqlx::Error> {
    let (archived, failed, last_wal, failed_wal, unarchived_bytes): ArchiverRow = sqlx::query_as(
        // The bytes written after the end of the last archived segment: its name is
        // timeline, log and segment in hex; a .history or .backup name gives no position.
        "SELECT last_archived_time, last_failed_time, last_archived_wal, last_failed_wal,
                pg_wal_lsn_diff(pg_current_wal_lsn(),
                                format('%s/%s', to_hex(seg.end_lsn >> 32), to_hex(seg.end_lsn & 4294967295))::pg_lsn)::bigint
           FROM pg_stat_archiver,
                LATERAL (SELECT CASE WHEN last_archived_wal ~ '^[0-9A-F]{24}$' THEN
                                  (('x' || substr(last_archived_wal, 9, 8))::bit(32)::bigint << 32)
                                  + (('x' || substr(last_archived_wal, 17, 8))::bit(32)::bigint + 1)
                                    * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
                                END AS end_lsn) seg",
    )
    .fetch_one(&mut *conn)
    .await?;
    let timeout_secs: i64 = timeout.trim_end_matches('s').parse().unwrap_or(60).max(1);
    Ok(judge_archiving(
        archived.map(|t| t.0),
        failed.map(|t| t.0),
        last_wal,
        failed_wal,
        unarchived_bytes.unwrap_or(0),
        Duration::seconds(2 * timeout_secs),
        Utc::now(),
    ))
}

fn judge_archiving(
    archived: Option<DateTime<Utc>>,
    failed: Option<DateTime<Utc>>,
    last_wal: Option<String>,
    failed_wal: Option<String>,
    unarchived_bytes: i64,
    allowed_delay: Duration,
    now: DateTime<Utc>,
) -> Check {
    let remedy = "check that the repository is reachable and writable (cabinet-db backup setup runs pgBackRest's check); the server log names the failing WAL. While archiving fails, point-in-time recovery stops at the last archived segment, and past the queue limit WAL is dropped: a new full backup is then needed";
    if let Some(failed) = failed
        && archived.is_none_or(|a| failed > a)
    {
        return Check::fail(
            "backup.archiving",
            format!(
                "archiving fails: the last attempt ({}, {}) failed after the last success ({})",
                failed_wal.unwrap_or_default(),
                failed.format("%Y-%m-%d %H:%M:%S UTC"),
                archived.map_or("never".to_owned(), |a| a.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            ),
            remedy,
        );
    }
    let waiting_too_long = unarchived_bytes > 0 && archived.is_none_or(|a| now - a > allowed_delay);
    if waiting_too_long {
        return Check::fail(
            "backup.archiving",
            format!(
                "{unarchived_bytes} bytes of WAL written after the last archived segment ({}) are still waiting, longer than twice archive_timeout",
                last_wal.unwrap_or_else(|| "none".to_owned())
            ),
            remedy,
        );
    }
    Check::pass(
        "backup.archiving",
        format!(
            "WAL archiving works (last archived {})",
            archived.map_or("nothing yet, nothing written".to_owned(), |a| a
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string())
        ),
    )
}

fn judge_newest_full(catalog: &Catalog, now: DateTime<Utc>) -> Check {
    let limit = Duration::hours(FULL_BACKUP_MAX_AGE_HOURS);
    match catalog.newest_full().and_then(|b| b.stopped.map(|t| (b, t))) {
        Some((backup, stopped)) if now - stopped <= limit => Check::pass(
            "backup.newest_full",
            format!("newest full backup {} ended {}", backup.label, stopped.format("%Y-%m-%d %H:%M UTC")),
        ),
        Some((backup, stopped)) => Check::fail(
            "backup.newest_full",
            format!(
                "the newest full backup ({}) ended {}, more than {FULL_BACKUP_MAX_AGE_HOURS} h ago",
                backup.label,
                stopped.format("%Y-%m-%d %H:%M UTC")
            ),
            "cabinet-db backup run --type full; check the daily backup timer (systemctl status cabinet-db-backup-full.timer)",
        ),
        None => {
            Check::fail("backup.newest_full", "no full backup exists", "cabinet-db backup run --type full")
        }
    }
}

fn judge_drills(drills: &[DrillRecord], now: DateTime<Utc>) -> Check {
    let limit = Duration::days(DRILL_MAX_AGE_DAYS);
    let newest_pass = drills.iter().filter(|d| d.passed).map(|d| d.at).max();
    let newest = drills.iter().max_by_key(|d| d.at);
    match (newest_pass, newest) {
        (_, Some(last)) if !last.passed => Check::fail(
            "backup.drill",
            format!(
                "the latest drill ({}) failed: {}",
                last.at.format("%Y-%m-%d %H:%M UTC"),
                last.problems.join("; ")
            ),
            "fix what it names, then cabinet-db backup drill",
        ),
        (Some(passed), _) if now - passed <= limit => Check::pass(
            "backup.drill",
            format!("a restore was proven {} (backup drill)", passed.format("%Y-%m-%d %H:%M UTC")),
        ),
        (Some(passed), _) => Check::fail(
            "backup.drill",
            format!(
                "the last successful drill was {}, more than {DRILL_MAX_AGE_DAYS} days ago",
                passed.format("%Y-%m-%d")
            ),
            "cabinet-db backup drill; check the weekly drill timer",
        ),
        (None, _) => Check::fail(
            "backup.drill",
            "no restore has been proven yet: a backup never restored is a hope, not a backup",
            "cabinet-db backup drill",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Verdict;

    fn at(text: &str) -> DateTime<Utc> {
        crate::models::timestamps::parse(text).unwrap()
    }

    #[test]
    fn archiving_fails_on_a_newer_failure_or_wal_waiting_too_long() {
        let now = at("2026-11-27T12:00:00Z");
        let two_minutes = Duration::seconds(120);
        let ok = judge_archiving(Some(at("2026-11-27T11:59:00Z")), None, None, None, 4096, two_minutes, now);
        assert_eq!(ok.verdict, Verdict::Pass);
        let failing = judge_archiving(
            Some(at("2026-11-27T11:00:00Z")),
            Some(at("2026-11-27T11:59:00Z")),
            None,
            Some("000000010000000000000009".into()),
            0,
            two_minutes,
            now,
        );
        assert_eq!(failing.verdict, Verdict::Fail);
        assert!(failing.detail.contains("000000010000000000000009"), "{}", failing.detail);
        let stuck =
            judge_archiving(Some(at("2026-11-27T11:50:00Z")), None, None, None, 8192, two_minutes, now);
        assert_eq!(stuck.verdict, Verdict::Fail);
        let idle = judge_archiving(Some(at("2026-11-27T09:00:00Z")), None, None, None, 0, two_minutes, now);
        assert_eq!(idle.verdict, Verdict::Pass, "nothing written, nothing to archive");
    }

    #[test]
    fn a_drill_older_than_eight_days_or_failed_fails() {
        let now = at("2026-11-27T12:00:00Z");
        let drill = |at_: &str, passed: bool| DrillRecord {
            at: at(at_),
            passed,
            seconds_to_recovery: Some(2.0),
            restore_point: "p".into(),
            problems: if passed { vec![] } else { vec!["damaged".into()] },
            live: vec![],
            restored: vec![],
        };
        assert_eq!(judge_drills(&[drill("2026-11-25T00:00:00Z", true)], now).verdict, Verdict::Pass);
        assert_eq!(judge_drills(&[drill("2026-11-10T00:00:00Z", true)], now).verdict, Verdict::Fail);
        let failed_last =
            judge_drills(&[drill("2026-11-25T00:00:00Z", true), drill("2026-11-26T00:00:00Z", false)], now);
        assert!(failed_last.verdict == Verdict::Fail && failed_last.detail.contains("damaged"));
        assert_eq!(judge_drills(&[], now).verdict, Verdict::Fail);
    }
}
