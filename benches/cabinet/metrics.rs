//! A Prometheus scrape of the admin panel's `/metrics` (the host's stored scrape passed on with
//! the panel's counters) against collecting one cold (`cabinet-db metrics --out`, as the
//! metrics unit runs it each minute: a process, the database's queries, the records), on the
//! same database in the same run.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use crate::{
    Bench,
    measure::timed,
    panel::{Panel, get, wait_until_serving},
    report::{Row, Stats, time_row},
};

pub async fn scrape(bench: &Bench) -> Vec<Row> {
    let url = bench.url("bench");
    let stored = bench.work.path().join("cabinet-db.prom");
    let times = if bench.args.quick { 3 } else { 30 };
    let mut cold = Vec::new();
    for _ in 0..times {
        let mut collect = Command::new(&bench.binary);
        collect
            .args(["metrics", "--backup-config", "/nonexistent/pgbackrest.conf", "--out"])
            .arg(&stored)
            .env("DATABASE_URL", url.expose())
            .env("CABINET_CONFIG", "/dev/null");
        cold.push(timed(&mut collect).0 * 1000.0);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _panel = Panel(
        Command::new(&bench.binary)
            .args(["serve", "--dev-identity", "bench@example.com=viewer", "--listen", &addr])
            .arg("--metrics-file")
            .arg(&stored)
            .env("DATABASE_URL", url.expose())
            .env("CABINET_CONFIG", "/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cabinet-db serve"),
    );
    wait_until_serving(&addr).await;
    get(&addr, "/metrics").await;
    let mut cached = Vec::new();
    for _ in 0..times * 10 {
        let started = Instant::now();
        get(&addr, "/metrics").await;
        cached.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // Milliseconds: a cached scrape takes a fraction of one.
    let mut row = time_row(
        "a scrape of serve's /metrics (the stored scrape and the panel's counters)",
        Stats::of(cached),
        "collecting one cold: cabinet-db metrics --out (the metrics unit's run)",
        Stats::of(cold),
        0.1,
    );
    row.unit = "ms".into();
    vec![row]
}
