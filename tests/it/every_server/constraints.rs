//! Integrity is enforced by PostgreSQL, so n8n and the admin panel, which write SQL
//! directly, cannot store bad rows either.

use cabinet_db::db::violation_message;
use sqlx::Connection;

use crate::harness::{TestDb, run, stderr, stdout};

const GOOD_SITE: &str =
    "INSERT INTO sites (site_id, domain, language) VALUES ('acme', 'acme.example.com', 'en')";

/// Runs `sql` and returns the name of the constraint that rejected it.
async fn rejected_by(db: &TestDb, sql: &str) -> String {
    let mut conn = db.conn().await;
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect_err(&format!("{sql} should be rejected"));
    conn.close().await.unwrap();
    let constraint = err.as_database_error().and_then(|e| e.constraint()).map(str::to_owned);
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    constraint.or(code).unwrap_or_else(|| panic!("no constraint in {err}"))
}

#[tokio::test]
async fn direct_sql_with_bad_values_is_rejected_by_named_constraints() {
    let db = TestDb::migrated().await;
    db.exec(GOOD_SITE).await;
    let cases = [
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', 'Shop.Example.com')", "sites_domain_lowercase"),
        (
            "INSERT INTO sites (site_id, domain) VALUES ('s2', 'https://shop.example.com/')",
            "sites_domain_hostname",
        ),
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', 'localhost')", "sites_domain_hostname"),
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', 'exa mple.com')", "sites_domain_hostname"),
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', 'ACME.example.com')", "sites_domain_lowercase"),
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', 'acme.example.com')", "sites_domain_key"),
        (
            "INSERT INTO sites (site_id, domain, language) VALUES ('s2', 'b.example.com', 'english')",
            "sites_language_tag",
        ),
        (
            "INSERT INTO sites (site_id, domain, language) VALUES ('s2', 'b.example.com', 'EN')",
            "sites_language_tag",
        ),
        (
            "INSERT INTO sites (site_id, domain, language) VALUES ('s2', 'b.example.com', 'pt_BR')",
            "sites_language_tag",
        ),
        ("INSERT INTO sites (site_id, domain) VALUES ('', 'b.example.com')", "sites_site_id_format"),
        ("INSERT INTO sites (site_id, domain) VALUES ('  padded ', 'b.example.com')", "sites_site_id_format"),
        (
            "INSERT INTO sites (site_id, domain) VALUES (E'tab\\there', 'b.example.com')",
            "sites_site_id_format",
        ),
        ("INSERT INTO sites (site_id, domain) VALUES ('acme', 'b.example.com')", "sites_pkey"),
        ("INSERT INTO sites (site_id, domain) VALUES ('s2', NULL)", "23502"),
        (
            "INSERT INTO sites (site_id, domain, hubspot_stage) VALUES ('s2', 'b.example.com', 'won')",
            "sites_hubspot_stage_needs_pipeline",
        ),
        ("UPDATE sites SET domain = 'Upper.example.com' WHERE site_id = 'acme'", "sites_domain_lowercase"),
        ("INSERT INTO users (user_id) VALUES ('')", "users_user_id_format"),
        ("INSERT INTO users (user_id) VALUES (' 123')", "users_user_id_format"),
        ("INSERT INTO users (user_id, email) VALUES ('u1', 'not-an-email')", "users_email_format"),
        ("INSERT INTO users (user_id, email) VALUES ('u1', 'a b@example.com')", "users_email_format"),
        (
            "INSERT INTO users (user_id, first_seen, last_seen) VALUES ('u1', '2026-02-01Z', '2026-01-01Z')",
            "users_seen_order",
        ),
        (
            "INSERT INTO users (user_id, first_seen) VALUES ('u1', now() + interval '1 day')",
            "users_seen_order",
        ),
        // One-line fields: no line break, tab or other control character, whoever writes it.
        (
            "INSERT INTO sites (site_id, domain, brand_name) VALUES ('s2', 'b.example.com', E'Two\\nlines')",
            "sites_brand_name_one_line",
        ),
        (
            "INSERT INTO sites (site_id, domain, ai_script_id) VALUES ('s2', 'b.example.com', E'id\\r')",
            "sites_ai_script_id_one_line",
        ),
        (
            "INSERT INTO sites (site_id, domain, hubspot_pipeline) VALUES ('s2', 'b.example.com', E'p\\u2028')",
            "sites_hubspot_pipeline_one_line",
        ),
        (
            "UPDATE sites SET hubspot_pipeline = 'p', hubspot_stage = E'\\u001b[2J' WHERE site_id = 'acme'",
            "sites_hubspot_stage_one_line",
        ),
        // Values any SQL client could write and no reader could show.
        (
            "INSERT INTO sites (site_id, domain, created_at) VALUES ('s2', 'b.example.com', 'infinity')",
            "sites_created_at_range",
        ),
        (
            "INSERT INTO sites (site_id, domain, created_at) VALUES ('s2', 'b.example.com', '-infinity')",
            "sites_created_at_range",
        ),
        (
            "INSERT INTO sites (site_id, domain, created_at) VALUES ('s2', 'b.example.com', '294000-01-01Z')",
            "sites_created_at_range",
        ),
        (
            "INSERT INTO sites (site_id, domain, created_at) VALUES ('s2', 'b.example.com', '0001-01-01 BC')",
            "sites_created_at_range",
        ),
        (
            "INSERT INTO users (user_id, first_seen, last_seen) VALUES ('u1', '-infinity', now())",
            "users_first_seen_range",
        ),
        ("INSERT INTO users (user_id, last_seen) VALUES ('u1', 'infinity')", "users_last_seen_range"),
        // Invisible and locale-dependent characters: one rule, whatever the database's locale.
        (
            "INSERT INTO sites (site_id, domain) VALUES (E'\\u00a0nbsp', 'b.example.com')",
            "sites_site_id_format",
        ),
        (
            "INSERT INTO sites (site_id, domain) VALUES (E'\\u200bzero', 'b.example.com')",
            "sites_site_id_format",
        ),
        (
            "INSERT INTO sites (site_id, domain) VALUES (E'a\\u202eb', 'b.example.com')",
            "sites_site_id_format",
        ),
        ("INSERT INTO users (user_id) VALUES (E'\\ufeffu1')", "users_user_id_format"),
        ("INSERT INTO users (user_id, email) VALUES ('u1', 'a@b.c.')", "users_email_format"),
        ("INSERT INTO users (user_id, email) VALUES ('u1', E'a\\u00a0b@example.com')", "users_email_format"),
    ];
    for (sql, expected) in cases {
        assert_eq!(rejected_by(&db, sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn good_rows_are_accepted_with_defaults_filled_in() {
    let db = TestDb::migrated().await;
    db.exec(GOOD_SITE).await;
    db.exec(
        "INSERT INTO sites (site_id, domain, language) VALUES ('lisboa', 'xn--lisboa-9ua.example.pt', 'pt-BR'), ('zh', 'shop.example.cn', 'zh-Hant-TW');
         INSERT INTO sites (site_id, domain) VALUES ('Kunde 42 / Bäckerei', 'baeckerei.example.de');
         INSERT INTO users (user_id, email) VALUES ('291840123456789012', 'ada@example.com'), ('u2', NULL);",
    )
    .await;
    let mut conn = db.conn().await;
    let (language, created_recently): (String, bool) = sqlx::query_as(
        "SELECT language, created_at > now() - interval '1 minute' FROM sites WHERE site_id = 'Kunde 42 / Bäckerei'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(language, "en");
    assert!(created_recently);
    let equal: bool = sqlx::query_scalar("SELECT first_seen = last_seen FROM users WHERE user_id = 'u2'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(equal, "first_seen and last_seen default to the same now()");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_violation_maps_to_the_models_sentence() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    let err =
        sqlx::query("INSERT INTO sites (site_id, domain, language) VALUES ('x', 'x.example.com', 'english')")
            .execute(&mut conn)
            .await
            .unwrap_err();
    let message = violation_message(&err).expect("one of our constraints");
    assert_eq!(
        message,
        "language must be a BCP 47 tag such as en, de or pt-BR (constraint sites_language_tag)"
    );
}

#[tokio::test]
async fn an_upgrade_makes_one_line_fields_one_line_in_the_history_and_then_refuses_line_breaks() {
    // Arrange: a database at 0008 with rows psql or an import wrote before the rule.
    let db = TestDb::empty().await;
    let out = run(&db.url, &["migrate", "up", "--to", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    db.exec(
        "INSERT INTO sites (site_id, domain, brand_name, ai_script_id, hubspot_pipeline, hubspot_stage, ai_prompt)
         VALUES ('s1', 's1.example.com', E'Two\\nlines', E'\\tid ', E'p\\u2028q', E'st\\r\\nage', E'keep\\nme\\r'),
                ('s2', 's2.example.com', 'Fine', NULL, NULL, NULL, NULL)",
    )
    .await;

    // Act: the upgrade neither stops nor loses anything.
    let out = run(&db.url, &["migrate", "up", "--actor", "ops@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Assert: the values are one line, the prompt untouched, the old values in the history.
    let mut conn = db.conn().await;
    let row: (String, String, String, String, String) = sqlx::query_as(
        "SELECT brand_name, ai_script_id, hubspot_pipeline, hubspot_stage, ai_prompt FROM sites WHERE site_id = 's1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row, ("Two lines".into(), "id".into(), "p q".into(), "st age".into(), "keep\nme\r".into()));
    let (actor, fields, old_brand): (String, Vec<String>, String) = sqlx::query_as(
        "SELECT actor, changed_fields, old_row->>'brand_name' FROM sites_history WHERE site_id = 's1' ORDER BY version DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(actor.contains("0009_one_line_fields") && actor.contains("ops@example.com"), "{actor}");
    assert_eq!(fields, ["ai_script_id", "brand_name", "hubspot_pipeline", "hubspot_stage"]);
    assert_eq!(old_brand, "Two\nlines");
    let s2_versions: i64 = sqlx::query_scalar("SELECT count(*) FROM sites_history WHERE site_id = 's2'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(s2_versions, 1, "a row that was fine is not rewritten");
    conn.close().await.unwrap();
    let check = run(&db.url, &["migrate", "check"]);
    assert!(check.status.success(), "validated, no drift: {}", stdout(&check));

    // The CLI refuses a line break before the database, with the field and the way out.
    let out = run(&db.url, &["sites", "set", "s2", "--brand-name", "a\nb"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("brand_name") && stderr(&out).contains("must be one line"),
        "{}",
        stderr(&out)
    );
}
