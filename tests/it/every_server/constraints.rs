//! Integrity is enforced by PostgreSQL, so n8n and the admin panel, which write SQL
//! directly, cannot store bad rows either.

use cabinet_db::db::violation_message;
use sqlx::Connection;

use crate::harness::TestDb;

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
