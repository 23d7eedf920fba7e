//! Backups with the real pgBackRest against a real PostgreSQL of its own (archiving is
//! cluster-wide): point-in-time recovery to the second, the refusals, and on PostgreSQL 18 —
//! which Debian 12's pgBackRest cannot read — the refusal before anything changes.

use std::{path::PathBuf, time::Duration};

use cabinet_db::{
    backup::{
        BackupError,
        config::Repo,
        drill,
        restore::{self, RestoreError, RestoreOptions, Target},
        run::{self, Kind},
        setup::{self, SetupOptions},
    },
    db::DatabaseUrl,
    local_cluster::LocalCluster,
    migrations::{MigrationSet, RunnerOptions, runner},
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use std::os::unix::fs::PermissionsExt;

use crate::harness::{audit, binary, start_local_cluster, stderr, stdout, superuser_base};

/// A cluster with the schema and some rows; backups not yet set up.
struct Production {
    cluster: LocalCluster,
    url: DatabaseUrl,
    config: PathBuf,
}

impl Production {
    async fn start(purpose: &str) -> Production {
        let cluster = start_local_cluster(purpose);
        let base = superuser_base(&cluster);
        exec(&format!("{base}/postgres"), "CREATE DATABASE cabinet").await;
        let url = DatabaseUrl::new(format!("{base}/cabinet"));
        runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
        exec(
            url.expose(),
            "INSERT INTO sites (site_id, domain, ai_prompt)
               SELECT 'site-' || n, 'site-' || n || '.example.com', 'Prompt ' || n FROM generate_series(1, 300) n;
             INSERT INTO users (user_id, email)
               SELECT 'user-' || n, 'user' || n || '@example.com' FROM generate_series(1, 500) n",
        )
        .await;
        let config = cluster.root.join("backup/pgbackrest.conf");
        Production { cluster, url, config }
    }

    fn options(&self) -> SetupOptions {
        SetupOptions {
            config_path: self.config.clone(),
            state_dir: self.cluster.root.join("backup/state"),
            repos: vec![Repo::Posix { path: self.cluster.root.join("backup/repo") }],
        }
    }

    /// `backup setup`, the restart it asks for, and `backup setup` again.
    async fn set_up_backups(&self) {
        let first = setup::setup(&self.url, &self.options()).await.unwrap();
        assert!(first.restart_needed && !first.checked, "archive_mode needs a restart: {first:?}");
        assert!(first.changed.iter().any(|c| c == "archive_mode = on"), "{first:?}");
        self.cluster.stop("fast").unwrap();
        self.cluster.start().unwrap();
        let second = setup::setup(&self.url, &self.options()).await.unwrap();
        assert!(second.checked && !second.restart_needed && second.changed.is_empty(), "{second:?}");
    }

    fn server_major(&self) -> u32 {
        self.cluster.binaries.major()
    }
}

/// Stops and deletes a restored copy when the test ends, passed or failed.
struct Copy(LocalCluster);

impl Copy {
    fn of(production: &Production, data_dir: &std::path::Path) -> Copy {
        let root = data_dir.parent().unwrap().to_owned();
        Copy(LocalCluster { root, ..production.cluster.clone() })
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        restore::stop_and_remove(&self.0);
    }
}

async fn exec(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

/// Row count and an order-independent checksum of each of our tables.
async fn fingerprint(url: &str) -> Vec<drill::Fingerprint> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let prints = drill::fingerprint(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    prints
}

/// The names of the WAL files in the repository's archive.
fn archived_wal(repo: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir(repo.join("archive"))
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.len() > 24 && !n.ends_with(".backup"))
        .collect();
    names.sort();
    names
}

fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        // pgBackRest's `latest` link would list the newest backup twice.
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() { out.extend(walkdir(path)) } else { out.push(path) }
    }
    out
}

