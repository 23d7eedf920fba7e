use cabinet_db::{
    migrations::{
        MigrationSet, RunnerOptions,
        baseline::{BaselineOptions, baseline},
        runner,
    },
    schema_diff,
};
use chrono::{DateTime, Utc};
use sqlx::Connection;

use crate::harness::{TestDb, applied_versions, real_head, run, stderr, stdout, table_exists, with_real};

/// The tables as SQLAlchemy's `create_all` / Alembic's autogenerate made them from the
/// original models.py (String → VARCHAR, DateTime → TIMESTAMP WITHOUT TIME ZONE), with
/// Alembic's version table and some rows written in Berlin local time.
const ALEMBIC_SCHEMA: &str = "
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('3f2a9c1b7d4e');
CREATE TABLE sites (
    site_id VARCHAR NOT NULL,
    domain VARCHAR(255),
    ai_script_id VARCHAR,
    ai_prompt TEXT,
    brand_name VARCHAR,
    language VARCHAR(10),
    hubspot_pipeline VARCHAR,
    hubspot_stage VARCHAR,
    created_at TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (site_id)
);
CREATE UNIQUE INDEX ix_sites_domain ON sites (domain);
CREATE TABLE users (
    user_id VARCHAR NOT NULL,
    email VARCHAR(255),
    first_seen TIMESTAMP WITHOUT TIME ZONE,
    last_seen TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (user_id)
);
CREATE INDEX ix_users_email ON users (email);
INSERT INTO sites VALUES ('acme', 'acme.example.com', 'v1', 'Be helpful.', 'ACME', 'en', 'p1', 's1', '2026-01-15 10:00:00');
INSERT INTO users VALUES ('u1', 'ada@example.com', '2026-01-15 10:00:00', '2026-07-01 12:30:00.123456');
";

fn alembic_options() -> BaselineOptions {
    BaselineOptions { version: None, from_alembic: true, assume_timezone: "Europe/Berlin".to_owned() }
}

