//! Can this database be recovered? WAL archiving works (and is ours), a recent full backup
//! exists, and a recent drill proved a restore. A server with no backups at all is a warning
//! (one disk away from loss); one that was set up and has stopped working is a failure.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::check::Check;
use crate::{
    backup::{
        BackupError, archive,
        catalog::Catalog,
        config::{BackupConfig, archive_command},
        drill::{DrillRecord, drills_file, recorded},
        pgbackrest::PgBackRest,
        run::pgbackrest_for,
    },
    models::timestamps::Checked,
};

/// The newest full backup must be younger than this (a daily timer, with slack).
pub(crate) const FULL_BACKUP_MAX_AGE_HOURS: i64 = 26;
/// The newest passed drill must be younger than this (a weekly timer, with slack).
pub(crate) const DRILL_MAX_AGE_DAYS: i64 = 8;

const SETUP: &str = "run cabinet-db backup setup (docs/deploy.md, Backups)";

pub(crate) async fn checks(conn: &mut PgConnection, config_path: &Path) -> Result<Vec<Check>, sqlx::Error> {
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
    let push_error = config.as_ref().ok().and_then(|c| archive::last_push_error(&c.spool_dir()));
    let (archiving, last_archived) = archiving(conn, &timeout, push_error).await?;
    checks.push(archiving);
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
    checks.push(judge_offsite(&config, None));
    let pgbackrest = match pgbackrest_for(config_path) {
        Ok(pgbackrest) => pgbackrest,
        // Not root and not the server's user: pgBackRest cannot run as it from here.
        Err(BackupError::Config(why)) => {
            checks.push(Check::warn(
                "backup.newest_full",
                format!("not checked: {why}"),
                "run the audit on the database host as root or as the server's user",
            ));
            return Ok(checks);
        }
        Err(e) => {
            checks.push(Check::fail("backup.newest_full", format!("pgBackRest cannot run: {e}"), SETUP));
            return Ok(checks);
        }
    };
    let catalog = match pgbackrest.info_json() {
        Ok(info) => Catalog::from_info(&info),
        Err(e) => {
            checks.push(Check::fail(
                "backup.newest_full",
                format!("pgBackRest could not list the backups: {e}"),
                SETUP,
            ));
            return Ok(checks);
        }
    };
    let repos = config.repo_numbers(None).unwrap_or_default();
    checks.push(judge_newest_full(&catalog, &repos, Utc::now()));
    if let Some(check) = config.offsite().map(|_| judge_offsite(&config, Some(&catalog))) {
        // The repository's own word on its cipher replaces the configuration's.
        checks.retain(|c| c.id != "backup.offsite");
        checks.push(check);
    }
    let segment_size: i64 =
        sqlx::query_scalar("SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'")
            .fetch_one(&mut *conn)
            .await?;
    checks.push(wal_continuity(&pgbackrest, &catalog, &repos, segment_size as u64, last_archived.as_deref()));
    checks.push(judge_drills(&recorded(&drills_file(&config)), Utc::now()));
    Ok(checks)
}

/// The offsite repository exists and is encrypted — by the configuration, and when the
/// catalog is at hand by the repository's own account.
fn judge_offsite(config: &BackupConfig, catalog: Option<&Catalog>) -> Check {
    let Some((n, s3)) = config.offsite() else {
        return Check::warn(
            "backup.offsite",
            "no offsite repository: a lost host or data centre takes the backups with it",
            "add an S3 bucket: cabinet-db backup setup --s3-endpoint … --s3-bucket … --s3-region … --cipher-pass-file … (docs/deploy.md, Backups)",
        );
    };
    let stored_cipher =
        catalog.and_then(|c| c.repos.iter().find(|r| r.repo == n as u32)).and_then(|r| r.cipher.clone());
    let encrypted = s3.encrypted && stored_cipher.as_deref().is_none_or(|c| c == "aes-256-cbc");
    if encrypted {
        Check::pass("backup.offsite", format!("offsite repository repo{n} ({s3}) is encrypted (aes-256-cbc)"))
    } else {
        Check::fail(
            "backup.offsite",
            format!(
                "offsite repository repo{n} ({s3}) is not encrypted (cipher: {}): whoever reads the bucket reads every site and user",
                stored_cipher.unwrap_or_else(|| "none in the configuration".to_owned())
            ),
            "rerun cabinet-db backup setup with --cipher-pass-file (an unencrypted repository cannot be encrypted in place: point it at a new, empty path with --s3-path)",
        )
    }
}

