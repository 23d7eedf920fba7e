use std::time::Duration;

use cabinet_db::{
    migrations::{
        MigrateError, MigrationSet, Problem, RunnerOptions,
        lock::MIGRATION_LOCK_KEY,
        runner::{self, DownTarget},
    },
    models::schema,
    testing,
};
use sqlx::{Connection, Executor};

use crate::harness::{
    EXTRA_MIGRATIONS, TestDb, applied_versions, binary, column_exists, migrations_dir, real_head, run,
    stderr, stdout, table_exists, with_real,
};

fn quick() -> RunnerOptions {
    RunnerOptions { lock_wait: Duration::from_secs(20), ..RunnerOptions::default() }
}

#[test]
fn the_rust_models_have_exactly_the_schema_columns() {
    assert_eq!(testing::SITE_FIELDS.to_vec(), testing::column_names(&schema::SITES));
    assert_eq!(testing::USER_FIELDS.to_vec(), testing::column_names(&schema::USERS));
}

#[tokio::test]
async fn up_down_and_targets_round_trip() {
    // Arrange
    let db = TestDb::empty().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    let set = MigrationSet::from_dir(dir.path()).unwrap();

    // Act / Assert: up to a target, then the rest, then down in steps and to a target.
    let steps = runner::up(&db.url, &set, Some(902), &quick()).await.unwrap();
    assert_eq!(steps.iter().map(|s| s.version).collect::<Vec<_>>(), with_real(&[902]));
    assert!(column_exists(&db, "sites", "notes").await);
    assert!(!table_exists(&db, "test_audit").await);

    runner::up(&db.url, &set, None, &quick()).await.unwrap();
    assert_eq!(applied_versions(&db).await, with_real(&[902, 903]));
    assert!(table_exists(&db, "test_audit").await);

    let again = runner::up(&db.url, &set, None, &quick()).await.unwrap();
    assert!(again.is_empty(), "a second up applies nothing");

    runner::down(&db.url, &set, DownTarget::Steps(1), &quick()).await.unwrap();
    assert_eq!(applied_versions(&db).await, with_real(&[902]));
    assert!(!table_exists(&db, "test_audit").await);

    runner::down(&db.url, &set, DownTarget::To(real_head()), &quick()).await.unwrap();
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    assert!(!column_exists(&db, "sites", "notes").await);

    runner::down(&db.url, &set, DownTarget::All, &quick()).await.unwrap();
    assert_eq!(applied_versions(&db).await, Vec::<i64>::new());
    assert!(!table_exists(&db, "sites").await);

    runner::up(&db.url, &set, None, &quick()).await.unwrap();
    assert_eq!(applied_versions(&db).await, with_real(&[902, 903]));
}

#[tokio::test]
async fn the_migrations_produce_exactly_the_models_schema() {
    let db = TestDb::empty().await;
    runner::up(&db.url, &MigrationSet::embedded().unwrap(), None, &quick()).await.unwrap();
    let mut conn = db.conn().await;
    let drift = cabinet_db::schema_diff::drift(&mut conn).await.unwrap();
    assert!(drift.is_empty(), "{drift:#?}");
    // And the model is not trivially empty: the tables with all their constraints, the
    // history's triggers and functions.
    let live = cabinet_db::schema_diff::live_snapshot(&mut conn).await.unwrap();
    assert_eq!(
        live.tables.keys().collect::<Vec<_>>(),
        vec!["history_prunes", "sites", "sites_history", "users", "users_history"]
    );
    assert_eq!(live.tables["sites"].constraints.len(), schema::SITES.constraints.len());
    assert_eq!(live.tables["users"].indexes.len(), schema::USERS.indexes.len());
    assert_eq!(live.tables["sites"].triggers.len(), schema::SITES.triggers.len());
    assert_eq!(schema::SITES.triggers.len(), 5, "the four history triggers and the permanent id");
    assert_eq!(live.tables["users_history"].triggers.len(), 1);
    assert_eq!(live.functions.len(), schema::FUNCTIONS.len());
    // The migration's backfill is the one adopting an Alembic database runs.
    let up = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0004_change_history.up.sql"),
    )
    .unwrap();
    assert!(up.ends_with(cabinet_db::models::history::BACKFILL_SQL), "0004 ends with history::BACKFILL_SQL");
}

