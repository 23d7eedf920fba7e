//! The admin panel's two busiest pages — the sites list with a search, the users search — at
//! 10k sites and 1M users: request latency (p50, p99) under concurrent clients, next to the
//! library call each page wraps, measured the same way in the same run.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use cabinet_db::{
    migrations::{MigrationSet, RunnerOptions, runner},
    sites::{self, SiteFilter},
    users::{self, UserSearch},
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::{
    Bench,
    report::{Row, Stats, time_row},
};

/// `cabinet-db serve` as the benchmark's own process (release build), killed when dropped.
struct Panel(Child);

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn panel_pages(bench: &Bench) -> Vec<Row> {
    let (n_sites, n_users) = (bench.args.sites, bench.args.import_rows);
    bench.exec("postgres", "DROP DATABASE IF EXISTS panel").await;
    bench.exec("postgres", "CREATE DATABASE panel").await;
    let url = bench.url("panel");
    runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
    bench
        .exec(
            "panel",
            &format!(
                "INSERT INTO sites (site_id, domain, ai_prompt, brand_name, language)
                 SELECT 'site' || i, 'site' || i || '.example.com', repeat('You are helpful. ', 40), 'Brand ' || i,
                        (ARRAY['en', 'de', 'pt-BR'])[1 + i % 3]
                   FROM generate_series(1, {n_sites}) i;
                 INSERT INTO users (user_id, email, first_seen, last_seen)
                 SELECT 'zitadel-' || i, 'user' || i || '@example.com', now() - interval '30 days', now() - (i % 1000) * interval '1 minute'
                   FROM generate_series(1, {n_users}) i"
            ),
        )
        .await;
    // One statement each: VACUUM cannot run inside the implicit transaction of several.
    bench.exec("panel", "VACUUM ANALYZE sites").await;
    bench.exec("panel", "VACUUM ANALYZE users").await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _panel = Panel(
        Command::new(&bench.binary)
            .args(["serve", "--dev-identity", "bench@example.com=viewer", "--listen", &addr])
            .args(["--pool-size", &bench.args.concurrency.to_string()])
            .env("DATABASE_URL", url.expose())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cabinet-db serve"),
    );
    wait_until_serving(&addr).await;
    // As `serve` makes it.
    let liveness = cabinet_db::db::Liveness::CheckedBeforeUse;
    let pool = cabinet_db::db::pool(&url, "cabinet-db bench", bench.args.concurrency as u32, liveness)
        .await
        .unwrap();

    // Searches vary per request: a site number's start (about 1 % of the sites match), a user
    // e-mail's start (about 0.01 % of the users).
    let site_term = |k: u64| format!("site{}", 10 + k % 90);
    let user_term = |k: u64| format!("user{}", 1000 + k % 9000);
    let mut rows = Vec::new();
    type Measured = (Vec<f64>, Vec<f64>);
    let (mut sites_page, mut sites_lib, mut users_page, mut users_lib): (
        Measured,
        Measured,
        Measured,
        Measured,
    ) = Default::default();
    for _ in 0..bench.repeat() {
        let a = addr.clone();
        let (p50, p99) = latencies(bench, move |k| {
            let a = a.clone();
            async move { get(&a, &format!("/sites?q={}", site_term(k))).await }
        })
        .await;
        sites_page.0.push(p50);
        sites_page.1.push(p99);
        let p = pool.clone();
        let (p50, p99) = latencies(bench, move |k| {
            let p = p.clone();
            async move {
                let filter = SiteFilter { text_contains: Some(site_term(k)), ..SiteFilter::default() };
                sites::list(&p, &filter, None, 50).await.unwrap();
            }
        })
        .await;
        sites_lib.0.push(p50);
        sites_lib.1.push(p99);
        let a = addr.clone();
        let (p50, p99) = latencies(bench, move |k| {
            let a = a.clone();
            async move { get(&a, &format!("/users?q={}", user_term(k))).await }
        })
        .await;
        users_page.0.push(p50);
        users_page.1.push(p99);
        let p = pool.clone();
        let (p50, p99) = latencies(bench, move |k| {
            let p = p.clone();
            async move {
                let search = UserSearch { prefix: Some(user_term(k)), ..UserSearch::default() };
                users::search(&p, &search, None, 50).await.unwrap();
            }
        })
        .await;
        users_lib.0.push(p50);
        users_lib.1.push(p99);
    }
    let clients = bench.args.concurrency;
    for (page, library, what, call) in [
        (sites_page, sites_lib, format!("sites list page, search, {n_sites} sites"), "sites::list"),
        (users_page, users_lib, format!("users search page, {n_users} users"), "users::search"),
    ] {
        for (i, quantile) in ["p50", "p99"].into_iter().enumerate() {
            let pick = |m: &Measured| if i == 0 { m.0.clone() } else { m.1.clone() };
            let mut row = time_row(
                &format!("{what}, {quantile} latency, {clients} clients"),
                Stats::of(pick(&page)),
                call,
                Stats::of(pick(&library)),
                3.0,
            );
            row.unit = "ms".into();
            rows.push(row);
        }
    }
    pool.close().await;
    rows
}

/// p50 and p99 of `op`'s latency in milliseconds, from `--concurrency` clients for `--seconds`.
async fn latencies<F, Fut>(bench: &Bench, op: F) -> (f64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs_f64(bench.seconds());
    let tasks: Vec<_> = (0..bench.args.concurrency as u64)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    op(task * 7919 + i * 104_729).await;
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    i += 1;
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (at(0.50), at(0.99))
}

/// One GET on a fresh connection (as a browser's first request), read to the end; the status
/// must be 200.
async fn get(addr: &str, path: &str) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
}

async fn wait_until_serving(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "cabinet-db serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
