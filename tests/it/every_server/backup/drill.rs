use std::{os::unix::fs::PermissionsExt, time::Duration};

use cabinet_db::backup::{
    drill,
    run::{self, Kind},
};

use crate::backup::{Production, exec, walkdir};
use crate::harness::{binary, metric_sample as sample, stderr, stdout};

#[tokio::test]
async fn a_drill_passes_on_a_healthy_setup_and_fails_on_a_damaged_repository() {
    let production = Production::start("backup-drill").await;
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full, None).unwrap();
    let backup = |args: &[&str]| production.backup(args);

    // Healthy: verify is clean, the drill restores, compares and records a pass.
    let verified = backup(&["verify"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    let drilled = backup(&["drill", "--json"]);
    assert_eq!(drilled.status.code(), Some(0), "{}{}", stdout(&drilled), stderr(&drilled));
    let record: serde_json::Value = serde_json::from_str(&stdout(&drilled)).unwrap();
    assert_eq!(record["passed"], true);
    assert_eq!(record["live"], record["restored"]);
    assert_eq!(record["live"][0]["rows"], 300);
    assert!(record["seconds_to_recovery"].as_f64().unwrap() > 0.0);
    let state = production.cluster.root.join("backup/state");
    assert_eq!(drill::recorded(&state.join(cabinet_db::backup::config::DRILLS_FILE)).len(), 1);
    assert_eq!(
        std::fs::read_dir(&state)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("drill-"))
            .count(),
        0,
        "the copy is gone"
    );
    let backup_failures = || production.backup_failures();
    assert_eq!(backup_failures(), vec![], "archiving, a fresh full backup and a passed drill");
    // The metrics of a healthy setup: the newest backup per repository and type (an
    // incremental one through the CLI, which records its run), a readable repository without
    // holes, room on both filesystems, nothing waiting to be archived for long.
    let incremental = backup(&["run", "--type", "incr"]);
    assert_eq!(incremental.status.code(), Some(0), "{}", stderr(&incremental));
    let text = production.metrics();
    let now = chrono::Utc::now().timestamp() as f64;
    for newest in [
        "cabinet_backup_last_end_timestamp_seconds{repo=\"1\",type=\"full\"}",
        "cabinet_backup_last_end_timestamp_seconds{repo=\"1\",type=\"incr\"}",
        "cabinet_schedule_last_run_timestamp_seconds{task=\"backup-incr\"}",
        "cabinet_schedule_last_run_timestamp_seconds{task=\"drill\"}",
    ] {
        let at = sample(&text, newest).unwrap_or_else(|| panic!("no {newest}: {text}"));
        assert!((now - 600.0..=now + 5.0).contains(&at), "{newest} {at}: {text}");
    }
    assert!(
        sample(&text, "cabinet_backup_last_size_bytes{repo=\"1\",type=\"full\"}").unwrap() > 1e6,
        "{text}"
    );
    assert!(
        sample(&text, "cabinet_backup_last_repository_size_bytes{repo=\"1\",type=\"full\"}").unwrap() > 0.0
    );
    assert_eq!(sample(&text, "cabinet_schedule_last_run_success{task=\"backup-incr\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "cabinet_backup_listing_ok"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "cabinet_backup_repository_ok{repo=\"1\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "cabinet_wal_holes{repo=\"1\"}"), Some(0.0), "{text}");
    assert!(sample(&text, "cabinet_wal_ready_segments").is_some(), "the superuser sees pg_wal: {text}");
    for filesystem in ["data", "repo1"] {
        let avail = sample(&text, &format!("cabinet_filesystem_avail_bytes{{filesystem=\"{filesystem}\"}}"));
        let size = sample(&text, &format!("cabinet_filesystem_size_bytes{{filesystem=\"{filesystem}\"}}"));
        assert!(avail.zip(size).is_some_and(|(a, s)| 0.0 < a && a <= s), "{filesystem}: {text}");
    }

    // Damage the backup's biggest stored file (a bundle of small files, or a big one of its
    // own): verify names the damaged file (pgBackRest itself exits 0), the drill fails.
    let repo = production.cluster.root.join("backup/repo");
    let victim = walkdir(repo.join("backup/cabinet"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/bundle/") || p.to_string_lossy().contains("/pg_data/"))
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 10].copy_from_slice(b"corrupted!");
    std::fs::write(&victim, bytes).unwrap();
    let verified = backup(&["verify"]);
    assert_eq!(verified.status.code(), Some(1));
    let label = victim.strip_prefix(repo.join("backup/cabinet")).unwrap().iter().next().unwrap();
    let name = stdout(&verified)
        .lines()
        .find_map(|l| l.strip_prefix("repo1: damaged: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no damaged file named: {}", stdout(&verified)));
    assert!(
        name.starts_with(&format!("{}/pg_data/", label.to_string_lossy())),
        "{name} is a file of the damaged backup"
    );
    let drilled = backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(1), "{}", stdout(&drilled));
    assert!(
        stdout(&drilled).contains(&name) && stdout(&drilled).contains("drill FAILED"),
        "{}",
        stdout(&drilled)
    );
    let records = drill::recorded(&state.join(cabinet_db::backup::config::DRILLS_FILE));
    assert_eq!((records.len(), records[1].passed), (2, false));
    assert!(
        backup_failures().iter().any(|(id, d)| id == "backup.drill" && d.contains("the latest drill")),
        "{:?}",
        backup_failures()
    );

    // The metrics say it too: the newest drill failed, the newest success is the first one's;
    // and a recorded audit names the failing check.
    let scrape = || {
        let out = binary()
            .env("DATABASE_URL", production.url.expose())
            .args(["metrics", "--backup-config", production.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let text = scrape();
    assert_eq!(sample(&text, "cabinet_drill_last_passed"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "cabinet_drill_last_success_timestamp_seconds"),
        Some(chrono::DateTime::parse_from_rfc3339(record["at"].as_str().unwrap()).unwrap().timestamp() as f64),
        "{text}"
    );
    assert_eq!(sample(&text, "cabinet_audit_last_timestamp_seconds"), Some(0.0), "none recorded yet: {text}");
    let audited = binary()
        .env("DATABASE_URL", production.url.expose())
        .args(["audit", "--record", "--backup-config", production.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(audited.status.code(), Some(1), "{}", stderr(&audited));
    let text = scrape();
    assert!(sample(&text, "cabinet_audit_last_timestamp_seconds").unwrap() > 0.0, "{text}");
    assert_eq!(sample(&text, "cabinet_audit_check_failing{check=\"backup.drill\"}"), Some(1.0), "{text}");

    // Archiving that is not ours, then archiving that fails: the audit says each.
    exec(production.url.expose(), "ALTER SYSTEM SET archive_command = '/bin/true'").await;
    exec(production.url.expose(), "SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        backup_failures().iter().any(|(id, d)| id == "backup.archive_command" && d.contains("/bin/true"))
    );
    let ours = cabinet_db::backup::config::archive_command(&production.config);
    exec(
        production.url.expose(),
        &format!("ALTER SYSTEM SET archive_command = {}", cabinet_db::db::quote_literal(&ours)),
    )
    .await;
    exec(production.url.expose(), "SELECT pg_reload_conf()").await;
    std::fs::set_permissions(repo.join("archive"), std::fs::Permissions::from_mode(0o000)).unwrap();
    exec(
        production.url.expose(),
        "INSERT INTO users (user_id) VALUES ('after-the-repository-died'); SELECT pg_switch_wal()",
    )
    .await;
    let mut failing = Vec::new();
    for _ in 0..100 {
        failing = backup_failures();
        if failing.iter().any(|(id, _)| id == "backup.archiving") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::set_permissions(repo.join("archive"), std::fs::Permissions::from_mode(0o750)).unwrap();
    assert!(
        failing.iter().any(|(id, d)| id == "backup.archiving" && d.contains("archiving fails")),
        "{failing:?}"
    );
}
