//! Imports into tables that already hold rows: a line changes only what it names, problems
//! the database finds are reported by line like the ones found in Rust, concurrent imports
//! both succeed, and a connection lost during COMMIT is never reported as "nothing written".

use std::{io::Write, path::PathBuf, process::Stdio, sync::atomic::Ordering};

use cabinet_db::roles::RoleKind;
use sqlx::Connection;

use crate::{
    cutting_proxy::CuttingProxy,
    harness::{TestDb, WithRoles, binary, run, stderr, stdout},
};

fn write(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn import(db: &TestDb, table: &str, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![table, "import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&db.url, &args)
}

/// One row as JSON, every column, for exact comparisons.
async fn row(db: &TestDb, table: &str, key: &str) -> serde_json::Value {
    let mut conn = db.conn().await;
    let key_column = if table == "sites" { "site_id" } else { "user_id" };
    let sql = format!("SELECT to_jsonb(t) FROM {table} t WHERE {key_column} = $1");
    let value: serde_json::Value =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(key).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    value
}

const FULL_SITE: &str = "INSERT INTO sites VALUES ('demo-acme', 'acme.example.com', 'support-v2', 'Be kind.', 'ACME', 'de', 'p1', 's1', '2020-01-01T00:00:00Z')";

#[tokio::test]
async fn a_partial_json_line_changes_only_the_columns_it_names() {
    // Arrange: a complete site and user.
    let db = TestDb::migrated().await;
    db.exec(FULL_SITE).await;
    db.exec("INSERT INTO users VALUES ('u1', 'ada@example.com', '2020-01-01Z', '2021-01-01Z')").await;
    let site_before = row(&db, "sites", "demo-acme").await;
    let user_before = row(&db, "users", "u1").await;
    let dir = tempfile::tempdir().unwrap();

    // Act: lines that name only some keys, different ones per line.
    let sites = write(
        &dir,
        "sites.jsonl",
        concat!(
            "{\"site_id\":\"demo-acme\",\"domain\":\"acme.example.com\"}\n",
            "{\"site_id\":\"other\",\"domain\":\"other.example.com\",\"brand_name\":\"Other\"}\n",
        ),
    );
    let out = import(&db, "sites", &sites, &[]);
    let users = write(&dir, "users.jsonl", "{\"user_id\":\"u1\"}\n");
    let out_users = import(&db, "users", &users, &[]);

    // Assert: the existing rows are exactly as they were; the new one has defaults.
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 inserted, 1 updated"), "{}", stdout(&out));
    assert_eq!(row(&db, "sites", "demo-acme").await, site_before);
    assert!(out_users.status.success(), "{}", stderr(&out_users));
    assert_eq!(row(&db, "users", "u1").await, user_before);
    let other = row(&db, "sites", "other").await;
    assert_eq!((other["language"].as_str(), other["ai_prompt"].as_str()), (Some("en"), None));
}

#[tokio::test]
async fn lines_of_one_file_carry_different_keys_and_null_clears() {
    let db = TestDb::migrated().await;
    db.exec(FULL_SITE).await;
    db.exec("INSERT INTO sites (site_id, domain, brand_name) VALUES ('b', 'b.example.com', 'B')").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "mixed.jsonl",
        concat!(
            "{\"site_id\":\"demo-acme\",\"ai_prompt\":\"New prompt.\"}\n",
            "{\"site_id\":\"b\",\"brand_name\":null,\"language\":\"fr\"}\n",
        ),
    );

    let out = import(&db, "sites", &file, &[]);

    assert!(out.status.success(), "{}", stderr(&out));
    let acme = row(&db, "sites", "demo-acme").await;
    assert_eq!(acme["ai_prompt"], "New prompt.");
    assert_eq!((acme["brand_name"].as_str(), acme["language"].as_str()), (Some("ACME"), Some("de")));
    let b = row(&db, "sites", "b").await;
    assert_eq!(b["brand_name"], serde_json::Value::Null, "an explicit null clears");
    assert_eq!(b["language"], "fr");
}

#[tokio::test]
async fn csv_columns_the_header_leaves_out_are_kept() {
    let db = TestDb::migrated().await;
    db.exec(FULL_SITE).await;
    db.exec("INSERT INTO users VALUES ('u1', 'ada@example.com', '2020-01-01Z', '2021-01-01Z')").await;
    let user_before = row(&db, "users", "u1").await;
    let dir = tempfile::tempdir().unwrap();

    let sites = import(&db, "sites", &write(&dir, "s.csv", "site_id,brand_name\ndemo-acme,ACME GmbH\n"), &[]);
    // An empty cell in a NOT NULL column means "not given", never "now".
    let users = import(
        &db,
        "users",
        &write(&dir, "u.csv", "user_id,email,first_seen,last_seen\nu1,ada@example.com,,\n"),
        &[],
    );

    assert!(sites.status.success(), "{}", stderr(&sites));
    let acme = row(&db, "sites", "demo-acme").await;
    assert_eq!(acme["brand_name"], "ACME GmbH");
    assert_eq!((acme["ai_prompt"].as_str(), acme["hubspot_stage"].as_str()), (Some("Be kind."), Some("s1")));
    assert!(users.status.success(), "{}", stderr(&users));
    assert_eq!(row(&db, "users", "u1").await, user_before);
}

#[tokio::test]
async fn a_new_row_without_its_domain_is_named_by_line() {
    let db = TestDb::migrated().await;
    db.exec(FULL_SITE).await;
    let dir = tempfile::tempdir().unwrap();
    let file =
        write(&dir, "s.jsonl", "{\"site_id\":\"demo-acme\",\"brand_name\":\"X\"}\n{\"site_id\":\"fresh\"}\n");

    let out = import(&db, "sites", &file, &[]);

    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("line 2, column domain, value \"\": is missing: \"fresh\" is not in the database yet"),
        "{}",
        stderr(&out)
    );
    assert_eq!(row(&db, "sites", "demo-acme").await["brand_name"], "ACME", "nothing was written");
}

