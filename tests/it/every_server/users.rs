//! Users and activity recording, on real PostgreSQL.

use std::time::Duration;

use cabinet_db::{
    models::{Email, UserId},
    users::{self, DEFAULT_DEBOUNCE, SeenEvent, UserFilter, UserSearch},
};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::TestDb;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn event(id: &str, email: Option<&str>, secs: i64) -> SeenEvent {
    SeenEvent {
        user_id: UserId::parse(id).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        at: at(secs),
    }
}

async fn row(conn: &mut PgConnection, id: &str) -> (Option<String>, DateTime<Utc>, DateTime<Utc>) {
    sqlx::query_as("SELECT email, first_seen, last_seen FROM users WHERE user_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// The row's version: changes whenever it is updated or locked.
async fn row_version(conn: &mut PgConnection, id: &str) -> (String, String) {
    sqlx::query_as("SELECT xmin::text, xmax::text FROM users WHERE user_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_sighting_inserts_and_later_ones_widen_the_window_monotonically() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;

    let report =
        users::record_seen(&mut conn, &[event("u1", Some("ada@example.com"), 1000)], DEFAULT_DEBOUNCE)
            .await
            .unwrap();
    assert_eq!((report.inserted, report.updated), (1, 0));
    assert_eq!(row(&mut conn, "u1").await, (Some("ada@example.com".into()), at(1000), at(1000)));

    // A newer event moves last_seen; a late, older event moves first_seen back but never last_seen.
    users::record_seen(&mut conn, &[event("u1", None, 5000)], DEFAULT_DEBOUNCE).await.unwrap();
    users::record_seen(&mut conn, &[event("u1", None, 10)], DEFAULT_DEBOUNCE).await.unwrap();
    assert_eq!(row(&mut conn, "u1").await, (Some("ada@example.com".into()), at(10), at(5000)));
}

#[tokio::test]
async fn a_newer_event_changes_the_email_and_an_older_one_does_not() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    users::record_seen(&mut conn, &[event("u1", Some("old@example.com"), 1000)], DEFAULT_DEBOUNCE)
        .await
        .unwrap();

    users::record_seen(&mut conn, &[event("u1", Some("late@example.com"), 500)], DEFAULT_DEBOUNCE)
        .await
        .unwrap();
    assert_eq!(
        row(&mut conn, "u1").await.0.as_deref(),
        Some("old@example.com"),
        "an older event keeps the e-mail"
    );

    // Within the debounce window, but the e-mail differs: it is written.
    users::record_seen(&mut conn, &[event("u1", Some("new@example.com"), 1010)], DEFAULT_DEBOUNCE)
        .await
        .unwrap();
    assert_eq!(row(&mut conn, "u1").await, (Some("new@example.com".into()), at(500), at(1010)));
}

#[tokio::test]
async fn duplicates_in_one_batch_are_merged_before_the_statement() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    users::record_seen(&mut conn, &[event("u1", Some("a@example.com"), 100)], DEFAULT_DEBOUNCE)
        .await
        .unwrap();
    let batch = [
        event("u1", Some("b@example.com"), 3000),
        event("u1", None, 5000),
        event("u1", Some("c@example.com"), 50),
        event("u2", None, 7),
        event("u2", Some("two@example.com"), 9),
    ];

    let report = users::record_seen(&mut conn, &batch, DEFAULT_DEBOUNCE).await.unwrap();

    assert_eq!((report.users, report.inserted, report.updated, report.unchanged), (2, 1, 1, 0));
    assert_eq!(row(&mut conn, "u1").await, (Some("b@example.com".into()), at(50), at(5000)));
    assert_eq!(row(&mut conn, "u2").await, (Some("two@example.com".into()), at(7), at(9)));
}

#[tokio::test]
async fn an_event_inside_the_debounce_window_writes_nothing() {
    // Arrange
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    users::record_seen(&mut conn, &[event("u1", Some("a@example.com"), 1000)], DEFAULT_DEBOUNCE)
        .await
        .unwrap();
    let before = row_version(&mut conn, "u1").await;

    // Act: 59 s later, same e-mail; and an event older than last_seen.
    let report = users::record_seen(
        &mut conn,
        &[event("u1", Some("a@example.com"), 1059), event("u1", None, 1000)],
        DEFAULT_DEBOUNCE,
    )
    .await
    .unwrap();

    // Assert: not updated, not even locked (xmin and xmax unchanged).
    assert_eq!(report.unchanged, 1);
    assert_eq!(row_version(&mut conn, "u1").await, before);
    assert_eq!(row(&mut conn, "u1").await.2, at(1000));

    // Outside the window it is written.
    users::record_seen(&mut conn, &[event("u1", None, 1061)], DEFAULT_DEBOUNCE).await.unwrap();
    assert_ne!(row_version(&mut conn, "u1").await, before);
    assert_eq!(row(&mut conn, "u1").await.2, at(1061));

    // A zero window records every newer event.
    let report = users::record_seen(&mut conn, &[event("u1", None, 1062)], Duration::ZERO).await.unwrap();
    assert_eq!(report.updated, 1);
}

#[tokio::test]
async fn list_filters_by_email_and_last_seen_and_deletes() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    let batch: Vec<SeenEvent> =
        (0..30).map(|i| event(&format!("u{i:02}"), Some(&format!("user{i}@example.com")), i * 100)).collect();
    users::record_seen(&mut conn, &batch, DEFAULT_DEBOUNCE).await.unwrap();

    let by_email = UserFilter { email: Some("USER7@example.com".into()), ..UserFilter::default() };
    let found = users::list(&mut conn, &by_email, None, 10).await.unwrap().items;
    assert_eq!(found.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), vec!["u07"]);

    let window =
        UserFilter { seen_after: Some(at(1000)), seen_before: Some(at(2000)), ..UserFilter::default() };
    let page = users::list(&mut conn, &window, None, 4).await.unwrap();
    assert_eq!(page.items.len(), 4);
    let rest = users::list(&mut conn, &window, page.next.as_deref(), 100).await.unwrap();
    assert_eq!(page.items.len() + rest.items.len(), 10, "u10..u19");
    assert_eq!(rest.next, None);

    let id = UserId::parse("u07").unwrap();
    assert!(users::delete(&mut conn, None, &id).await.unwrap());
    assert_eq!(users::get(&mut conn, &id).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_batches_over_the_same_users_do_not_deadlock() {
    // Arrange: 3000 users; eight writers update them all, half in reverse order.
    let db = TestDb::migrated().await;
    let ids: Vec<String> = (0..3000).map(|i| format!("u{i:04}")).collect();
    let mut conn = db.conn().await;
    let first: Vec<SeenEvent> = ids.iter().map(|id| event(id, None, 0)).collect();
    users::record_seen(&mut conn, &first, Duration::ZERO).await.unwrap();

    // Act
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, ids) = (db.url.clone(), ids.clone());
            tokio::spawn(async move {
                let mut conn = cabinet_db::db::connect(&url, "writer").await.unwrap();
                for round in 0..5 {
                    let mut batch: Vec<SeenEvent> =
                        ids.iter().map(|id| event(id, None, 1 + round * 10 + w)).collect();
                    if w % 2 == 1 {
                        batch.reverse();
                    }
                    users::record_seen(&mut conn, &batch, Duration::ZERO).await?;
                }
                Ok::<_, cabinet_db::data::DataError>(())
            })
        })
        .collect();

    // Assert: every writer finished without a deadlock error, and last_seen is the newest.
    for w in writers {
        w.await.unwrap().expect("no deadlock");
    }
    assert_eq!(row(&mut conn, "u0000").await.2, at(1 + 4 * 10 + 7));
}

