//! Import and export: round trips, and a battery of bad input that must leave the database
//! exactly as it was.

use std::path::{Path, PathBuf};

use crate::harness::{TestDb, run, stderr, stdout};

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn import(db: &TestDb, table: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![table, "import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&db.url, &args)
}

/// Every row of a table, as text, to compare databases exactly.
async fn dump(db: &TestDb, table: &str) -> Vec<String> {
    let mut conn = db.conn().await;
    let sql = format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap()
}

const SITES_CSV: &str =
    "site_id,domain,ai_prompt,brand_name,language,hubspot_pipeline,hubspot_stage,created_at
acme,acme.example.com,\"Be helpful.\nNever rude; say \"\"hi\"\".\",ACME,en,p1,s1,2026-01-15 09:00:00.123456+00
baeckerei,Baeckerei.Example.DE,\"\",Bäckerei Schmidt 🥨,de,,,2026-01-16T10:00:00.000001+01:00
rtl,rtl.example.com,مرحبا بك في الموقع,שלום,ar,,,
sqlish,sql.example.com,\"'); DROP TABLE sites; --\",Robert'); DROP TABLE students;--,en,,,
";

#[tokio::test]
async fn csv_and_jsonl_round_trip_exactly() {
    // Arrange: tricky but valid data, including a 1 MB prompt.
    let source = TestDb::migrated().await;
    let files = Files::new();
    let mut csv = SITES_CSV.to_owned();
    csv.push_str(&format!("big,big.example.com,{},Big,en,,,2026-01-01T00:00:00Z\n", "x".repeat(1 << 20)));
    let out = import(&source, "sites", &files.write("sites.csv", &csv), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 5 rows into sites: 5 inserted"), "{}", stdout(&out));
    let users_csv = "user_id,email,first_seen,last_seen\nu1,ada@example.com,2026-01-01T00:00:00.000001Z,2026-02-01T00:00:00Z\nu2,,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z\n";
    assert!(import(&source, "users", &files.write("users.csv", users_csv), &[]).status.success());

    // Stored verbatim: NULL vs "", unicode, SQL-looking text, normalised domain, microseconds.
    let mut conn = source.conn().await;
    let (prompt, created): (Option<String>, String) = sqlx::query_as(
        "SELECT ai_prompt, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM sites WHERE site_id = 'baeckerei'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(prompt.as_deref(), Some(""), "a quoted empty field is the empty string");
    assert_eq!(created, "2026-01-16 09:00:00.000001");
    let (prompt, domain): (Option<String>, String) =
        sqlx::query_as("SELECT ai_prompt, domain FROM sites WHERE site_id = 'sqlish'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(prompt.as_deref(), Some("'); DROP TABLE sites; --"));
    assert_eq!(domain, "sql.example.com");
    let null_pipeline: Option<String> =
        sqlx::query_scalar("SELECT hubspot_pipeline FROM sites WHERE site_id = 'rtl'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(null_pipeline, None, "an unquoted empty field is NULL");

    // Act + Assert: export each format, import into empty databases, compare every row.
    for format in ["csv", "jsonl"] {
        let target = TestDb::migrated().await;
        for table in ["sites", "users"] {
            let file = files.path(&format!("{table}.out.{format}"));
            let out = run(&source.url, &[table, "export", "--out", file.to_str().unwrap()]);
            assert!(out.status.success(), "{}", stderr(&out));
            let out = import(&target, table, &file, &[]);
            assert!(out.status.success(), "{format} {table}: {}", stderr(&out));
            assert_eq!(dump(&source, table).await, dump(&target, table).await, "{format} {table}");
        }
    }
}

#[tokio::test]
async fn upsert_updates_existing_rows_and_insert_mode_refuses_them() {
    let db = TestDb::migrated().await;
    let files = Files::new();
    db.exec("INSERT INTO sites (site_id, domain, brand_name, created_at) VALUES ('acme', 'acme.example.com', 'Old', '2020-01-01Z')")
        .await;
    let file = files.write("s.csv", "site_id,domain,brand_name,created_at\nacme,acme.example.com,New,2026-01-01T00:00:00Z\nnew,new.example.com,N,\n");

    let refused = import(&db, "sites", &file, &["--mode", "insert"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("line 2, column site_id, value \"acme\": already exists in the database"),
        "{}",
        stderr(&refused)
    );

    let out = import(&db, "sites", &file, &[]);
    assert!(stdout(&out).contains("1 inserted, 1 updated"), "{}{}", stdout(&out), stderr(&out));
    let mut conn = db.conn().await;
    let (brand, created): (String, String) =
        sqlx::query_as("SELECT brand_name, created_at::date::text FROM sites WHERE site_id = 'acme'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((brand.as_str(), created.as_str()), ("New", "2020-01-01"), "created_at never changes");
}

#[tokio::test]
async fn bad_files_are_refused_whole_with_line_column_and_value() {
    // Arrange: a database with rows, to prove failed imports leave it exactly as it was.
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('keep', 'keep.example.com'); INSERT INTO users (user_id) VALUES ('keep')").await;
    let before = (dump(&db, "sites").await, dump(&db, "users").await);
    let files = Files::new();
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("missing-header.csv", "sites", "acme,acme.example.com\n", &["line 1", "must be a header"]),
        (
            "wrong-count.csv",
            "sites",
            "site_id,domain\nok,ok.example.com\nbad,bad.example.com,extra\n",
            &["line 3: has 3 fields, the header has 2"],
        ),
        ("bad-quoting.csv", "sites", "site_id,domain\n\"open,x.example.com\n", &["never closed"]),
        (
            "stray-quote.csv",
            "sites",
            "site_id,domain\nab\"c,x.example.com\n",
            &["line 2", "quote inside an unquoted field"],
        ),
        (
            "invalid-values.csv",
            "sites",
            "site_id,domain,language\ngood,good.example.com,en\n,empty.example.com,en\nx,exa mple.com,en\ny,y.example.com,english\n",
            &[
                "line 3, column site_id",
                "line 4, column domain, value \"exa mple.com\": domain must be a host name",
                "line 5, column language, value \"english\"",
                "3 problem(s)",
                "nothing was written",
            ],
        ),
        (
            "one-line.csv",
            "sites",
            "site_id,domain,brand_name,language\nt1,t1.example.com,Bad\tTab,en\nt2,t2.example.com,Fine,xx_yy\n",
            &[
                "line 2, column brand_name",
                "must be one line: character 4 is a tab",
                "line 3, column language",
                "2 problem(s)",
            ],
        ),
        (
            "dup-ids.csv",
            "sites",
            "site_id,domain\nd,d1.example.com\nd,d2.example.com\n",
            &["site_id", "appears on lines 2, 3"],
        ),
        (
            "dup-domains.csv",
            "sites",
            "site_id,domain\nd1,same.example.com\nd2,SAME.example.com\n",
            &["domain", "appears on lines 2, 3"],
        ),
        (
            "taken-domain.csv",
            "sites",
            "site_id,domain\nother,keep.example.com\n",
            &["line 2, column domain", "already belongs to site \"keep\""],
        ),
        (
            "nul.csv",
            "sites",
            "site_id,domain,ai_prompt\nn,n.example.com,a\u{0}b\n",
            &["line 2, column ai_prompt", "NUL"],
        ),
        (
            "bad-email.jsonl",
            "users",
            "{\"user_id\":\"u1\",\"email\":\"not-an-email\"}\n",
            &["line 1, column email, value \"not-an-email\""],
        ),
        (
            "bad-order.jsonl",
            "users",
            "{\"user_id\":\"u1\",\"first_seen\":\"2026-02-01T00:00:00Z\",\"last_seen\":\"2026-01-01T00:00:00Z\"}\n",
            &["line 1, column first_seen", "must not be later than last_seen"],
        ),
        (
            "unknown-key.jsonl",
            "users",
            "{\"user_id\":\"u1\",\"password\":\"x\"}\n",
            &["line 1, column password", "not a column"],
        ),
        ("not-json.jsonl", "users", "{\"user_id\":\"u1\"}\nuser_id=u2\n", &["line 2", "not a JSON object"]),
        (
            "bad-time.csv",
            "users",
            "user_id,first_seen\nu1,yesterday\n",
            &["line 2, column first_seen, value \"yesterday\"", "RFC 3339"],
        ),
        ("empty-id.jsonl", "users", "{\"user_id\":\"\"}\n", &["line 1, column user_id"]),
    ];
    for (name, table, contents, expected) in cases {
        // Act
        let out = import(&db, table, &files.write(name, contents), &[]);
        // Assert
        assert_eq!(out.status.code(), Some(2), "{name} must fail");
        for e in *expected {
            assert!(stderr(&out).contains(e), "{name}: expected {e:?} in:\n{}", stderr(&out));
        }
        assert_eq!(
            (dump(&db, "sites").await, dump(&db, "users").await),
            before,
            "{name} changed the database"
        );
    }
}

#[tokio::test]
async fn max_errors_stops_the_report_early() {
    let db = TestDb::migrated().await;
    let files = Files::new();
    let mut csv = String::from("site_id,domain\n");
    for i in 0..50 {
        csv.push_str(&format!("s{i},bad domain {i}\n"));
    }
    let out = import(&db, "sites", &files.write("many.csv", &csv), &["--max-errors", "5"]);
    assert!(
        stderr(&out).contains("50 problem(s) in the file (the first 5 shown; --max-errors shows more)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).matches("column domain").count(), 5, "{}", stderr(&out));
}
