//! The privilege matrix, tried by connecting as each role.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use cabinet_db::{
    migrations::{MigrationSet, RunnerOptions, runner},
    roles::{
        RoleKind, Roles, RolesError,
        apply::apply,
        password::{self, PasswordSources},
    },
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::{TestDb, WithRoles, migrations_dir, run, sources, stderr};

/// Whether `sql` succeeds as this connection (in a transaction that is rolled back).
async fn allowed(conn: &mut PgConnection, sql: &str) -> bool {
    let mut tx = conn.begin().await.unwrap();
    let result = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut *tx).await;
    tx.rollback().await.unwrap();
    match result {
        Ok(_) => true,
        Err(e) if cabinet_db::db::sqlstate(&e).as_deref() == Some("42501") => false,
        Err(e) => panic!("{sql}: expected success or permission denied, got {e}"),
    }
}

const OPERATIONS: &[(&str, &str)] = &[
    ("select sites", "SELECT * FROM sites"),
    ("insert sites", "INSERT INTO sites (site_id, domain) VALUES ('t', 't.example.com')"),
    ("update sites", "UPDATE sites SET brand_name = 'x'"),
    ("delete sites", "DELETE FROM sites"),
    ("truncate sites", "TRUNCATE sites"),
    ("select users", "SELECT * FROM users"),
    ("insert users", "INSERT INTO users (user_id) VALUES ('u')"),
    ("update users", "UPDATE users SET email = 'a@b.co'"),
    ("delete users", "DELETE FROM users"),
    ("truncate users", "TRUNCATE users"),
    ("read the migration ledger", "SELECT * FROM cabinet_migrations"),
    ("write the migration ledger", "DELETE FROM cabinet_migrations"),
    ("create a table", "CREATE TABLE public.sneaky (id int)"),
    ("alter sites", "ALTER TABLE sites ADD COLUMN sneaky int"),
    ("drop users", "DROP TABLE users"),
    ("create a temporary table", "CREATE TEMPORARY TABLE scratch (id int)"),
    ("record a sighting", "SELECT cabinet_record_seen('u-seen', NULL, now())"),
    ("record sightings", "SELECT * FROM cabinet_record_seen_many(ARRAY['u-seen'], NULL, ARRAY[now()])"),
    ("forget a user", "SELECT cabinet_forget_user('u-nobody')"),
    ("prune the history", "SELECT cabinet_prune_history('2000-01-01')"),
    ("write the history", "DELETE FROM users_history"),
];

