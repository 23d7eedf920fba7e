//! Activity recording: batched `record_seen` against one upsert per event.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use cabinet_db::{
    models::{Email, UserId},
    users,
};
use chrono::{TimeZone, Utc};
use sqlx::{Connection, PgPool};

use crate::{
    Bench,
    measure::throughput,
    report::{Row, Stats, throughput_row},
};

/// Users the activity scenarios record events for.
pub const USERS: u64 = 100_000;

pub async fn activity(bench: &Bench) -> Vec<Row> {
    bench
        .exec(
            "bench",
            &format!(
                "INSERT INTO users (user_id, email, first_seen, last_seen)
                 SELECT 'u' || i, 'user' || i || '@example.com', '2026-01-01Z', '2026-01-01Z' FROM generate_series(1, {USERS}) i
                 ON CONFLICT DO NOTHING; ANALYZE users"
            ),
        )
        .await;
    let pool = bench.pool(bench.args.concurrency).await;
    // Every event is newer than the last, so every event must be written (no debounce).
    let clock =
        Arc::new(AtomicI64::new(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap().timestamp_micros()));
    let batch = bench.args.batch;
    let (mut batched, mut single, mut previous) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench.repeat() {
        batched.push(record_seen_throughput(bench, &pool, &clock).await);
        previous.push(
            batches_throughput(
                bench.args.concurrency,
                bench.seconds(),
                batch,
                &pool,
                &clock,
                Path::Statement,
            )
            .await,
        );
        let (p, c) = (pool.clone(), clock.clone());
        single.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let (p, c) = (p.clone(), c.clone());
                async move {
                    let user = 1 + (task as u64 * 1_000_003 + i * 104_729) % USERS;
                    let at = Utc.timestamp_micros(c.fetch_add(1, Ordering::Relaxed)).unwrap();
                    sqlx::query(
                        "INSERT INTO users (user_id, email, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                         ON CONFLICT (user_id) DO UPDATE SET
                             first_seen = LEAST(users.first_seen, EXCLUDED.first_seen),
                             last_seen = GREATEST(users.last_seen, EXCLUDED.last_seen),
                             email = coalesce(EXCLUDED.email, users.email)",
                    )
                    .bind(format!("u{user}"))
                    .bind(format!("user{user}@example.com"))
                    .bind(at)
                    .execute(&p)
                    .await
                    .unwrap();
                    1
                }
            })
            .await,
        );
    }
    let (batched, single, previous) = (Stats::of(batched), Stats::of(single), Stats::of(previous));

    // WAL per event when users come back within the debounce window, with and without it.
    let now = Utc::now();
    bench.exec("bench", &format!("UPDATE users SET last_seen = '{}'", now.to_rfc3339())).await;
    let mut wal = Vec::new();
    for debounce in [users::DEFAULT_DEBOUNCE, Duration::ZERO] {
        wal.push(wal_per_event(bench, debounce, now).await);
    }
    let (debounced, undebounced) = (wal[0], wal[1]);
    let one = |v: f64| Stats { min: v, median: v, max: v };
    let mut rows = vec![
        throughput_row(
            &format!("record_seen, {batch}-event batches, {} clients", bench.args.concurrency),
            "events/s",
            batched,
            "one INSERT … ON CONFLICT per event",
            single,
            10.0,
        ),
        throughput_row(
            &format!("record_seen through cabinet_record_seen_many, {batch}-event batches"),
            "events/s",
            batched,
            "the statement cabinet-db sent itself before (merge in Rust, one upsert)",
            previous,
            0.9,
        ),
        Row {
            work: "WAL bytes per repeat event inside the 60 s window".into(),
            unit: "B/event".into(),
            ours: one(debounced),
            reference_name: "same events, no debounce".into(),
            reference: one(undebounced),
            ratio: debounced / undebounced,
            goal: "≤ 0.1×".into(),
            met: debounced / undebounced <= 0.1,
        },
    ];
    rows[0].goal = format!("≥ 10× and ≥ 60k/s ({:.0}/s)", batched.median);
    rows[0].met = rows[0].ratio >= 10.0 && batched.median >= 60_000.0;
    rows
}

