//! High availability on a live Patroni cluster (the lab of tests/it/lab, in network
//! namespaces: root only): failover time after `kill -9` of the leader, n8n's longest read
//! gap, a planned switchover, and what zero-loss costs — commits waiting for the synchronous
//! standby against the same commits waiting only for the leader's own disk
//! (`synchronous_commit = local`, which is how a lone primary commits), in the same run.

use std::{
    sync::{Arc, atomic::AtomicI64},
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use sqlx::{Connection, postgres::PgPoolOptions};

use crate::{
    Bench,
    activity::{USERS, record_seen_throughput_with},
    lab::{
        cluster::{Live, Passwords},
        in_netns,
        load::{LEADER_PORT, options},
    },
    report::{Row, Stats, throughput_row},
};

/// Patroni's leader key lifetime (`Timing::default()`).
const TTL_SECS: f64 = 20.0;

pub async fn cluster(bench: &Bench) -> Vec<Row> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("   not run: the live cluster needs root for its network namespaces (CI runs as root)");
        return vec![];
    }
    let mut live = Live::start().await;
    let leader = live.leader_host().await;
    let passwords = live.prepare(leader).await;
    let superuser = live.superuser_url("cabinet");
    in_netns(&live.ns[leader], async move || {
        let mut conn = sqlx::PgConnection::connect(&superuser).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (user_id, email, first_seen, last_seen)
             SELECT 'u' || i, 'user' || i || '@example.com', '2026-01-01Z', '2026-01-01Z' FROM generate_series(1, {USERS}) i;
             INSERT INTO sites (site_id, domain) SELECT 'h' || i, 'h' || i || '.example.com' FROM generate_series(1, 1000) i;
             ANALYZE users; ANALYZE sites"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    });
    let mut rows = synchronous_replication_cost(bench, &live, &passwords);
    rows.extend(failovers(bench, &mut live, &passwords).await);
    rows
}

fn synchronous_replication_cost(bench: &Bench, live: &Live, passwords: &Passwords) -> Vec<Row> {
    let (concurrency, seconds, batch, repeat) =
        (bench.args.concurrency, bench.seconds(), bench.args.batch, bench.repeat());
    let updates = if bench.args.quick { 100 } else { 2_000 };
    let admin = passwords.admin.clone();
    // Writers' path: the client host, through HAProxy's leader port.
    let [seen_sync, seen_local, update_sync, update_local] = in_netns(&live.ns["client"], async move || {
        let pool = async |commit: &str| {
            let options =
                options(LEADER_PORT, "cabinet_admin", &admin).options([("synchronous_commit", commit)]);
            PgPoolOptions::new().max_connections(concurrency as u32).connect_with(options).await.unwrap()
        };
        let (sync, local) = (pool("on").await, pool("local").await);
        let clock =
            Arc::new(AtomicI64::new(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap().timestamp_micros()));
        let mut results: [Vec<f64>; 4] = Default::default();
        for _ in 0..repeat {
            results[0].push(record_seen_throughput_with(concurrency, seconds, batch, &sync, &clock).await);
            results[1].push(record_seen_throughput_with(concurrency, seconds, batch, &local, &clock).await);
            results[2].push(update_latency_ms(&sync, updates).await);
            results[3].push(update_latency_ms(&local, updates).await);
        }
        results
    });
    let mut seen = throughput_row(
        &format!(
            "record_seen through HAProxy, {batch}-event batches, {concurrency} clients, synchronous standby"
        ),
        "events/s",
        Stats::of(seen_sync),
        "same, synchronous_commit = local (a lone primary)",
        Stats::of(seen_local),
        0.0,
    );
    seen.goal = "reported (the cost of zero loss)".into();
    let (ours, reference) = (Stats::of(update_sync), Stats::of(update_local));
    let update = Row {
        work: "single-row site update through HAProxy, one client, synchronous standby (median latency)"
            .into(),
        unit: "ms".into(),
        ours,
        reference_name: "same, synchronous_commit = local (a lone primary)".into(),
        reference,
        ratio: ours.median / reference.median,
        goal: "reported (the cost of zero loss)".into(),
        met: true,
    };
    vec![seen, update]
}

/// The median of `n` single-row updates, one after the other, in milliseconds.
async fn update_latency_ms(pool: &sqlx::PgPool, n: usize) -> f64 {
    let mut conn = pool.acquire().await.unwrap();
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        sqlx::query("UPDATE sites SET brand_name = $1 WHERE site_id = $2")
            .bind(format!("Brand {i}"))
            .bind(format!("h{}", 1 + i % 1000))
            .execute(&mut *conn)
            .await
            .unwrap();
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Stats::of(took).median
}

/// Kills the leader `runs` times under load, each time bringing the killed node back, and hands
/// the leader role over by `cluster switchover` as many times.
async fn failovers(bench: &Bench, live: &mut Live, passwords: &Passwords) -> Vec<Row> {
    let runs = if bench.args.quick { 1 } else { 5 };
    let (mut failover, mut gaps, mut switchover) = (vec![], vec![], vec![]);
    let mut lost = 0;
    for run in 0..runs {
        let leader = live.leader_host().await;
        let prefix = format!("f{run}-");
        let writes = live.load(&prefix, passwords);
        writes.flows(50, Duration::from_secs(30), "before the kill").await;
        let (took, seen) = live.kill_under_load(leader, writes, Duration::from_secs(90)).await;
        lost += seen.acked.difference(&live.on_leader(passwords, &prefix).await).count();
        eprintln!("   failover {}: {took:?}, longest read gap {:?}", run + 1, seen.longest_read_gap);
        failover.push(took.as_secs_f64());
        gaps.push(seen.longest_read_gap.as_secs_f64());
        live.start_patroni(leader);
        live.wait_healthy("the killed node to rejoin", Duration::from_secs(120)).await;

        // Then hand the leader role back to it, as planned maintenance would.
        switchover.push(live.switchover_to(leader).await.as_secs_f64());
        live.wait_healthy("the old leader to follow", Duration::from_secs(60)).await;
    }
    let (failover, gaps, switchover) = (Stats::of(failover), Stats::of(gaps), Stats::of(switchover));
    let ttl = Stats { min: TTL_SECS, median: TTL_SECS, max: TTL_SECS };
    vec![
        Row {
            work: format!(
                "failover: kill -9 of the leader's PostgreSQL and Patroni → first acknowledged write through HAProxy ({runs} runs; {lost} acknowledged commits lost)"
            ),
            unit: "s".into(),
            ours: failover,
            reference_name: "Patroni's ttl".into(),
            reference: ttl,
            ratio: failover.max / TTL_SECS,
            goal: "max ≤ ttl + 3 s, nothing lost".into(),
            met: failover.max <= TTL_SECS + 3.0 && lost == 0,
        },
        Row {
            work: "longest gap between answered n8n reads (any-member port) during each failover".into(),
            unit: "s".into(),
            ours: gaps,
            reference_name: "the failover".into(),
            reference: failover,
            ratio: gaps.max / failover.median,
            goal: "max ≤ 1 s".into(),
            met: gaps.max <= 1.0,
        },
        Row {
            work: "planned switchover: `cluster switchover` → the new leader running".into(),
            unit: "s".into(),
            ours: switchover,
            reference_name: "Patroni's ttl".into(),
            reference: ttl,
            ratio: switchover.max / TTL_SECS,
            goal: "max ≤ 5 s".into(),
            met: switchover.max <= 5.0,
        },
    ]
}
