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