#[tokio::test]
async fn an_unknown_target_is_refused() {
    let db = TestDb::empty().await;
    let err = runner::up(&db.url, &MigrationSet::embedded().unwrap(), Some(42), &quick()).await.unwrap_err();
    assert!(matches!(err, MigrateError::UnknownTarget { version: 42, .. }), "{err}");
    assert!(applied_versions(&db).await.is_empty());
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_naming_the_file() {
    // Arrange: apply 0902, then edit it.
    let db = TestDb::empty().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    runner::up(&db.url, &MigrationSet::from_dir(dir.path()).unwrap(), Some(902), &quick()).await.unwrap();
    std::fs::write(
        dir.path().join("0902_add_site_notes.up.sql"),
        "ALTER TABLE sites ADD COLUMN notes varchar;\n",
    )
    .unwrap();

    // Act
    let out = run(&db.url, &["migrate", "--migrations-dir", dir.path().to_str().unwrap(), "up"]);

    // Assert: refused with exit 2, naming the file, nothing applied.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("0902_add_site_notes.up.sql was edited"), "{}", stderr(&out));
    assert_eq!(applied_versions(&db).await, with_real(&[902]));
    assert!(!table_exists(&db, "test_audit").await, "0903 must not run past the refusal");
}

#[tokio::test]
async fn an_out_of_order_pending_migration_is_refused() {
    // Arrange: apply the real migrations and 0903 (0902 absent at the time), then 0902 appears.
    let db = TestDb::empty().await;
    let without_two: Vec<_> =
        EXTRA_MIGRATIONS.iter().copied().filter(|(n, _)| !n.starts_with("0902")).collect();
    let dir = migrations_dir(&without_two);
    runner::up(&db.url, &MigrationSet::from_dir(dir.path()).unwrap(), None, &quick()).await.unwrap();
    let dir = migrations_dir(EXTRA_MIGRATIONS);

    // Act
    let err =
        runner::up(&db.url, &MigrationSet::from_dir(dir.path()).unwrap(), None, &quick()).await.unwrap_err();

    // Assert
    match err {
        MigrateError::Unsafe(problems) => {
            assert!(matches!(
                problems.as_slice(),
                [Problem::OutOfOrder { version: 902, newest_applied: 903, .. }]
            ))
        }
        other => panic!("expected out-of-order refusal, got {other}"),
    }
    assert!(!column_exists(&db, "sites", "notes").await);
}

#[tokio::test]
async fn a_database_ahead_of_the_binary_is_refused() {
    let db = TestDb::empty().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    runner::up(&db.url, &MigrationSet::from_dir(dir.path()).unwrap(), None, &quick()).await.unwrap();
    let err = runner::up(&db.url, &MigrationSet::embedded().unwrap(), None, &quick()).await.unwrap_err();
    assert!(err.to_string().contains("0902 (add_site_notes) applied"), "{err}");
}

#[tokio::test]
async fn eight_concurrent_deployers_apply_each_migration_exactly_once() {
    // Arrange
    let db = TestDb::empty().await;
    let dir = migrations_dir(&[
        (
            "0902_slow.up.sql",
            "SELECT pg_sleep(0.5);\nCREATE TABLE applied_once (n int);\nINSERT INTO applied_once VALUES (1);\n",
        ),
        ("0902_slow.down.sql", "DROP TABLE applied_once;\n"),
    ]);
    let dir_arg = dir.path().to_str().unwrap().to_owned();

    // Act: eight processes at once.
    let children: Vec<_> = (0..8)
        .map(|_| {
            binary()
                .env("DATABASE_URL", db.url.expose())
                .args(["migrate", "--migrations-dir", &dir_arg, "up", "--json", "--lock-timeout", "60s"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();

    // Assert: all succeed, exactly one applied the two migrations, the row is there once.
    let mut appliers = 0;
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
        let steps: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        if !steps.as_array().unwrap().is_empty() {
            appliers += 1;
            assert_eq!(steps.as_array().unwrap().len(), with_real(&[902]).len());
        }
    }
    assert_eq!(appliers, 1);
    assert_eq!(applied_versions(&db).await, with_real(&[902]));
    let mut conn = db.conn().await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM applied_once").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_deployer_killed_mid_migration_leaves_the_previous_version_and_a_rerun_succeeds() {
    // Arrange: 0902 creates a table, then sleeps long enough to be killed.
    let db = TestDb::empty().await;
    let dir = migrations_dir(&[
        ("0902_slow.up.sql", "CREATE TABLE half_done (n int);\nSELECT pg_sleep(60);\n"),
        ("0902_slow.down.sql", "DROP TABLE half_done;\n"),
    ]);
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    runner::up(&db.url, &MigrationSet::from_dir(dir.path()).unwrap(), Some(real_head()), &quick())
        .await
        .unwrap();
    let mut child = binary()
        .env("DATABASE_URL", db.url.expose())
        .args(["migrate", "--migrations-dir", &dir_arg, "up"])
        .spawn()
        .unwrap();
    let mut watcher = db.conn().await;
    wait_until(async || {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        sleeping > 0
    })
    .await;

    // Act: kill -9 the deployer mid-migration.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    child.wait().unwrap();

    // Assert: still at the real head, nothing half-made; a fixed rerun gets the lock and succeeds.
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    std::fs::write(dir.path().join("0902_slow.up.sql"), "CREATE TABLE half_done (n int);\n").unwrap();
    let out = run(&db.url, &["migrate", "--migrations-dir", &dir_arg, "up", "--lock-timeout", "20s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(applied_versions(&db).await, with_real(&[902]));
    assert!(table_exists(&db, "half_done").await);
}

async fn wait_until(mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}

#[tokio::test]
async fn a_held_migration_lock_times_out_naming_the_holder_pid() {
    // Arrange: another session holds the lock.
    let db = TestDb::empty().await;
    let mut holder = db.conn().await;
    holder.execute(sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK_KEY)).await.unwrap();
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();

    // Act
    let out = run(&db.url, &["migrate", "up", "--lock-timeout", "500ms"]);

    // Assert
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("server pid {holder_pid}")), "{}", stderr(&out));
    assert!(applied_versions(&db).await.is_empty());
    holder.close().await.unwrap();
}

#[tokio::test]
async fn the_lock_is_released_after_a_failed_migration() {
    // Arrange: 0902 fails.
    let db = TestDb::empty().await;
    let dir = migrations_dir(&[
        ("0902_broken.up.sql", "CREATE TABLE ok_part (n int);\nSELEC 1;\n"),
        ("0902_broken.down.sql", "DROP TABLE ok_part;\n"),
    ]);
    let dir_arg = dir.path().to_str().unwrap();

    // Act
    let out = run(&db.url, &["migrate", "--migrations-dir", dir_arg, "up"]);

    // Assert: the error names file, line and column; the real head stays; the lock is free at once.
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("0902_broken.up.sql failed at line 2, column 1"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("stays at version {:04}", real_head())), "{}", stderr(&out));
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    assert!(!table_exists(&db, "ok_part").await, "the failed migration was rolled back whole");
    let mut conn = db.conn().await;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(free, "the migration lock must be released after a failure");
}

/// A session in an open transaction holding a lock on `sites` that blocks any ALTER TABLE.
async fn lock_sites(db: &TestDb) -> sqlx::PgConnection {
    let mut blocker = db.conn().await;
    blocker.execute("BEGIN").await.unwrap();
    blocker.execute("LOCK TABLE sites IN ACCESS SHARE MODE").await.unwrap();
    blocker
}

#[tokio::test]
async fn a_migration_blocked_by_a_table_lock_is_retried_until_it_gets_through() {
    // Arrange: a long transaction holds a lock on sites for ~1.5 s.
    let db = TestDb::migrated().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    let mut blocker = lock_sites(&db).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        blocker.execute("COMMIT").await.unwrap();
        blocker
    });
    let options = RunnerOptions { ddl_lock_timeout: Duration::from_millis(200), lock_retries: 6, ..quick() };

    // Act
    let steps = runner::up(&db.url, &set, Some(902), &options).await.unwrap();

    // Assert: it failed on lock_timeout at least once, then applied.
    assert_eq!(steps.len(), 1);
    assert!(steps[0].attempts > 1, "expected a retry, got {} attempt(s)", steps[0].attempts);
    assert!(column_exists(&db, "sites", "notes").await);
    release.await.unwrap();
}