#[tokio::test]
async fn search_finds_by_email_or_id_prefix_through_the_indexes_even_in_a_generic_plan() {
    let db = TestDb::migrated().await;
    db.exec(
        "INSERT INTO users (user_id, email, first_seen, last_seen)
         SELECT 'z' || lpad(n::text, 6, '0'), 'user' || n || '@example.com', '2026-01-01', '2026-01-01'::timestamptz + n * interval '1 minute'
           FROM generate_series(1, 30000) n;
         INSERT INTO users (user_id, email) VALUES ('ada-1', 'Ada.Lovelace@Example.com'), ('x%y', 'percent@example.com'),
           ('ada-2', NULL), ('bob', 'ada@example.org');
         ANALYZE users",
    )
    .await;
    let mut conn = db.conn().await;
    let ids = |page: cabinet_db::data::Page<cabinet_db::models::User>| {
        page.items.into_iter().map(|u| u.user_id).collect::<Vec<_>>()
    };
    let by = |prefix: &str| UserSearch { prefix: Some(prefix.to_owned()), ..UserSearch::default() };

    // E-mail prefixes in any case, id prefixes exactly; LIKE's wildcards are plain characters.
    assert_eq!(ids(users::search(&mut conn, &by("ADA"), None, 10).await.unwrap()), ["ada-1", "bob"]);
    assert_eq!(ids(users::search(&mut conn, &by("ada-"), None, 10).await.unwrap()), ["ada-1", "ada-2"]);
    assert_eq!(ids(users::search(&mut conn, &by("x%"), None, 10).await.unwrap()), ["x%y"]);
    assert!(ids(users::search(&mut conn, &by("%"), None, 10).await.unwrap()).is_empty());
    assert!(ids(users::search(&mut conn, &by("_da"), None, 10).await.unwrap()).is_empty());
    // Keyset pages and the last-seen range.
    let first = users::search(&mut conn, &by("user1"), None, 5).await.unwrap();
    assert_eq!(ids(first.clone()), ["z000001", "z000010", "z000011", "z000012", "z000013"]);
    let second = users::search(&mut conn, &by("user1"), first.next.as_deref(), 2).await.unwrap();
    assert_eq!(ids(second), ["z000014", "z000015"]);
    let window = UserSearch {
        seen_after: Some(at(60 * 100)),
        seen_before: Some(at(60 * 103)),
        ..UserSearch::default()
    };
    assert_eq!(
        ids(users::search(&mut conn, &window, None, 10).await.unwrap()),
        ["z000100", "z000101", "z000102"]
    );

    // The plan a prepared statement settles on (generic) still scans both indexes.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE s(text, text, timestamptz, timestamptz, bigint) AS {}",
        users::search_sql(true)
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE s('ada', NULL, NULL, NULL, 51)")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("users_email_prefix_idx") && plan.contains("users_user_id_prefix_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    conn.close().await.unwrap();
}

