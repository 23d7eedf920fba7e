use std::time::Duration;

use cabinet_db::backup::{
    BackupError,
    restore::{self, RestoreError, RestoreOptions, Target},
    run::{self, Kind},
};
use sqlx::{Connection, PgConnection};

use crate::backup::{Copy, Production, archived_wal, exec, fingerprint, mistake_after_t};

#[tokio::test]
async fn a_restore_reaches_the_second_before_the_mistake_and_nothing_after() {
    // Arrange: production with backups; on PostgreSQL 16+ Debian's pgBackRest must refuse.
    let production = Production::start("backup-pitr").await;
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
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
    let full = run::run(&production.config, Kind::Full, None).unwrap().backups.remove(0);
    assert_eq!(full.kind, "full");

    // Act: note T (after the second the backup ended in), then the mistake a second later.
    let (before, t) = mistake_after_t(
        &production.url,
        "DELETE FROM sites; UPDATE users SET email = NULL WHERE user_id < 'user-3'",
    )
    .await;
    let repo = production.cluster.root.join("backup/repo");
    let target_dir = production.cluster.root.join("copy");
    let options = RestoreOptions {
        config_path: production.config.clone(),
        target_dir: target_dir.clone(),
        port: None,
        target: Target::Time(t),
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

    // And the refusals: a non-empty directory, the production data directory (also through a
    // symlinked parent), the repository (also through a symlink), the future.
    let alias = production.cluster.root.join("alias-of-the-data");
    std::os::unix::fs::symlink(production.cluster.pgdata().parent().unwrap(), &alias).unwrap();
    let into_live = alias.join(production.cluster.pgdata().file_name().unwrap()).join("restored");
    let repo_alias = production.cluster.root.join("alias-of-the-repo");
    std::os::unix::fs::symlink(&repo, &repo_alias).unwrap();
    let refusals = [
        (target_dir.clone(), Target::Latest, "is not empty"),
        (production.cluster.pgdata(), Target::Latest, "production data directory"),
        (into_live, Target::Latest, "production data directory"),
        (repo_alias.join("copy"), Target::Latest, "inside the backup repository"),
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
    let running = restore::restore_in_place(&production.config, &Target::Time(t), None).unwrap_err();
    assert!(matches!(running, BackupError::Restore(RestoreError::ServerRunning { .. })), "{running}");
    production.cluster.stop("fast").unwrap();
    restore::restore_in_place(&production.config, &Target::Time(t), None).unwrap();
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
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full, None).unwrap();

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