#[tokio::test]
async fn constraint_violations_the_database_finds_are_reported_with_line_column_and_value() {
    // Arrange: users exist, so the rows are staged and merged; each line breaks
    // users_seen_order only once combined with a default or a stored value.
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO users VALUES ('old', NULL, '2025-06-01Z', '2025-07-01Z')").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "u.csv",
        "user_id,last_seen\nnew1,2020-01-01T00:00:00Z\nfine,2099-01-01T00:00:00Z\nold,2024-01-01T00:00:00Z\nnew2,2019-01-01T00:00:00Z\n",
    );

    let out = run(&db.url, &["--json", "users", "import", file.to_str().unwrap()]);

    // Assert: every offending line, with the column the file gave and why.
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let problems = report["problems"].as_array().unwrap();
    let lines: Vec<i64> = problems.iter().map(|p| p["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![2, 4, 5], "{report:#}");
    assert_eq!(problems[0]["column"], "last_seen");
    assert_eq!(problems[0]["value"], "2020-01-01 00:00:00+00");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(
        message.contains("first_seen must not be later than last_seen (constraint users_seen_order)"),
        "{message}"
    );
    assert!(
        message.contains("first_seen is not in the file, so this new row takes its default"),
        "{message}"
    );
    assert!(problems[1]["message"].as_str().unwrap().contains("the stored value stays"), "{report:#}");
    assert!(report["hint"].as_str().unwrap().contains("fix the rows named"), "{report:#}");
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut db.conn().await).await.unwrap();
    assert_eq!(count, 1, "nothing was written");
}

#[tokio::test]
async fn insert_mode_reports_every_existing_key_not_only_the_first() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('a', 'a.example.com'), ('b', 'b.example.com')")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "s.csv", "site_id,domain\na,a.example.com\nc,c.example.com\nb,b.example.com\n");

    let out = import(&db, "sites", &file, &["--mode", "insert"]);

    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(
        err.contains(
            "line 2, column site_id, value \"a\": already exists in the database; use --mode upsert"
        ),
        "{err}"
    );
    assert!(err.contains("line 4, column site_id, value \"b\": already exists"), "{err}");
}

#[tokio::test]
async fn duplicates_in_a_file_for_an_empty_table_are_all_located() {
    // The fast path (COPY into the empty table) meets the first duplicate; the file is then
    // staged and every duplicate named.
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "s.csv",
        "site_id,domain\na,a.example.com\nb,b.example.com\na,x.example.com\nb,y.example.com\n",
    );

    let out = import(&db, "sites", &file, &["--mode", "insert"]);

    let err = stderr(&out);
    assert!(err.contains("line 2, column site_id, value \"a\": appears on lines 2, 4"), "{err}");
    assert!(err.contains("line 3, column site_id, value \"b\": appears on lines 3, 5"), "{err}");
}