#[tokio::test]
async fn an_alembic_database_is_converted_and_baselined() {
    // Arrange
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    let set = MigrationSet::embedded().unwrap();

    // Act
    let report = baseline(&db.url, &set, &alembic_options(), &RunnerOptions::default()).await.unwrap();

    // Assert: the report says what differed and what ran.
    assert_eq!(report.alembic_revision.as_deref(), Some("3f2a9c1b7d4e"));
    let differences = report.differences.join("\n");
    assert!(
        differences.contains("sites.domain has type character varying(255), the models say text"),
        "{differences}"
    );
    assert!(differences.contains("users.first_seen has type timestamp without time zone"), "{differences}");
    assert!(differences.contains("table alembic_version exists"), "{differences}");
    assert!(
        report.statements.iter().any(|s| s.contains("AT TIME ZONE 'Europe/Berlin'")),
        "{:?}",
        report.statements
    );

    // The schema is now exactly the models, Alembic's table is gone, the migrations are recorded.
    let mut conn = db.conn().await;
    assert!(schema_diff::drift(&mut conn).await.unwrap().is_empty());
    assert!(!table_exists(&db, "alembic_version").await);
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    let baseline_flag: bool = sqlx::query_scalar("SELECT bool_and(baseline) FROM cabinet_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(baseline_flag);

    // Naive Berlin times became the right instants, to the microsecond.
    let created: DateTime<Utc> = sqlx::query_scalar("SELECT created_at FROM sites WHERE site_id = 'acme'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(created.to_rfc3339(), "2026-01-15T09:00:00+00:00");
    let last_seen: DateTime<Utc> = sqlx::query_scalar("SELECT last_seen FROM users WHERE user_id = 'u1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(last_seen.to_rfc3339(), "2026-07-01T10:30:00.123456+00:00", "summer time is +2");
    conn.close().await.unwrap();

    // And the runner takes over: nothing to apply.
    let steps = runner::up(&db.url, &set, None, &RunnerOptions::default()).await.unwrap();
    assert!(steps.is_empty());
}

#[tokio::test]
async fn alembic_rows_that_break_the_models_rules_abort_the_adoption_and_change_nothing() {
    // Arrange: a domain in upper case, as the old code allowed.
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    db.exec("INSERT INTO sites (site_id, domain, language) VALUES ('shouty', 'SHOUTY.example.com', 'en')")
        .await;

    // Act
    let out = run(&db.url, &["migrate", "baseline", "--from-alembic"]);

    // Assert: a clear error, and the database exactly as before.
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("domain must be stored in lower case"), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing was changed"), "{}", stderr(&out));
    assert!(table_exists(&db, "alembic_version").await);
    assert!(!table_exists(&db, "cabinet_migrations").await);
    let mut conn = db.conn().await;
    let domain_type: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sites'::regclass AND attname = 'domain'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(domain_type, "character varying(255)");
}

#[tokio::test]
async fn from_alembic_without_alembic_version_is_refused() {
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    db.exec("DROP TABLE alembic_version").await;
    let out = run(&db.url, &["migrate", "baseline", "--from-alembic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("there is no alembic_version table"), "{}", stderr(&out));
}

#[tokio::test]
async fn from_alembic_with_an_unknown_time_zone_is_refused() {
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    let out = run(&db.url, &["migrate", "baseline", "--from-alembic", "--assume-timezone", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"Mars/Olympus\" is not a time zone"), "{}", stderr(&out));
    assert!(table_exists(&db, "alembic_version").await);
}

#[tokio::test]
async fn a_plain_baseline_records_a_matching_schema_without_running_anything() {
    // Arrange: the schema exists (made by hand from the models) but nothing is recorded.
    let db = TestDb::empty().await;
    db.exec(&cabinet_db::testing::create_all_sql()).await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('keep', 'keep.example.com')").await;

    // Act
    let out = run(&db.url, &["migrate", "baseline", "--json"]);

    // Assert
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["version"], real_head());
    assert_eq!(applied_versions(&db).await, with_real(&[]));
    let again = run(&db.url, &["migrate", "baseline"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already managed by cabinet-db"), "{}", stderr(&again));
}

#[tokio::test]
async fn a_plain_baseline_at_head_refuses_a_drifted_schema() {
    let db = TestDb::empty().await;
    db.exec(&cabinet_db::testing::create_all_sql()).await;
    db.exec("ALTER TABLE sites DROP CONSTRAINT sites_language_tag").await;
    let out = run(&db.url, &["migrate", "baseline"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("constraint sites_language_tag is missing"), "{}", stderr(&out));
    assert!(applied_versions(&db).await.is_empty());
}

#[tokio::test]
async fn alembic_rows_with_null_in_a_required_column_without_default_are_reported() {
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    db.exec("INSERT INTO sites (site_id, domain, language) VALUES ('nodomain', NULL, 'en')").await;
    let out = run(&db.url, &["migrate", "baseline", "--from-alembic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ALTER TABLE sites ALTER COLUMN domain SET NOT NULL"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("existing rows have NULL in a column the models require"),
        "{}",
        stderr(&out)
    );
    assert!(table_exists(&db, "alembic_version").await);
}

#[tokio::test]
async fn alembic_rows_with_null_timestamps_get_the_models_default() {
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    db.exec("INSERT INTO sites (site_id, domain, language) VALUES ('undated', 'undated.example.com', 'en')")
        .await;
    let out = run(&db.url, &["migrate", "baseline", "--from-alembic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("UPDATE sites SET created_at = now() WHERE created_at IS NULL;"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn an_alembic_database_is_adopted_although_the_roles_were_applied_first() {
    // Arrange: roles applied to the Alembic-built database before adopting it.
    let db = TestDb::empty().await;
    db.exec(ALEMBIC_SCHEMA).await;
    let roles = cabinet_db::roles::Roles::new(db.role_prefix());
    let secrets = tempfile::tempdir().unwrap();
    let sources = cabinet_db::roles::password::PasswordSources {
        files: vec![],
        secrets_dir: Some(secrets.path().to_owned()),
    };
    cabinet_db::roles::apply::apply(&db.url, &roles, &sources).await.unwrap();
    let options = RunnerOptions {
        owner_role: Some(roles.name(cabinet_db::roles::RoleKind::Owner)),
        ..RunnerOptions::default()
    };

    // Act
    baseline(&db.url, &MigrationSet::embedded().unwrap(), &alembic_options(), &options).await.unwrap();

    // Assert
    assert!(!table_exists(&db, "alembic_version").await);
    assert_eq!(applied_versions(&db).await, with_real(&[]));
}
