//! `cabinet-db sites …` and `cabinet-db users …` as an operator uses them.

use crate::harness::{TestDb, run, stderr, stdout};

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

    let bad = run(&db.url, &["users", "seen", "u2", "--email", "not-an-email"]);
    assert!(stderr(&bad).contains("email must look like name@example.com"), "{}", stderr(&bad));
    ok(&db, &["users", "rm", "u1", "--yes"]);
    assert_eq!(run(&db.url, &["users", "get", "u1"]).status.code(), Some(2));
}