#[tokio::test]
async fn a_restore_reaches_the_second_before_the_mistake_and_nothing_after() {
    // Arrange: production with backups; on PostgreSQL 18 Debian's pgBackRest must refuse.
    let production = Production::start("backup-pitr").await;
    if production.server_major() > 15 {
        let refused = setup::setup(&production.url, &production.options()).await.unwrap_err();
        assert!(
            matches!(&refused, BackupError::VersionUnsupported { server_major: 18, needed, .. } if needed == "2.55"),
            "{refused}"
        );
        assert!(refused.to_string().contains("Nothing was changed"), "{refused}");
        assert!(!production.config.exists(), "no configuration written");
        let mut conn = PgConnection::connect(production.url.expose()).await.unwrap();
        let (mode, command): (String, String) =
            sqlx::query_as("SELECT current_setting('archive_mode'), current_setting('archive_command')")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let pending: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pg_file_settings WHERE name LIKE 'archive%'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        // (18 shows an unset archive_command as "(disabled)" while archive_mode is off.)
        assert_eq!(mode, "off", "archiving untouched");
        assert!(
            matches!(command.as_str(), "" | "(disabled)") && pending.is_empty(),
            "{command:?} {pending:?}"
        );
        return;
    }
    production.set_up_backups().await;
    let full = run::run(&production.config, Kind::Full).unwrap();
    assert_eq!(full.kind, "full");

    // Act: note T (after the second the backup ended in), then the mistake a second later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = fingerprint(production.url.expose()).await;
    let mut conn = PgConnection::connect(production.url.expose()).await.unwrap();
    let t: cabinet_db::models::timestamps::Checked =
        sqlx::query_scalar("SELECT now()").fetch_one(&mut conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::raw_sql("DELETE FROM sites; UPDATE users SET email = NULL WHERE user_id < 'user-3'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_ne!(fingerprint(production.url.expose()).await, before);
    let repo = production.cluster.root.join("backup/repo");
    let target_dir = production.cluster.root.join("copy");
    let options = RestoreOptions {
        config_path: production.config.clone(),
        target_dir: target_dir.clone(),
        port: None,
        target: Target::Time(t.0),
        repo: None,
        live: Some(production.url.clone()),
        database: "cabinet".to_owned(),
    };
    let report = restore::restore(&options).await.unwrap();
    let _copy = Copy::of(&production, &report.data_dir);

    // Assert: every row as at T, nothing from after it; a new timeline, not archiving.
    assert_eq!(fingerprint(report.url.expose()).await, before);
    assert!(report.timeline >= 2, "{report:?}");
    let archived_before = archived_wal(&repo);
    exec(
        report.url.expose(),
        "INSERT INTO sites (site_id, domain) VALUES ('in-copy', 'copy.example.com'); SELECT pg_switch_wal()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(archived_wal(&repo), archived_before, "the copy never archives into production's repository");
    let mut copy = PgConnection::connect(report.url.expose()).await.unwrap();
    let archive_mode: String =
        sqlx::query_scalar("SELECT current_setting('archive_mode')").fetch_one(&mut copy).await.unwrap();
    assert_eq!(archive_mode, "off");
    copy.close().await.unwrap();

    // And the refusals: a non-empty directory, the production data directory, the future.
    let refusals = [
        (target_dir.clone(), Target::Latest, "is not empty"),
        (production.cluster.pgdata(), Target::Latest, "production data directory"),
        (
            production.cluster.root.join("copy2"),
            Target::Time(chrono::Utc::now() + chrono::Duration::hours(1)),
            "is in the future",
        ),
        (
            production.cluster.root.join("copy3"),
            Target::Time(full.started.unwrap() - chrono::Duration::hours(1)),
            "before the oldest backup",
        ),
    ];
    for (dir, target, expected) in refusals {
        let err = restore::restore(&RestoreOptions { target_dir: dir.clone(), target, ..options.clone() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{}: {err}", dir.display());
    }

    // In place: refused while the server runs; with it stopped, the server itself goes back to T.
    let running = restore::restore_in_place(&production.config, &Target::Time(t.0), None).unwrap_err();
    assert!(matches!(running, BackupError::Restore(RestoreError::ServerRunning { .. })), "{running}");
    production.cluster.stop("fast").unwrap();
    restore::restore_in_place(&production.config, &Target::Time(t.0), None).unwrap();
    production.cluster.start().unwrap();
    let mut promoted = false;
    for _ in 0..100 {
        let mut conn = PgConnection::connect(production.url.expose()).await.unwrap();
        promoted =
            !sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        if promoted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(promoted, "the server promoted after replaying to T");
    assert_eq!(fingerprint(production.url.expose()).await, before, "production is back at T");
}

#[tokio::test]
async fn after_the_host_dies_the_latest_restore_keeps_every_archived_commit_and_refuses_a_later_target() {
    let production = Production::start("backup-disaster").await;
    if production.server_major() > 15 {
        return; // the refusal on 18 is asserted above
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full).unwrap();

    // Arrange: a write loop that records what was acknowledged, then kill -9 and rm -rf.
    let mut conn = PgConnection::connect(production.url.expose()).await.unwrap();
    exec(production.url.expose(), "CREATE TABLE IF NOT EXISTS public.write_log (n int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())").await;
    let mut acknowledged = 0;
    for n in 1..=60 {
        sqlx::query("INSERT INTO write_log (n) VALUES ($1)").bind(n).execute(&mut conn).await.unwrap();
        acknowledged = n;
        if n == 30 {
            // Half of them reach the archive.
            sqlx::raw_sql("SELECT pg_switch_wal()").execute(&mut conn).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = chrono::Utc::now();
    let pid: i32 = std::fs::read_to_string(production.cluster.pgdata().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_dir_all(production.cluster.pgdata()).unwrap();

    // Act: the latest restore, with no live server to help.
    let options = RestoreOptions {
        config_path: production.config.clone(),
        target_dir: production.cluster.root.join("recovered"),
        port: None,
        target: Target::Latest,
        repo: None,
        live: None,
        database: "cabinet".to_owned(),
    };
    let report = restore::restore(&options).await.unwrap();
    let copy_guard = Copy::of(&production, &report.data_dir);

    // Assert: a gap-free prefix of what was acknowledged, at least everything before the switch,
    // and a loss window within archive_timeout.
    let mut copy = PgConnection::connect(report.url.expose()).await.unwrap();
    let (count, max, last_at): (i64, i32, cabinet_db::models::timestamps::Checked) =
        sqlx::query_as("SELECT count(*), max(n), max(at) FROM write_log").fetch_one(&mut copy).await.unwrap();
    copy.close().await.unwrap();
    assert_eq!(count, max as i64, "no holes");
    assert!(max >= 30 && max <= acknowledged, "{max} of {acknowledged}");
    let loss = killed_at - last_at.0;
    eprintln!("loss window: {} ms ({} of {acknowledged} commits restored)", loss.num_milliseconds(), max);
    assert!(loss <= chrono::Duration::seconds(60), "loss window {loss} exceeds archive_timeout");
    drop(copy_guard);

    // A target after the last archived WAL: PostgreSQL cannot reach it, and we say so.
    let late = RestoreOptions {
        target_dir: production.cluster.root.join("too-late"),
        target: Target::Time(killed_at - chrono::Duration::milliseconds(200)),
        ..options
    };
    let err = restore::restore(&late).await.unwrap_err();
    assert!(matches!(err, BackupError::Restore(RestoreError::TargetNotReached { .. })), "{err}");
    assert!(err.to_string().contains("the archived WAL ends before"), "{err}");
    assert!(!late.target_dir.exists(), "the failed copy was removed");
}

#[tokio::test]
async fn a_drill_passes_on_a_healthy_setup_and_fails_on_a_damaged_repository() {
    let production = Production::start("backup-drill").await;
    if production.server_major() > 15 {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full).unwrap();
    let backup = |args: &[&str]| {
        binary()
            .env("DATABASE_URL", production.url.expose())
            .env("CABINET_BACKUP_CONFIG", &production.config)
            .arg("backup")
            .args(args)
            .output()
            .unwrap()
    };

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
    assert_eq!(drill::recorded(&state.join(drill::DRILLS_FILE)).len(), 1);
    assert_eq!(
        std::fs::read_dir(&state)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("drill-"))
            .count(),
        0,
        "the copy is gone"
    );
    let backup_failures = || {
        let (_, failed) = audit(&production.url, &["--backup-config", production.config.to_str().unwrap()]);
        failed.into_iter().filter(|(id, _)| id.starts_with("backup.")).collect::<Vec<_>>()
    };
    assert_eq!(backup_failures(), vec![], "archiving, a fresh full backup and a passed drill");

    // Damage one file of the backup: verify names it (pgBackRest itself exits 0), the drill fails.
    let repo = production.cluster.root.join("backup/repo");
    let victim = walkdir(repo.join("backup"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/pg_data/base/") && p.metadata().unwrap().len() > 1024)
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100..110].copy_from_slice(b"corrupted!");
    std::fs::write(&victim, bytes).unwrap();
    let name = victim.strip_prefix(repo.join("backup/cabinet")).unwrap().to_string_lossy().into_owned();
    let verified = backup(&["verify"]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(stdout(&verified).contains(&format!("damaged: {name}")), "{name}: {}", stdout(&verified));
    let drilled = backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(1), "{}", stdout(&drilled));
    assert!(
        stdout(&drilled).contains(&name) && stdout(&drilled).contains("drill FAILED"),
        "{}",
        stdout(&drilled)
    );
    let records = drill::recorded(&state.join(drill::DRILLS_FILE));
    assert_eq!((records.len(), records[1].passed), (2, false));
    assert!(
        backup_failures().iter().any(|(id, d)| id == "backup.drill" && d.contains("the latest drill")),
        "{:?}",
        backup_failures()
    );

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

#[test]
fn the_schedule_units_match_their_golden_copies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/backup-schedule");
    let scratch = tempfile::tempdir().unwrap();
    let target =
        if std::env::var_os("UPDATE_GOLDEN").is_some() { dir.clone() } else { scratch.path().to_owned() };
    let out = binary()
        .args(["backup", "--config", "/etc/cabinet-db/pgbackrest.conf", "schedule", "--out"])
        .arg(&target)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Vec<PathBuf> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(written.len(), 6);
    for path in written {
        let golden = dir.join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&golden)
                .unwrap_or_else(|_| panic!("no {}; run with UPDATE_GOLDEN=1", golden.display())),
            "{}",
            path.display()
        );
    }
    // systemd itself accepts them (with this build's binary in ExecStart, which must exist).
    let units = tempfile::tempdir().unwrap();
    let rendered = binary()
        .args([
            "backup",
            "schedule",
            "--out",
            units.path().to_str().unwrap(),
            "--binary",
            env!("CARGO_BIN_EXE_cabinet-db"),
        ])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(
            [
                "cabinet-db-backup-full.timer",
                "cabinet-db-backup-incr.timer",
                "cabinet-db-drill.timer",
                "cabinet-db-drill.service",
            ]
            .map(|u| units.path().join(u)),
        )
        .output()
        .expect("systemd-analyze (Debian's systemd package) checks the units");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A drill URL with a password would leave it in a unit file: refused.
    let refused = binary()
        .args([
            "backup",
            "schedule",
            "--out",
            "/tmp/never",
            "--drill-database-url",
            "postgres://postgres:pw@localhost/cabinet",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("carries a password"), "{}", stderr(&refused));
}