/// Whether `sql` is refused with the activity functions' SQLSTATE, and the message.
async fn refusal(conn: &mut PgConnection, sql: &str) -> Option<String> {
    match sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut *conn).await {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(cabinet_db::db::sqlstate(&e).as_deref(), Some("22023"), "{sql}: {e}");
            Some(e.as_database_error().unwrap().message().to_owned())
        }
    }
}

#[tokio::test]
async fn a_wrong_clock_cannot_freeze_a_user_through_the_cli_or_through_sql_as_the_app_role() {
    // Arrange
    let setup = crate::harness::WithRoles::new().await;
    let mut app = setup.conn(cabinet_db::roles::RoleKind::App).await;

    // Act: the CLI, with a clock in 2099.
    let cli =
        crate::harness::run(&setup.db.url, &["users", "seen", "u-frozen", "--at", "2099-01-01T00:00:00Z"]);

    // Assert: refused, naming the server's clock; nothing written.
    assert_eq!(cli.status.code(), Some(2), "{}", crate::harness::stderr(&cli));
    let said = crate::harness::stderr(&cli);
    assert!(said.contains("is in the future") && said.contains("database server's clock reads"), "{said}");

    // The main application's role, through SQL: a day ahead, infinity, the year 10000, a NULL
    // time, arrays of different lengths — each refused with a sentence.
    for (sql, expected) in [
        (
            "SELECT cabinet_record_seen('u-frozen', NULL, now() + interval '1 day')",
            "database server's clock reads",
        ),
        ("SELECT cabinet_record_seen('u-frozen', NULL, 'infinity')", "between the years 1 and 9999 AD"),
        (
            "SELECT cabinet_record_seen('u-frozen', NULL, '10000-01-01 00:00:00+00')",
            "between the years 1 and 9999",
        ),
        (
            "SELECT cabinet_record_seen('u-frozen', NULL, '0001-01-01 00:00:00+00'::timestamptz - interval '1 day')",
            "between the years 1 and 9999",
        ),
        ("SELECT cabinet_record_seen('u-frozen', NULL, NULL)", "has no time"),
        ("SELECT cabinet_record_seen(NULL, NULL, now())", "has no user id"),
        (
            "SELECT * FROM cabinet_record_seen_many(ARRAY['a', 'b'], NULL, ARRAY[now()])",
            "must be equally long",
        ),
        (
            "SELECT * FROM cabinet_record_seen_many(ARRAY['a'], ARRAY['a@x.example', NULL], ARRAY[now()])",
            "must be equally long",
        ),
        ("SELECT cabinet_record_seen('u-frozen', NULL, now(), interval '-1 second')", "must be zero or more"),
        (
            "SELECT * FROM cabinet_record_seen_many(ARRAY[['a', 'b'], ['c', 'd']], NULL, ARRAY[[now(), now()], [now(), now()]])",
            "one-dimensional",
        ),
        ("SELECT cabinet_record_seen('u-frozen', NULL, '0044-03-15 BC')", "not BC"),
        // One bad sighting refuses the whole batch, naming its position.
        (
            "SELECT * FROM cabinet_record_seen_many(ARRAY['ok', 'u-frozen'], NULL, ARRAY[now(), now() + interval '1 year'])",
            "sighting 2 (user 'u-frozen')",
        ),
    ] {
        let message = refusal(&mut app, sql).await.unwrap_or_else(|| panic!("{sql} was accepted"));
        assert!(message.contains(expected), "{sql}: {message}");
    }
    let written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut setup.db.conn().await).await.unwrap();
    assert_eq!(written, 0, "nothing was written");

    // A clock a minute ahead is within the tolerance, and the app role may record it.
    let did: String = sqlx::query_scalar(
        "SELECT cabinet_record_seen('u-ahead', 'a@example.com', now() + interval '1 minute')",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert_eq!(did, "inserted");
    // But it writes nothing else: not even last_seen directly.
    let direct = sqlx::query("UPDATE users SET last_seen = '2099-01-01' WHERE user_id = 'u-ahead'")
        .execute(&mut app)
        .await;
    assert_eq!(cabinet_db::db::sqlstate(&direct.unwrap_err()).as_deref(), Some("42501"));
}

