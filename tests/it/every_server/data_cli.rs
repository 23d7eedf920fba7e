//! `cabinet-db sites …` and `cabinet-db users …` as an operator uses them.

use crate::harness::{TestDb, binary, run, stderr, stdout};

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = run(&db.url, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    serde_json::from_str(&ok(db, &with_json)).unwrap()
}

#[tokio::test]
async fn an_operator_adds_changes_finds_and_removes_a_site() {
    let db = TestDb::migrated().await;
    let prompt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(prompt.path(), "Du bist hilfreich.\nZweite Zeile.").unwrap();

    // add
    let added = json(
        &db,
        &[
            "sites",
            "add",
            "acme",
            "--domain",
            "Shop.ACME.example.com",
            "--language",
            "de",
            "--brand-name",
            "ACME",
            "--ai-prompt-file",
            prompt.path().to_str().unwrap(),
            "--hubspot-pipeline",
            "p1",
            "--hubspot-stage",
            "s1",
        ],
    );
    assert_eq!(added["domain"], "shop.acme.example.com");
    assert_eq!(added["ai_prompt"], "Du bist hilfreich.\nZweite Zeile.");

    // get by id and by domain
    assert_eq!(json(&db, &["sites", "get", "acme"])["language"], "de");
    assert!(
        ok(&db, &["sites", "get", "--domain", "SHOP.acme.example.com"]).contains("site_id:          acme")
    );

    // set: change one field, clear another; the rest stays
    let changed =
        json(&db, &["sites", "set", "acme", "--brand-name", "ACME GmbH", "--clear", "hubspot_stage"]);
    assert_eq!(changed["brand_name"], "ACME GmbH");
    assert_eq!(changed["hubspot_stage"], serde_json::Value::Null);
    assert_eq!(changed["hubspot_pipeline"], "p1");
    assert_eq!(changed["created_at"], added["created_at"]);

    // list
    ok(&db, &["sites", "add", "beta", "--domain", "beta.example.com"]);
    let page = json(&db, &["sites", "list", "--limit", "1"]);
    assert_eq!(page["items"][0]["site_id"], "acme");
    assert_eq!(page["next"], "acme");
    let second = json(&db, &["sites", "list", "--after", "acme"]);
    assert_eq!(second["items"][0]["site_id"], "beta");
    assert_eq!(json(&db, &["sites", "list", "--language", "de"])["items"].as_array().unwrap().len(), 1);

    // rm: refuses without --yes when nobody can be asked, then deletes
    let refused = run(&db.url, &["sites", "rm", "beta"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("add --yes"), "{}", stderr(&refused));
    ok(&db, &["sites", "rm", "beta", "--yes"]);
    let gone = run(&db.url, &["sites", "get", "beta"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(stderr(&gone).contains("no site with site_id \"beta\""), "{}", stderr(&gone));
}

#[tokio::test]
async fn bad_site_input_gets_a_clear_error_and_writes_nothing() {
    let db = TestDb::migrated().await;
    ok(&db, &["sites", "add", "acme", "--domain", "acme.example.com"]);
    let cases: &[(&[&str], &str)] = &[
        (&["sites", "add", "x", "--domain", "https://x.example.com/"], "domain must be a host name"),
        (&["sites", "add", "x", "--domain", "x.example.com", "--language", "english"], "BCP 47"),
        (&["sites", "add", " x", "--domain", "x.example.com"], "site_id must be 1-200 characters"),
        (&["sites", "add", "acme", "--domain", "x.example.com"], "a site with this site_id already exists"),
        (&["sites", "add", "x", "--domain", "ACME.example.com"], "another site already uses this domain"),
        (
            &["sites", "add", "x", "--domain", "x.example.com", "--hubspot-stage", "s"],
            "a stage belongs to a pipeline",
        ),
        (&["sites", "set", "acme"], "nothing to change"),
        (&["sites", "set", "nope", "--brand-name", "b"], "no site with site_id \"nope\""),
    ];
    for (args, expected) in cases {
        let out = run(&db.url, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(json(&db, &["sites", "list"])["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_operator_records_finds_and_removes_users() {
    let db = TestDb::migrated().await;
    assert!(
        ok(&db, &["users", "seen", "u1", "--email", "ada@example.com", "--at", "2026-01-15T09:00:00Z"])
            .contains("new user u1")
    );
    assert!(ok(&db, &["users", "seen", "u1", "--at", "2026-01-15T09:00:30Z"]).contains("nothing to record"));
    let report = json(&db, &["users", "seen", "u1", "--at", "2026-01-15T09:05:00Z"]);
    assert_eq!(report["updated"], 1);

    let user = json(&db, &["users", "get", "u1"]);
    assert_eq!(user["first_seen"], "2026-01-15T09:00:00Z");
    assert_eq!(user["last_seen"], "2026-01-15T09:05:00Z");
    let found = json(&db, &["users", "list", "--email", "ADA@example.com"]);
    assert_eq!(found["items"][0]["user_id"], "u1");
    let window = json(&db, &["users", "list", "--seen-after", "2026-01-15T10:00:00Z"]);
    assert_eq!(window["items"].as_array().unwrap().len(), 0);

    // A leap second is the next minute, as the database itself reads the same text.
    ok(&db, &["users", "seen", "u-leap", "--at", "2016-12-31T23:59:60Z"]);
    let mut conn = db.conn().await;
    let same: bool = sqlx::query_scalar(
        "SELECT last_seen = '2016-12-31T23:59:60Z'::timestamptz AND last_seen = '2017-01-01T00:00:00Z' FROM users WHERE user_id = 'u-leap'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(same, "the leap second was read as PostgreSQL reads it");
    sqlx::Connection::close(conn).await.unwrap();

    let bad = run(&db.url, &["users", "seen", "u2", "--email", "not-an-email"]);
    assert!(stderr(&bad).contains("email must look like name@example.com"), "{}", stderr(&bad));
    ok(&db, &["users", "rm", "u1", "--yes"]);
    assert_eq!(run(&db.url, &["users", "get", "u1"]).status.code(), Some(2));
}

#[tokio::test]
async fn careless_commands_get_clear_refusals_and_change_nothing() {
    let db = TestDb::migrated().await;
    ok(&db, &["sites", "add", "acme", "--domain", "acme.example.com", "--brand-name", "ACME"]);
    let cases: &[(&[&str], &str)] = &[
        // Out of range is an error, not silently clamped.
        (&["sites", "list", "--limit", "0"], "0 is not in 1..=10000"),
        (&["users", "list", "--limit", "10001"], "10001 is not in 1..=10000"),
        // Setting and clearing the same field.
        (
            &["sites", "set", "acme", "--brand-name", "New", "--clear", "brand_name"],
            "brand_name is both set and cleared",
        ),
        (
            &["sites", "set", "acme", "--ai-prompt", "p", "--clear", "ai_prompt"],
            "ai_prompt is both set and cleared",
        ),
        // An international domain: the punycode to use instead.
        (
            &["sites", "add", "b", "--domain", "Bäckerei.example.de"],
            "ASCII (punycode) form: xn--bckerei-5wa.example.de",
        ),
        // A time no reader could show.
        (&["users", "list", "--seen-after", "0000-12-31T00:00:00Z"], "between the years 1 and 9999"),
    ];
    for (args, expected) in cases {
        let out = run(&db.url, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(json(&db, &["sites", "get", "acme"])["brand_name"], "ACME", "nothing changed");

    // Help for users says nothing of sites' columns.
    let help = stdout(&binary().args(["users", "import", "--help"]).output().unwrap());
    assert!(help.contains("--mode") && !help.contains("created_at"), "{help}");

    // The library refuses a page size out of range too.
    let mut conn = db.conn().await;
    let err = cabinet_db::sites::list(&mut conn, &Default::default(), None, 0).await.unwrap_err();
    assert!(err.to_string().contains("limit \"0\": must be between 1 and 10000"), "{err}");
}

#[tokio::test]
async fn errors_say_the_database_message_once_and_come_as_json_when_asked() {
    let db = TestDb::migrated().await;
    ok(&db, &["sites", "add", "acme", "--domain", "acme.example.com"]);

    let out = run(&db.url, &["sites", "add", "other", "--domain", "acme.example.com"]);
    let err = stderr(&out);
    assert_eq!(err.matches("duplicate key value violates unique constraint").count(), 1, "{err}");
    assert!(!err.contains(" at line "), "no server source line: {err}");
    assert!(err.contains("Key (domain)=(acme.example.com) already exists."), "{err}");

    let out = run(&db.url, &["--json", "sites", "add", "other", "--domain", "acme.example.com"]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["error"].as_str().unwrap().contains("another site already uses this domain"), "{report}");
    assert!(report["causes"][0].as_str().unwrap().contains("duplicate key value"), "{report}");

    // A usage error is JSON too when JSON was asked for.
    let out = run(&db.url, &["--json", "sites", "add", "other"]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["error"].as_str().unwrap().contains("--domain"), "{report}");
}

#[test]
fn without_a_database_url_the_message_names_the_variable() {
    let out = binary().args(["sites", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("set DATABASE_URL or pass --database-url"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_huge_prompt_is_not_echoed_back_and_logs_carry_no_colour_codes() {
    let db = TestDb::migrated().await;
    let prompt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(prompt.path(), "x".repeat(5_000_000)).unwrap();

    let out = run(
        &db.url,
        &[
            "-vv",
            "sites",
            "add",
            "big",
            "--domain",
            "big.example.com",
            "--ai-prompt-file",
            prompt.path().to_str().unwrap(),
        ],
    );

    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.len() < 2_000, "{} bytes echoed", out.stdout.len());
    assert!(
        stdout(&out).contains("ai_prompt (5000000 characters; the first 500, `sites get` shows all)"),
        "{}",
        stdout(&out)
    );
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "no ANSI colours when stderr is not a terminal: {:?}",
        stderr(&out)
    );
    assert!(run(&db.url, &["sites", "get", "big"]).stdout.len() > 5_000_000, "get shows it whole");
}