#[tokio::test]
async fn lock_timeout_retries_give_up_with_a_clear_error() {
    let db = TestDb::migrated().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    let mut blocker = lock_sites(&db).await;
    let options = RunnerOptions { ddl_lock_timeout: Duration::from_millis(100), lock_retries: 1, ..quick() };

    let err = runner::up(&db.url, &set, Some(902), &options).await.unwrap_err();

    assert!(matches!(err, MigrateError::LockRetriesExhausted { attempts: 2, .. }), "{err}");
    blocker.execute("ROLLBACK").await.unwrap();
    assert_eq!(applied_versions(&db).await, with_real(&[]));
}

#[tokio::test]
async fn a_no_transaction_migration_builds_an_index_concurrently() {
    let db = TestDb::migrated().await;
    let dir = migrations_dir(&[
        (
            "0902_sites_language_idx.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS sites_language_idx ON sites (language);\n",
        ),
        (
            "0902_sites_language_idx.down.sql",
            "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS sites_language_idx;\n",
        ),
    ]);
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    runner::up(&db.url, &set, None, &quick()).await.unwrap();
    assert!(table_exists(&db, "sites_language_idx").await);
    assert_eq!(applied_versions(&db).await, with_real(&[902]));
    runner::down(&db.url, &set, DownTarget::To(real_head()), &quick()).await.unwrap();
    assert!(!table_exists(&db, "sites_language_idx").await);
}