#[tokio::test]
async fn two_concurrent_default_imports_into_an_empty_table_both_succeed() {
    // Arrange: two files sharing half their keys, large enough to overlap in time.
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = String::from("site_id,domain,brand_name\n");
    let mut second = first.clone();
    for i in 0..20_000 {
        first.push_str(&format!("s{i},s{i}.example.com,first\n"));
        second.push_str(&format!("s{},s{}.example.com,second\n", i + 10_000, i + 10_000));
    }
    let files = [write(&dir, "a.csv", &first), write(&dir, "b.csv", &second)];

    // Act: both at once.
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            binary()
                .env("DATABASE_URL", db.url.expose())
                .args(["sites", "import", file.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();

    // Assert
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut db.conn().await).await.unwrap();
    assert_eq!(count, 30_000);
}

#[tokio::test]
async fn a_connection_lost_during_commit_is_reported_as_an_unknown_outcome() {
    // Arrange: the import reaches the server through a proxy that cuts it after COMMIT.
    let db = TestDb::migrated().await;
    let port = db.url.connect_options().unwrap().get_port();
    let proxy = CuttingProxy::start(port);
    let url = db.url.expose().replace(&format!(":{port}/"), &format!(":{}/", proxy.port));
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "s.csv", "site_id,domain\nacme,acme.example.com\n");

    // Act
    let out =
        binary().env("DATABASE_URL", url).args(["sites", "import", file.to_str().unwrap()]).output().unwrap();

    // Assert: not "nothing was written" — in fact the row was written.
    assert!(proxy.cut.load(Ordering::SeqCst), "the proxy saw the COMMIT");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("may or may not have been written"), "{err}");
    assert!(!err.contains("nothing was written"), "{err}");
    let mut conn = db.conn().await;
    let mut written: i64 = 0;
    for _ in 0..50 {
        written = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut conn).await.unwrap();
        if written == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(written, 1, "the server committed what the client could not confirm");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_import_as_the_admin_role_is_not_cut_short_by_the_roles_statement_timeout() {
    // Arrange: the admin role's statement_timeout is 1 s, and another session holds a lock
    // that keeps the COPY waiting for 2 s.
    let setup = WithRoles::new().await;
    let admin = setup.roles.name(RoleKind::Admin);
    setup.db.exec(&format!("ALTER ROLE {admin} SET statement_timeout = '1s'")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "s.csv", "site_id,domain\nacme,acme.example.com\n");
    let mut blocker = setup.db.conn().await;
    sqlx::raw_sql("BEGIN; LOCK TABLE sites IN SHARE MODE").execute(&mut blocker).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
        blocker.close().await.unwrap();
    });

    // Act
    let out = tokio::task::spawn_blocking({
        let url = setup.url_as(RoleKind::Admin);
        let file = file.clone();
        move || run(&url, &["sites", "import", file.to_str().unwrap()])
    })
    .await
    .unwrap();

    // Assert
    release.await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let short = tokio::task::spawn_blocking({
        let url = setup.url_as(RoleKind::Admin);
        move || run(&url, &["sites", "import", file.to_str().unwrap(), "--statement-timeout", "1ms"])
    })
    .await
    .unwrap();
    // The option is the import's own limit: 1 ms is too short even for a tiny file.
    assert_eq!(short.status.code(), Some(2), "{}", stderr(&short));
}

/// `sites import -` with `input` on standard input.
fn import_stdin(db: &TestDb, input: &[u8]) -> std::process::Output {
    let mut child = binary()
        .env("DATABASE_URL", db.url.expose())
        .args(["sites", "import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn standard_input_a_byte_order_mark_and_strict_json_are_handled() {
    let db = TestDb::migrated().await;

    // `-` reads standard input; CSV with Excel's UTF-8 byte-order mark.
    let out = import_stdin(&db, "\u{feff}site_id,domain\nacme,acme.example.com\n".as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 inserted"), "{}", stdout(&out));

    // JSON Lines on standard input is recognised by its first character.
    let out = import_stdin(
        &db,
        b"{\"site_id\": 1.50, \"domain\": \"n.example.com\"}\n{\"site_id\":\"a\",\"domain\":\"a.example.com\",\"site_id\":\"b\"}\n",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 1, column site_id, value \"1.50\": is a JSON number"), "{err}");
    assert!(err.contains("write it as a string: \"1.50\""), "{err}");
    assert!(err.contains("line 2: not a JSON object: the key \"site_id\" appears twice"), "{err}");

    // A semicolon-separated file is named as such.
    let dir = tempfile::tempdir().unwrap();
    let out = import(&db, "sites", &write(&dir, "excel.csv", "site_id;domain\nx;x.example.com\n"), &[]);
    assert!(stderr(&out).contains("separated by semicolons"), "{}", stderr(&out));
}
