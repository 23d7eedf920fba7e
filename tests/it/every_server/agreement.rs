//! One definition of valid: for thousands of generated values, "cabinet-db accepts" equals
//! "the database's constraint accepts", judged by the constraint expressions as installed;
//! and every row the database can hold exports and imports back exactly.
//!
//! Values are drawn by proptest from alphabets heavy in the characters that used to slip
//! between the two (no-break and other Unicode spaces, zero-width and bidi characters, the
//! BOM, C0/C1 controls, the Kelvin sign), with a fixed seed so a failure reproduces.

use cabinet_db::models::{Domain, Email, LanguageTag, SiteId, UserId, timestamps, values::check_one_line};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRng, TestRunner},
};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::harness::{TestDb, run, stderr};

/// Ordinary characters, including ones that need quoting in CSV.
#[rustfmt::skip]
const ORDINARY: &[char] =
    &['a', 'Z', '0', '-', '.', '@', '_', ' ', 'ä', 'ß', 'ש', '🥨', '\u{212a}', '"', ',', '\'', '\\'];
/// Characters that matter to the rules: controls, Unicode spaces, invisible format characters.
#[rustfmt::skip]
const TRICKY: &[char] = &[
    '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{a0}', '\u{ad}', '\u{1680}', '\u{180e}',
    '\u{2007}', '\u{200b}', '\u{200d}', '\u{2028}', '\u{202e}', '\u{202f}', '\u{205f}', '\u{2066}',
    '\u{3000}', '\u{feff}', '\u{e0041}', '\u{110bd}', '\u{1343f}',
];

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    )
}