#[tokio::test]
async fn status_reports_current_pending_and_problems_as_json() {
    let db = TestDb::empty().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    let dir_arg = dir.path().to_str().unwrap();
    run(&db.url, &["migrate", "--migrations-dir", dir_arg, "up", "--to", &real_head().to_string()]);

    let out = run(&db.url, &["migrate", "--migrations-dir", dir_arg, "status", "--json"]);

    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["current"], real_head());
    assert_eq!(status["head"], 903);
    assert_eq!(status["pending"], serde_json::json!([902, 903]));
    assert_eq!(status["problems"], serde_json::json!([]));
}

#[tokio::test]
async fn status_exits_1_on_problems_and_says_which() {
    // Arrange: the database applied 0902, which these migrations do not know.
    let db = TestDb::empty().await;
    let dir = migrations_dir(EXTRA_MIGRATIONS);
    run(&db.url, &["migrate", "--migrations-dir", dir.path().to_str().unwrap(), "up"]);

    // Act
    let out = run(&db.url, &["migrate", "status"]);
    let json = run(&db.url, &["migrate", "status", "--json"]);

    // Assert
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("problem: the database has migration 0902 (add_site_notes) applied"),
        "{}",
        stdout(&out)
    );
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["problems"][0]["kind"], "unknown_applied");
}

#[tokio::test]
async fn a_bad_database_url_is_an_error_with_exit_code_2() {
    let out = binary()
        .env("DATABASE_URL", "postgres://nobody:secret-pw@127.0.0.1:1/none")
        .args(["migrate", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("could not connect to nobody@127.0.0.1:1/none"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("secret-pw"), "the password must never be printed");
}

#[tokio::test]
async fn a_migration_over_its_statement_timeout_is_cancelled_and_rolled_back() {
    let db = TestDb::migrated().await;
    let dir = migrations_dir(&[
        ("0902_slow.up.sql", "CREATE TABLE too_slow (n int);\nSELECT pg_sleep(5);\n"),
        ("0902_slow.down.sql", "DROP TABLE too_slow;\n"),
    ]);
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    let options = RunnerOptions { statement_timeout: Duration::from_millis(300), ..quick() };

    let err = runner::up(&db.url, &set, None, &options).await.unwrap_err();

    let chain =
        format!("{err}: {}", std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default());
    assert!(chain.contains("0902_slow.up.sql failed"), "{chain}");
    assert!(chain.contains("statement timeout"), "{chain}");
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    assert!(!table_exists(&db, "too_slow").await);
}
