//! What the change history costs: the same writes with the history triggers and with them
//! disabled (`ALTER TABLE … DISABLE TRIGGER USER`), measured in the same run.

use std::sync::{Arc, atomic::AtomicI64};

use cabinet_db::{
    models::SiteId,
    sites::{self, SitePatch},
    users,
};
use chrono::{TimeZone, Utc};

use crate::{
    Bench,
    activity::{self, USERS},
    measure::throughput,
    report::{Row, Stats, throughput_row},
};

/// Turns the history triggers of `table` on or off (the bench's superuser may).
pub async fn set_history(bench: &Bench, table: &str, on: bool) {
    let verb = if on { "ENABLE" } else { "DISABLE" };
    bench.exec("bench", &format!("ALTER TABLE {table} {verb} TRIGGER USER")).await;
}

pub async fn history_cost(bench: &Bench) -> Vec<Row> {
    bench
        .exec(
            "bench",
            &format!(
                "INSERT INTO users (user_id, email, first_seen, last_seen)
                 SELECT 'u' || i, 'user' || i || '@example.com', '2026-01-01Z', '2026-01-01Z' FROM generate_series(1, {USERS}) i
                 ON CONFLICT DO NOTHING;
                 UPDATE users SET first_seen = '2026-01-01Z', last_seen = '2026-01-01Z';
                 INSERT INTO sites (site_id, domain, ai_prompt)
                 SELECT 'h' || i, 'h' || i || '.example.com', 'Prompt ' || i FROM generate_series(1, 1000) i
                 ON CONFLICT DO NOTHING; ANALYZE users; ANALYZE sites"
            ),
        )
        .await;
    let pool = bench.pool(bench.args.concurrency).await;
    // Newer than every stored last_seen (reset above: the activity scenario leaves them at now),
    // and in the past: the database refuses sightings ahead of its clock.
    let clock =
        Arc::new(AtomicI64::new(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap().timestamp_micros()));
    let (mut seen_on, mut seen_off, mut update_on, mut update_off) = (vec![], vec![], vec![], vec![]);
    for _ in 0..bench.repeat() {
        seen_on.push(activity::record_seen_throughput(bench, &pool, &clock).await);
        update_on.push(site_updates(bench, &pool).await);
        set_history(bench, "users", false).await;
        set_history(bench, "sites", false).await;
        seen_off.push(activity::record_seen_throughput(bench, &pool, &clock).await);
        update_off.push(site_updates(bench, &pool).await);
        set_history(bench, "users", true).await;
        set_history(bench, "sites", true).await;
    }
    // WAL per repeat event inside the debounce window, triggers on and off.
    let mut wal = Vec::new();
    for on in [true, false] {
        set_history(bench, "users", on).await;
        let now = Utc::now();
        bench.exec("bench", &format!("UPDATE users SET last_seen = '{}'", now.to_rfc3339())).await;
        wal.push(activity::wal_per_event(bench, users::DEFAULT_DEBOUNCE, now).await);
    }
    set_history(bench, "users", true).await;
    let one = |v: f64| Stats { min: v, median: v, max: v };
    let mut rows = vec![
        throughput_row(
            &format!("record_seen, {}-event batches, history on", bench.args.batch),
            "events/s",
            Stats::of(seen_on),
            "same, history triggers disabled",
            Stats::of(seen_off),
            0.95,
        ),
        Row {
            work: "WAL bytes per repeat event, history on".into(),
            unit: "B/event".into(),
            ours: one(wal[0]),
            reference_name: "same, history triggers disabled".into(),
            reference: one(wal[1]),
            // Both are ~0 (a repeat event writes nothing; background work adds a fraction of a
            // byte): compared above a floor of 1 byte per event.
            ratio: wal[0].max(1.0) / wal[1].max(1.0),
            goal: "≤ 1.05× (1 B/event floor)".into(),
            met: wal[0].max(1.0) / wal[1].max(1.0) <= 1.05,
        },
        throughput_row(
            &format!("site update (sites::update), {} clients, history on", bench.args.concurrency),
            "updates/s",
            Stats::of(update_on),
            "same, history triggers disabled",
            Stats::of(update_off),
            0.0,
        ),
    ];
    rows[2].goal = "reported".into();
    rows[2].met = true;
    rows
}

/// Updates of random sites through the library, from every client: updates per second.
async fn site_updates(bench: &Bench, pool: &sqlx::PgPool) -> f64 {
    let p = pool.clone();
    throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
        let p = p.clone();
        async move {
            let n = 1 + (task as u64 * 7919 + i * 104_729) % 1000;
            let id = SiteId::parse(&format!("h{n}")).unwrap();
            let patch =
                SitePatch { brand_name: Some(Some(format!("Brand {task}-{i}"))), ..SitePatch::default() };
            let mut conn = p.acquire().await.unwrap();
            sites::update(&mut conn, None, &id, &patch, None).await.unwrap();
            1
        }
    })
    .await
}