/// `count` values drawn from `strategy`.
pub(crate) fn draw<S: Strategy>(strategy: S, count: usize) -> Vec<S::Value> {
    let mut runner = runner();
    (0..count).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

/// Mostly ordinary characters, one in five tricky.
pub(crate) fn tricky_string(min: usize, max: usize) -> impl Strategy<Value = String> {
    let character = prop_oneof![4 => prop::sample::select(ORDINARY), 1 => prop::sample::select(TRICKY)];
    prop::collection::vec(character, min..max).prop_map(|chars| chars.into_iter().collect())
}

/// What the installed constraints named say about each value (a CHECK passes unless false).
pub(crate) async fn database_accepts(
    conn: &mut PgConnection,
    column: &str,
    constraints: &[&str],
    values: &[String],
) -> Vec<bool> {
    let mut exprs = Vec::new();
    for name in constraints {
        let expr: String =
            sqlx::query_scalar("SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint WHERE conname = $1")
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        exprs.push(format!("({expr}) IS NOT FALSE"));
    }
    let sql = format!(
        "SELECT {} FROM unnest($1::text[]) WITH ORDINALITY AS t({column}, n) ORDER BY n",
        exprs.join(" AND ")
    );
    sqlx::query_scalar(AssertSqlSafe(sql)).bind(values).fetch_all(&mut *conn).await.unwrap()
}

/// Values where the two disagree, shown with their code points.
fn disagreements(values: &[String], rust: impl Fn(&str) -> bool, database: &[bool]) -> Vec<String> {
    values
        .iter()
        .zip(database)
        .filter(|(v, db)| rust(v) != **db)
        .take(20)
        .map(|(v, db)| {
            format!(
                "{v:?} (database {}, cabinet-db {})",
                if *db { "accepts" } else { "refuses" },
                if *db { "refuses" } else { "accepts" }
            )
        })
        .collect()
}

#[tokio::test]
async fn identifiers_and_emails_are_accepted_by_cabinet_db_exactly_when_by_the_database() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;

    // Identifiers: short tricky strings, and some around the 200-character limit.
    let mut ids = draw(tricky_string(0, 8), 4000);
    ids.extend(draw(tricky_string(198, 203), 200));
    let accepted = database_accepts(&mut conn, "site_id", &["sites_site_id_format"], &ids).await;
    assert!(accepted.iter().filter(|a| **a).count() > 500, "the sample must hold valid ids too");
    let wrong = disagreements(&ids, |v| SiteId::parse(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "site_id: {wrong:#?}");
    let accepted = database_accepts(&mut conn, "user_id", &["users_user_id_format"], &ids).await;
    let wrong = disagreements(&ids, |v| UserId::parse(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "user_id: {wrong:#?}");

    // One-line fields (brand_name, ai_script_id, the HubSpot fields): any text but controls.
    for (column, constraint) in [
        ("brand_name", "sites_brand_name_one_line"),
        ("ai_script_id", "sites_ai_script_id_one_line"),
        ("hubspot_pipeline", "sites_hubspot_pipeline_one_line"),
        ("hubspot_stage", "sites_hubspot_stage_one_line"),
    ] {
        let accepted = database_accepts(&mut conn, column, &[constraint], &ids).await;
        assert!(accepted.iter().any(|a| !a) && accepted.iter().any(|a| *a), "{column}: both kinds drawn");
        let wrong = disagreements(&ids, |v| check_one_line("brand_name", v).is_ok(), &accepted);
        assert!(wrong.is_empty(), "{column}: {wrong:#?}");
    }

    // E-mail addresses: free-form strings, and address-shaped ones with tricky parts.
    let mut emails = draw(tricky_string(0, 10), 3000);
    let part = || {
        let character = prop_oneof![
            8 => prop::sample::select(&['a', 'b', 'Z', '0', 'ä', '-', '_', '+'][..]),
            1 => prop::sample::select(ORDINARY),
            1 => prop::sample::select(TRICKY)
        ];
        prop::collection::vec(character, 1..5).prop_map(|c| c.into_iter().collect::<String>())
    };
    emails.extend(draw(
        (part(), part(), part(), prop::sample::select(&[".", "..", "", "", "", ""][..]))
            .prop_map(|(l, a, b, dot)| format!("{l}@{a}.{b}{dot}")),
        3000,
    ));
    let accepted = database_accepts(&mut conn, "email", &["users_email_format"], &emails).await;
    assert!(accepted.iter().filter(|a| **a).count() > 300, "the sample must hold valid addresses too");
    let wrong = disagreements(&emails, |v| Email::parse(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "email: {wrong:#?}");
}

/// Domains as people type them: labels of letters, digits and look-alikes, odd endings.
pub(crate) fn drawn_domains() -> Vec<String> {
    let character = prop_oneof![
        6 => prop::sample::select(&['a', 'Z', '0', 'q'][..]),
        1 => prop::sample::select(&['-', '\u{212a}', 'ä', '_'][..])
    ];
    let label = prop::collection::vec(character, 0..5).prop_map(|c| c.into_iter().collect::<String>());
    draw(
        (prop::collection::vec(label, 1..4), prop::sample::select(&["", ".", " ", ".."][..]))
            .prop_map(|(labels, end)| format!("{}{end}", labels.join("."))),
        4000,
    )
}

/// What the import stores for each: trimmed, one trailing dot dropped, lower case.
pub(crate) fn normalised_domains(domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .map(|d| {
            let t = d.trim();
            t.strip_suffix('.').unwrap_or(t).to_ascii_lowercase()
        })
        .collect()
}

/// Language tags, well and badly formed.
pub(crate) fn drawn_languages() -> Vec<String> {
    draw(
        prop::collection::vec(prop::sample::select(&['a', 'z', 'E', '1', '-', '_', 'ä'][..]), 0..12)
            .prop_map(|c| c.into_iter().collect::<String>()),
        3000,
    )
}

#[tokio::test]
async fn domains_languages_and_times_follow_the_same_rules_in_both_places() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;

    // Domains are normalised first (trim, one trailing dot, lower case): the database judges
    // the normalised form, and cabinet-db must accept exactly those.
    let domains = drawn_domains();
    let normalised = normalised_domains(&domains);
    let accepted = database_accepts(
        &mut conn,
        "domain",
        &["sites_domain_hostname", "sites_domain_lowercase"],
        &normalised,
    )
    .await;
    assert!(accepted.iter().filter(|a| **a).count() > 300);
    let wrong = disagreements(&domains, |v| Domain::parse(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "domain: {wrong:#?}");
    for (raw, norm) in domains.iter().zip(&normalised) {
        if let Ok(domain) = Domain::parse(raw) {
            assert_eq!(domain.as_str(), norm, "what cabinet-db stores is the normalised form");
        }
    }

    let languages = drawn_languages();
    let accepted = database_accepts(&mut conn, "language", &["sites_language_tag"], &languages).await;
    let wrong = disagreements(&languages, |v| LanguageTag::parse(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "language: {wrong:#?}");

    // Times: the database casts the same text the import parses.
    let times: Vec<String> = draw(
        (0i32..10_001, 1u32..13, 1u32..29, 0u32..24, 0u32..1_000_000)
            .prop_map(|(y, mo, d, h, us)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:00:00.{us:06}Z")),
        2000,
    );
    let sql = "SELECT (t::timestamptz >= '0001-01-01 00:00:00+00' AND t::timestamptz < '10000-01-01 00:00:00+00') FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n";
    let accepted: Vec<bool> = sqlx::query_scalar(sql).bind(&times).fetch_all(&mut conn).await.unwrap();
    let wrong = disagreements(&times, |v| timestamps::parse_in_range(v).is_ok(), &accepted);
    assert!(wrong.is_empty(), "timestamps: {wrong:#?}");
}

#[tokio::test]
async fn every_row_the_database_holds_exports_and_imports_back_exactly() {
    // Arrange: rows drawn at random, kept when the database accepts them.
    let source = TestDb::migrated().await;
    let text = || proptest::option::of(tricky_string(0, 12));
    let sites = draw(
        (
            tricky_string(1, 10),
            text(),
            text(),
            text(),
            text(),
            -62_135_596_800i64..253_402_300_799,
            0u32..1_000_000,
        ),
        600,
    );
    let mut conn = source.conn().await;
    for (i, (id, script, prompt, brand, stage, seconds, micros)) in sites.into_iter().enumerate() {
        let inserted = sqlx::query(
            "INSERT INTO sites (site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pt-BR', $6, $7, to_timestamp($8) + make_interval(secs => $9::double precision / 1e6))",
        )
        .bind(&id)
        .bind(format!("s{i}.example.com"))
        .bind(script)
        .bind(prompt)
        .bind(brand)
        .bind(stage.as_ref().map(|_| "pipeline"))
        .bind(stage)
        .bind(seconds as f64)
        .bind(micros as f64)
        .execute(&mut conn)
        .await;
        // Rows the constraints refuse (bad ids, duplicate keys) are simply not there.
        let _ = inserted;
    }
    let users = draw(
        (
            tricky_string(1, 10),
            proptest::option::of(tricky_string(1, 6)),
            0i64..4_000_000_000,
            0i64..1_000_000,
        ),
        600,
    );
    for (id, local, first, span) in users {
        let _ = sqlx::query(
            "INSERT INTO users (user_id, email, first_seen, last_seen)
             VALUES ($1, $2, to_timestamp($3), to_timestamp($3) + make_interval(secs => $4))",
        )
        .bind(&id)
        .bind(local.map(|l| format!("{l}@example.com")))
        .bind(first as f64)
        .bind(span as f64)
        .execute(&mut conn)
        .await;
    }
    let counts: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM users)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(counts.0 > 100 && counts.1 > 100, "{counts:?} rows: the sample must be substantial");

    // Act + Assert: both formats, both tables, into empty databases and compared exactly.
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl"] {
        let target = TestDb::migrated().await;
        for table in ["sites", "users"] {
            let file = dir.path().join(format!("{table}.{format}"));
            let out = run(&source.url, &[table, "export", "--out", file.to_str().unwrap()]);
            assert!(out.status.success(), "{}", stderr(&out));
            let out = run(&target.url, &[table, "import", file.to_str().unwrap()]);
            assert!(out.status.success(), "{format} {table}: {}", stderr(&out));
            assert_eq!(dump(&source, table).await, dump(&target, table).await, "{format} {table}");
        }
    }
}

async fn dump(db: &TestDb, table: &str) -> Vec<String> {
    let mut conn = db.conn().await;
    let sql = format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1");
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap()
}