/// Each repository's WAL archive has no hole a restore would stop at.
fn wal_continuity(
    pgbackrest: &PgBackRest,
    catalog: &Catalog,
    repos: &[u32],
    segment_size: u64,
    last_archived: Option<&str>,
) -> Check {
    let mut lost = Vec::new();
    let mut stretches = Vec::new();
    let mut unlisted = Vec::new();
    for &repo in repos {
        let names = match archive::list_archive(pgbackrest, repo) {
            Ok(names) => names,
            Err(e) => {
                unlisted.push(format!("repo{repo}: {e}"));
                continue;
            }
        };
        let runs = archive::runs_from_names(repo, names.iter().map(String::as_str), segment_size);
        let mut gaps = archive::gaps(&runs, catalog);
        gaps.extend(last_archived.and_then(|wal| archive::tail_gap(&runs, wal, catalog)));
        for gap in gaps {
            if gap.behind_newest_backup { stretches.push(gap) } else { lost.push(gap) }
        }
    }
    if let Some(gap) = lost.first() {
        let all: Vec<String> = lost.iter().map(archive::WalGap::explain).collect();
        return Check::fail("backup.wal_continuity", all.join("; "), gap.remedy());
    }
    if !unlisted.is_empty() {
        return Check::fail(
            "backup.wal_continuity",
            format!("cannot list the WAL archive: {}", unlisted.join("; ")),
            "check that each repository is reachable (cabinet-db backup list shows each one's status)",
        );
    }
    if let Some(gap) = stretches.first() {
        let all: Vec<String> = stretches.iter().map(archive::WalGap::explain).collect();
        return Check::warn("backup.wal_continuity", all.join("; "), gap.remedy());
    }
    Check::pass(
        "backup.wal_continuity",
        "each repository's WAL runs unbroken from its backups to the present",
    )
}

/// Last archived and failed time and WAL, and the bytes written after the last archived one.
type ArchiverRow = (Option<Checked>, Option<Checked>, Option<String>, Option<String>, Option<i64>);