/// `record_seen` in batches from every client, each event newer than the last (so every event
/// is written): events per second.
pub async fn record_seen_throughput(bench: &Bench, pool: &PgPool, clock: &Arc<AtomicI64>) -> f64 {
    record_seen_throughput_with(bench.args.concurrency, bench.seconds(), bench.args.batch, pool, clock).await
}

/// The same with the settings given (for a pool in another network namespace).
pub async fn record_seen_throughput_with(
    concurrency: usize,
    seconds: f64,
    batch: usize,
    pool: &PgPool,
    clock: &Arc<AtomicI64>,
) -> f64 {
    batches_throughput(concurrency, seconds, batch, pool, clock, Path::Function).await
}

/// How a batch reaches the database.
#[derive(Clone, Copy)]
enum Path {
    /// `users::record_seen`: the database's `cabinet_record_seen_many`.
    Function,
    /// The statement cabinet-db sent itself before the function existed.
    Statement,
}

async fn batches_throughput(
    concurrency: usize,
    seconds: f64,
    batch: usize,
    pool: &PgPool,
    clock: &Arc<AtomicI64>,
    path: Path,
) -> f64 {
    let (p, c) = (pool.clone(), clock.clone());
    throughput(concurrency, seconds, move |task, i| {
        let (p, c) = (p.clone(), c.clone());
        async move {
            let events: Vec<users::SeenEvent> = (0..batch as u64)
                .map(|k| {
                    let user = 1 + (task as u64 * 1_000_003 + i * 7919 + k * 104_729) % USERS;
                    users::SeenEvent {
                        user_id: UserId::parse(&format!("u{user}")).unwrap(),
                        email: Some(Email::parse(&format!("user{user}@example.com")).unwrap()),
                        at: Utc.timestamp_micros(c.fetch_add(1, Ordering::Relaxed)).unwrap(),
                    }
                })
                .collect();
            match path {
                Path::Function => {
                    users::record_seen(&p, &events, Duration::ZERO).await.unwrap();
                }
                Path::Statement => {
                    crate::previous_seen::record_seen_by_statement(&p, &events, Duration::ZERO).await;
                }
            }
            batch as u64
        }
    })
    .await
}

/// WAL bytes per event when every user comes back within a minute of `now` (users'
/// `last_seen` set to `now` first), recorded with `debounce`.
pub async fn wal_per_event(bench: &Bench, debounce: Duration, now: chrono::DateTime<Utc>) -> f64 {
    let events_per_run = if bench.args.quick { 2_000 } else { 100_000 };
    let batch = bench.args.batch;
    // No dead tuples to prune and a fresh checkpoint for every run alike: the WAL measured is
    // what the events themselves cause.
    bench.exec("bench", "VACUUM users").await;
    bench.exec("bench", "CHECKPOINT").await;
    let mut conn = sqlx::PgConnection::connect(bench.url("bench").expose()).await.unwrap();
    let start: String =
        sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text").fetch_one(&mut conn).await.unwrap();
    let mut sent = 0u64;
    let mut k = 0u64;
    while sent < events_per_run {
        let events: Vec<users::SeenEvent> = (0..batch as u64)
            .map(|j| {
                k += 1;
                let user = 1 + (k * 104_729 + j) % USERS;
                users::SeenEvent {
                    user_id: UserId::parse(&format!("u{user}")).unwrap(),
                    email: Some(Email::parse(&format!("user{user}@example.com")).unwrap()),
                    at: now + chrono::Duration::milliseconds((k % 30_000) as i64),
                }
            })
            .collect();
        users::record_seen(&mut conn, &events, debounce).await.unwrap();
        sent += batch as u64;
    }
    let bytes: f64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8")
            .bind(&start)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    bytes / sent as f64
}