#[tokio::test]
async fn every_writer_gets_the_same_rules_from_the_database_function() {
    // Arrange: psql-like SQL, no Rust in between.
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    let t = |secs: i64| format!("'{}'::timestamptz", at(secs).to_rfc3339());

    // Act: one batch; two sightings of u1 at one instant, then an older one with another e-mail.
    let (users, inserted): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT users, inserted FROM cabinet_record_seen_many(
             ARRAY['u1', 'u1', 'u1', 'u2'],
             ARRAY['first@example.com', 'second@example.com', 'older@example.com', NULL],
             ARRAY[{}, {}, {}, {}])",
        t(100),
        t(100),
        t(50),
        t(70)
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();

    // Assert: merged per user; of the two at one instant the later in array order wins.
    assert_eq!((users, inserted), (2, 2));
    assert_eq!(row(&mut conn, "u1").await, (Some("second@example.com".into()), at(50), at(100)));
    assert_eq!(row(&mut conn, "u2").await, (None, at(70), at(70)));

    // Within the debounce window with the same e-mail: no write, not even a lock.
    let before = row_version(&mut conn, "u1").await;
    let did: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT cabinet_record_seen('u1', 'second@example.com', {})",
        t(130)
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(did, "unchanged");
    assert_eq!(row_version(&mut conn, "u1").await, before);
    // Older news with another e-mail changes nothing; a newer sighting changes it, recorded.
    let older: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT cabinet_record_seen('u1', 'old@example.com', {})",
        t(60)
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(older, "unchanged");
    let newer: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT cabinet_record_seen('u1', 'new@example.com', {}, interval '1 hour')",
        t(200)
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(newer, "updated");
    let history: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT operation, new_email FROM users_history WHERE user_id = 'u1' ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        history,
        [
            ("INSERT".to_owned(), Some("second@example.com".to_owned())),
            ("UPDATE".to_owned(), Some("new@example.com".to_owned()))
        ]
    );
}