/// `pg_stat_archiver`: no failure since the last success, and nothing written longer ago than
/// twice `archive_timeout` still waiting. Also returns the last archived segment.
async fn archiving(
    conn: &mut PgConnection,
    timeout: &str,
    push_error: Option<(String, String)>,
) -> Result<(Check, Option<String>), sqlx::Error> {
    let (archived, failed, last_wal, failed_wal, unarchived_bytes): ArchiverRow = sqlx::query_as(
        // The bytes written after the end of the last archived segment: its name is
        // timeline, log and segment in hex; a .history or .backup name gives no position (and
        // no byte count: format() would turn the missing position into '/', no pg_lsn).
        "SELECT last_archived_time, last_failed_time, last_archived_wal, last_failed_wal,
                CASE WHEN seg.end_lsn IS NOT NULL THEN
                  pg_wal_lsn_diff(pg_current_wal_lsn(),
                                  format('%s/%s', to_hex(seg.end_lsn >> 32), to_hex(seg.end_lsn & 4294967295))::pg_lsn)::bigint
                END
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
    let check = judge_archiving(
        Archiver {
            archived: archived.map(|t| t.0),
            failed: failed.map(|t| t.0),
            last_wal: last_wal.clone(),
            failed_wal,
            unarchived_bytes: unarchived_bytes.unwrap_or(0),
            push_error,
        },
        Duration::seconds(2 * timeout_secs),
        Utc::now(),
    );
    Ok((check, last_wal))
}

/// What `pg_stat_archiver` and pgBackRest's spool say.
struct Archiver {
    archived: Option<DateTime<Utc>>,
    failed: Option<DateTime<Utc>>,
    last_wal: Option<String>,
    failed_wal: Option<String>,
    /// Bytes written after the end of the last archived segment.
    unarchived_bytes: i64,
    /// The segment pgBackRest could not push and its reason.
    push_error: Option<(String, String)>,
}

fn judge_archiving(archiver: Archiver, allowed_delay: Duration, now: DateTime<Utc>) -> Check {
    let Archiver { archived, failed, last_wal, failed_wal, unarchived_bytes, push_error } = archiver;
    let why =
        push_error.map(|(wal, reason)| format!("; pgBackRest, pushing {wal}: {reason}")).unwrap_or_default();
    let remedy = "check that the repository is reachable and writable (cabinet-db backup setup runs pgBackRest's check); the server log names the failing WAL. While archiving fails, point-in-time recovery stops at the last archived segment, and past the queue limit WAL is dropped: a new full backup is then needed";
    if let Some(failed) = failed
        && archived.is_none_or(|a| failed > a)
    {
        return Check::fail(
            "backup.archiving",
            format!(
                "archiving fails: the last attempt ({}, {}) failed after the last success ({}){why}",
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
                "{unarchived_bytes} bytes of WAL written after the last archived segment ({}) are still waiting, longer than twice archive_timeout{why}",
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

/// Each repository holds a full backup younger than the limit.
fn judge_newest_full(catalog: &Catalog, repos: &[u32], now: DateTime<Utc>) -> Check {
    let limit = Duration::hours(FULL_BACKUP_MAX_AGE_HOURS);
    let mut fresh = Vec::new();
    let mut problems = Vec::new();
    for &repo in repos {
        let status = catalog.repos.iter().find(|r| r.repo == repo).filter(|r| r.code != 0);
        match catalog.newest_full_in(repo).and_then(|b| b.stopped.map(|t| (b, t))) {
            Some((backup, stopped)) if now - stopped <= limit => {
                fresh.push(format!("repo{repo}: {} ended {}", backup.label, stopped.format("%Y-%m-%d %H:%M UTC")))
            }
            Some((backup, stopped)) => problems.push(format!(
                "repo{repo}: the newest full backup ({}) ended {}, more than {FULL_BACKUP_MAX_AGE_HOURS} h ago",
                backup.label,
                stopped.format("%Y-%m-%d %H:%M UTC")
            )),
            None => problems.push(format!("repo{repo}: no full backup exists")),
        }
        if let Some(status) = status {
            problems.push(format!("repo{repo}: pgBackRest cannot read it ({})", status.message));
        }
    }
    if problems.is_empty() {
        Check::pass("backup.newest_full", format!("newest full backups: {}", fresh.join(", ")))
    } else {
        Check::fail(
            "backup.newest_full",
            problems.join("; "),
            "cabinet-db backup run --type full (into each repository); check the daily backup timer (systemctl status cabinet-db-backup-full.timer) and that each repository is reachable",
        )
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

    fn archiver(archived: Option<&str>, failed: Option<&str>, unarchived_bytes: i64) -> Archiver {
        Archiver {
            archived: archived.map(at),
            failed: failed.map(at),
            last_wal: None,
            failed_wal: failed.map(|_| "000000010000000000000009".to_owned()),
            unarchived_bytes,
            push_error: None,
        }
    }

    #[test]
    fn archiving_fails_on_a_newer_failure_or_wal_waiting_too_long() {
        let now = at("2026-11-27T12:00:00Z");
        let two_minutes = Duration::seconds(120);
        let ok = judge_archiving(archiver(Some("2026-11-27T11:59:00Z"), None, 4096), two_minutes, now);
        assert_eq!(ok.verdict, Verdict::Pass);
        let failing = judge_archiving(
            Archiver {
                push_error: Some((
                    "000000010000000000000009".into(),
                    "repo2: [HostConnectError] unable to connect".into(),
                )),
                ..archiver(Some("2026-11-27T11:00:00Z"), Some("2026-11-27T11:59:00Z"), 0)
            },
            two_minutes,
            now,
        );
        assert_eq!(failing.verdict, Verdict::Fail);
        assert!(failing.detail.contains("000000010000000000000009"), "{}", failing.detail);
        assert!(failing.detail.contains("repo2: [HostConnectError]"), "says why: {}", failing.detail);
        let stuck = judge_archiving(archiver(Some("2026-11-27T11:50:00Z"), None, 8192), two_minutes, now);
        assert_eq!(stuck.verdict, Verdict::Fail);
        let idle = judge_archiving(archiver(Some("2026-11-27T09:00:00Z"), None, 0), two_minutes, now);
        assert_eq!(idle.verdict, Verdict::Pass, "nothing written, nothing to archive");
    }

    #[test]
    fn each_repository_needs_a_fresh_full_backup_and_the_offsite_one_encryption() {
        use crate::backup::{
            catalog::{BackupSet, RepoStatus},
            repository::{Repo, S3Repo, UriStyle},
        };
        let now = at("2026-11-27T12:00:00Z");
        let full = |repo: u32, stopped: &str| BackupSet {
            label: format!("full-{repo}"),
            kind: "full".into(),
            started: None,
            stopped: Some(at(stopped)),
            lsn_start: None,
            lsn_stop: None,
            wal_start: None,
            wal_stop: None,
            size: None,
            repository_size: None,
            repo,
            error: false,
        };
        let status = |repo: u32, cipher: &str| RepoStatus {
            repo,
            cipher: Some(cipher.into()),
            code: 0,
            message: "ok".into(),
        };
        let catalog = Catalog {
            backups: vec![full(1, "2026-11-27T03:00:00Z"), full(2, "2026-11-25T03:00:00Z")],
            repos: vec![status(1, "none"), status(2, "aes-256-cbc")],
            ..Catalog::default()
        };
        assert_eq!(judge_newest_full(&catalog, &[1], now).verdict, Verdict::Pass);
        let stale = judge_newest_full(&catalog, &[1, 2], now);
        assert!(stale.verdict == Verdict::Fail && stale.detail.contains("repo2"), "{}", stale.detail);

        let mut config = BackupConfig {
            pg_path: "/d".into(),
            pg_port: 5432,
            pg_socket: "/s".into(),
            pg_user: "postgres".into(),
            state_dir: "/st".into(),
            repos: vec![Repo::Posix { path: "/r".into() }],
            retention_full: 2,
            archive_queue_max: "4GiB".into(),
            io_timeout: None,
            tls: None,
            pg_hosts: vec![],
        };
        assert_eq!(judge_offsite(&config, None).verdict, Verdict::Warn, "no offsite copy");
        let s3 = S3Repo {
            endpoint: "s3.example.com".into(),
            port: 443,
            bucket: "b".into(),
            region: "r".into(),
            path: "/p".into(),
            uri_style: UriStyle::Host,
            ca_file: None,
            encrypted: true,
        };
        config.repos.push(Repo::S3(s3.clone()));
        assert_eq!(judge_offsite(&config, Some(&catalog)).verdict, Verdict::Pass);
        let plain = Catalog { repos: vec![status(1, "none"), status(2, "none")], ..catalog.clone() };
        assert_eq!(judge_offsite(&config, Some(&plain)).verdict, Verdict::Fail, "the repository's own word");
        config.repos[1] = Repo::S3(S3Repo { encrypted: false, ..s3 });
        let unencrypted = judge_offsite(&config, None);
        assert!(unencrypted.verdict == Verdict::Fail && unencrypted.detail.contains("not encrypted"));
    }

    #[test]
    fn a_drill_older_than_eight_days_or_failed_fails() {
        let now = at("2026-11-27T12:00:00Z");
        let drill = |at_: &str, passed: bool| DrillRecord {
            at: at(at_),
            repo: 1,
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