#[tokio::test]
async fn each_login_role_can_do_exactly_its_job() {
    // Arrange
    let setup = WithRoles::new().await;
    let expectations = [
        (
            RoleKind::Admin,
            &[
                "select sites",
                "insert sites",
                "update sites",
                "delete sites",
                "select users",
                "insert users",
                "update users",
                "delete users",
                // The admin panel shows the migration status.
                "read the migration ledger",
                // `sites import` stages rows in a temporary table.
                "create a temporary table",
                "record a sighting",
                "record sightings",
                // A delete-my-data request, from the panel or `users forget`.
                "forget a user",
            ][..],
        ),
        (RoleKind::N8n, &["select sites"][..]),
        // The main application reads both tables and records sign-ins, nothing more.
        (RoleKind::App, &["select sites", "select users", "record a sighting", "record sightings"][..]),
    ];
    for (kind, permitted) in expectations {
        let mut conn = setup.conn(kind).await;
        for (operation, sql) in OPERATIONS {
            // Act
            let was_allowed = allowed(&mut conn, sql).await;
            // Assert
            assert_eq!(
                was_allowed,
                permitted.contains(operation),
                "{kind:?} may {operation}: expected {}",
                !was_allowed
            );
        }
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn login_roles_have_no_special_attributes_and_their_limits() {
    let setup = WithRoles::new().await;
    let mut admin_conn = setup.db.conn().await;
    for kind in RoleKind::ALL {
        let name = setup.roles.name(kind);
        let (sup, createdb, createrole, replication, bypassrls, login, limit): (bool, bool, bool, bool, bool, bool, i32) =
            sqlx::query_as(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolconnlimit
                   FROM pg_roles WHERE rolname = $1",
            )
            .bind(&name)
            .fetch_one(&mut admin_conn)
            .await
            .unwrap();
        assert!(
            !(sup || createdb || createrole || replication || bypassrls),
            "{name} has a special attribute"
        );
        assert_eq!(login, kind.can_login(), "{name}");
        assert_eq!(limit, kind.connection_limit(), "{name}");
        let scram: bool = sqlx::query_scalar(
            "SELECT coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', true) FROM pg_authid WHERE rolname = $1",
        )
        .bind(&name)
        .fetch_one(&mut admin_conn)
        .await
        .unwrap();
        assert!(scram, "{name}'s password is stored as a SCRAM verifier");
    }
    let mut n8n = setup.conn(RoleKind::N8n).await;
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&mut n8n).await.unwrap();
    assert_eq!(timeout, "5s");
    let slow = sqlx::query("SELECT pg_sleep(6)").execute(&mut n8n).await.unwrap_err();
    assert_eq!(cabinet_db::db::sqlstate(&slow).as_deref(), Some("57014"), "cancelled by statement_timeout");
}

#[tokio::test]
async fn public_gets_nothing_even_where_postgresql_14_granted_it() {
    // Arrange: PostgreSQL 14's default (PUBLIC may CREATE in public) plus a careless grant.
    let db = TestDb::migrated().await;
    db.exec("GRANT CREATE ON SCHEMA public TO PUBLIC; GRANT SELECT ON sites TO PUBLIC").await;
    let roles = Roles::new(db.role_prefix());
    let secrets = tempfile::tempdir().unwrap();

    // Act
    apply(&db.url, &roles, &sources(&secrets)).await.unwrap();

    // Assert: PUBLIC can neither create nor read; a stranger role cannot even connect.
    let mut conn = db.conn().await;
    let (create, select): (bool, bool) = sqlx::query_as(
        "SELECT has_schema_privilege('public', 'public', 'CREATE'), has_table_privilege('public', 'sites', 'SELECT')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!create && !select);
    let stranger = format!("{}stranger", db.role_prefix());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE ROLE {stranger} LOGIN PASSWORD 'stranger-password-123'")))
        .execute(&mut conn)
        .await
        .unwrap();
    let refused = db.conn_as(&stranger, "stranger-password-123").await.unwrap_err();
    assert_eq!(cabinet_db::db::sqlstate(&refused).as_deref(), Some("42501"), "{refused}");
}

#[tokio::test]
async fn apply_is_idempotent_and_undoes_drifted_grants() {
    // Arrange: someone widened n8n's rights by hand.
    let setup = WithRoles::new().await;
    let n8n = setup.roles.name(RoleKind::N8n);
    setup.db.exec(&format!("GRANT INSERT, DELETE ON sites TO {n8n}; GRANT SELECT ON users TO {n8n}; ALTER ROLE {n8n} CREATEDB")).await;
    let n8n_password = setup.password(RoleKind::N8n);

    // Act: apply again (no password given: existing passwords stay).
    let report = apply(&setup.db.url, &setup.roles, &sources(&setup.secrets)).await.unwrap();

    // Assert
    assert!(report.created.is_empty() && report.passwords_set.is_empty(), "{report:?}");
    let mut conn = setup.conn(RoleKind::N8n).await;
    assert!(!allowed(&mut conn, "INSERT INTO sites (site_id, domain) VALUES ('t', 't.example.com')").await);
    assert!(!allowed(&mut conn, "SELECT * FROM users").await);
    assert_eq!(setup.password(RoleKind::N8n), n8n_password, "the password file is untouched");
    let createdb: bool = sqlx::query_scalar("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!createdb);
}

#[tokio::test]
async fn generated_passwords_are_private_files_and_new_roles_need_one() {
    // Without a secrets directory a new login role has no password source: refused whole.
    let db = TestDb::migrated().await;
    let roles = Roles::new(db.role_prefix());
    let err = apply(&db.url, &roles, &PasswordSources::default()).await.unwrap_err();
    assert!(matches!(err, RolesError::NeedsPassword { .. }), "{err}");
    let mut conn = db.conn().await;
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1")
        .bind(format!("{}%", db.role_prefix().replace('_', "\\_")))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(created, 0, "nothing half-created");

    // With one, the files are 0600.
    let secrets = tempfile::tempdir().unwrap();
    apply(&db.url, &roles, &sources(&secrets)).await.unwrap();
    for kind in RoleKind::LOGIN {
        let path = secrets.path().join(format!("{}.password", roles.name(kind)));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_password_file_sets_the_password_and_rotate_replaces_it() {
    // Arrange: the admin password comes from a file.
    let db = TestDb::migrated().await;
    let roles = Roles::new(db.role_prefix());
    let secrets = tempfile::tempdir().unwrap();
    let admin = roles.name(RoleKind::Admin);
    let given = secrets.path().join("given");
    std::fs::write(&given, "given-admin-password-42\n").unwrap();
    let sources = PasswordSources {
        files: vec![(admin.clone(), given.clone())],
        secrets_dir: Some(secrets.path().to_owned()),
    };
    // A password file others may read is refused (its secret may have leaked), naming the fix.
    std::fs::set_permissions(&given, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = apply(&db.url, &roles, &sources).await.unwrap_err().to_string();
    assert!(
        refused.contains("readable by its group or others") && refused.contains("chmod 600"),
        "{refused}"
    );
    assert!(!refused.contains("given-admin-password-42"), "{refused}");
    std::fs::set_permissions(&given, std::fs::Permissions::from_mode(0o600)).unwrap();
    apply(&db.url, &roles, &sources).await.unwrap();
    assert!(db.conn_as(&admin, "given-admin-password-42").await.is_ok());

    // Act: rotate through the CLI, generating a new one.
    let out = run(
        &db.url,
        &[
            "roles",
            "rotate",
            &admin,
            "--role-prefix",
            &db.role_prefix(),
            "--secrets-dir",
            secrets.path().to_str().unwrap(),
        ],
    );

    // Assert
    assert!(out.status.success(), "{}", stderr(&out));
    let new = password::read(&secrets.path().join(format!("{admin}.password"))).unwrap();
    assert!(db.conn_as(&admin, new.expose()).await.is_ok());
    assert!(db.conn_as(&admin, "given-admin-password-42").await.is_err(), "the old password stops working");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(new.expose()), "never printed");

    // Without any source, rotate says how to give one, and changes nothing.
    let out = run(&db.url, &["roles", "rotate", &admin, "--role-prefix", &db.role_prefix()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("--secrets-dir DIR generates one into DIR/{admin}.password")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("CABINET_ADMIN_PASSWORD"), "{}", stderr(&out));
    assert!(db.conn_as(&admin, new.expose()).await.is_ok(), "the password stays");
}

#[tokio::test]
async fn migrations_run_as_the_owner_role_once_it_exists() {
    let setup = WithRoles::new().await;
    let dir = migrations_dir(&[
        ("0902_notes.up.sql", "CREATE TABLE site_notes (site_id text PRIMARY KEY);\n"),
        ("0902_notes.down.sql", "DROP TABLE site_notes;\n"),
    ]);
    let options = RunnerOptions {
        owner_role: Some(setup.roles.name(RoleKind::Owner)),
        lock_wait: Duration::from_secs(20),
        ..RunnerOptions::default()
    };
    runner::up(&setup.db.url, &MigrationSet::from_dir(dir.path()).unwrap(), None, &options).await.unwrap();
    let mut conn = setup.db.conn().await;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class
          WHERE relname IN ('sites', 'users', 'cabinet_migrations', 'site_notes') AND relkind = 'r'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(owners, vec![setup.roles.name(RoleKind::Owner)]);
    // The admin panel does not get the new table until the model grants it.
    let mut admin = setup.conn(RoleKind::Admin).await;
    assert!(!allowed(&mut admin, "SELECT * FROM site_notes").await);
}

#[tokio::test]
async fn a_new_database_migrates_although_the_cluster_wide_owner_role_has_no_rights_in_it_yet() {
    // Arrange: the roles exist (applied to another database of the cluster).
    let first = WithRoles::new().await;
    let second = TestDb::empty().await;
    let options = RunnerOptions {
        owner_role: Some(first.roles.name(RoleKind::Owner)),
        lock_wait: Duration::from_secs(20),
        ..RunnerOptions::default()
    };

    // Act
    runner::up(&second.url, &MigrationSet::embedded().unwrap(), None, &options).await.unwrap();
    apply(&second.url, &first.roles, &sources(&first.secrets)).await.unwrap();

    // Assert: roles apply handed everything to the owner.
    let mut conn = second.conn().await;
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'sites'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owner, first.roles.name(RoleKind::Owner));
}

#[tokio::test]
async fn the_admin_role_can_import_upsert_and_export() {
    let setup = WithRoles::new().await;
    setup.db.exec("INSERT INTO sites (site_id, domain) VALUES ('old', 'old.example.com')").await;
    let admin_url = setup.db.url_as(&setup.roles.name(RoleKind::Admin), &setup.password(RoleKind::Admin));
    let file = setup.secrets.path().join("sites.csv");
    std::fs::write(
        &file,
        "site_id,domain,brand_name\nold,old.example.com,Renamed\nnew,new.example.com,New\n",
    )
    .unwrap();

    let imported = run(&admin_url, &["sites", "import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(crate::harness::stdout(&imported).contains("1 inserted, 1 updated"));
    let exported = run(&admin_url, &["sites", "export"]);
    assert!(crate::harness::stdout(&exported).contains("Renamed"), "{}", stderr(&exported));
    let seen = run(&admin_url, &["users", "seen", "u1", "--email", "ada@example.com"]);
    assert!(seen.status.success(), "{}", stderr(&seen));
}
