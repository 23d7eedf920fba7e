//! The admin panel's two busiest pages — the sites list with a search, the users search — at
//! 10k sites and 1M users: request latency (p50, p99) under concurrent clients, next to the
//! library call each page wraps, measured the same way in the same run; and the same pages the
//! way operators reach them (the lab: a laptop namespace asking the database host's tailnet
//! address by its MagicDNS name, signed in by whois), next to the loopback figures.

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
pub struct Panel(pub Child);

/// The lab's database host: its tailnet address, the panel's port there, and the name a
/// browser on the laptop asks for (tailscaled's MagicDNS name in the fixture).
const LAB_ADDR: &str = "100.101.102.103:8432";
const LAB_HOST: &str = "cabinet-db.tail1234.ts.net:8432";
const LAPTOP_IP: &str = "100.101.102.20";

/// Searches vary per request: a site number's start (about 1 % of the sites match), a user
/// e-mail's start (about 0.01 % of the users).
fn site_term(k: u64) -> String {
    format!("site{}", 10 + k % 90)
}

fn user_term(k: u64) -> String {
    format!("user{}", 1000 + k % 9000)
}

/// The panel on the lab's database host, signed in by whois, for clients on the laptop.
struct LabPanel {
    laptop: String,
    _panel: Panel,
    _tailscaled: crate::fake_localapi::FakeLocalApi,
    _cleanup: crate::lab::Cleanup,
}

impl LabPanel {
    /// `None` (said on stderr) without root: namespaces need it, and CI runs as root.
    async fn start(bench: &Bench) -> Option<LabPanel> {
        use crate::lab::{Cleanup, add_namespaces, in_netns, tailnet_cable};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("   the lab path needs root (network namespaces): not measured in this run");
            return None;
        }
        let [db_host, laptop] = add_namespaces("the panel benchmark", ["bdb", "blap"]);
        let cleanup = Cleanup(vec![db_host.clone(), laptop.clone()]);
        let link = format!("bl{}", std::process::id());
        tailnet_cable(&db_host, "100.101.102.103", &laptop, &link, &[LAPTOP_IP]);
        let viewer = r#"{"Node":{"Name":"laptop.tail1234.ts.net.","Tags":[]},"UserProfile":{"ID":7,"LoginName":"bench@example.com","DisplayName":"Bench"},"CapMap":{"ai-cabinet.internal/cap/cabinet-db":[{"role":"viewer"}]}}"#;
        let tailscaled = crate::fake_localapi::FakeLocalApi::with_whois(
            "status-running.json",
            std::collections::HashMap::from([(LAPTOP_IP.parse().unwrap(), viewer.to_owned())]),
        );
        let log = tempfile::NamedTempFile::new().unwrap();
        // PostgreSQL on the same host, as deployed: its unix socket (no forwarder between).
        // The socket admits the cluster's owner by peer (the OS user) only: a role with the
        // benchmark's password signs in by SCRAM, as the panel's own role would.
        bench
            .exec(
                "postgres",
                &format!(
                    "DROP ROLE IF EXISTS panel_lab; CREATE ROLE panel_lab LOGIN SUPERUSER PASSWORD '{}'",
                    bench.password
                ),
            )
            .await;
        let local = format!(
            "postgres://panel_lab:{}@localhost:{}/panel?host={}",
            bench.password,
            bench.cluster.port,
            bench.cluster.socket_dir().display()
        );
        let panel = Panel(
            Command::new("ip")
                .args(["netns", "exec", &db_host])
                .arg(&bench.binary)
                .args(["serve", "--socket", tailscaled.socket.to_str().unwrap(), "--listen", LAB_ADDR])
                .args(["--pool-size", &bench.args.concurrency.to_string()])
                .env("DATABASE_URL", local)
                .env("CABINET_CONFIG", "/dev/null")
                .stdout(Stdio::null())
                .stderr(log.reopen().unwrap())
                .spawn()
                .expect("cabinet-db serve on the lab's database host"),
        );
        let serving = in_netns(&laptop, async || wait_until(LAB_ADDR).await);
        assert!(
            serving,
            "cabinet-db serve on the lab's database host did not start: {}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        Some(LabPanel { laptop, _panel: panel, _tailscaled: tailscaled, _cleanup: cleanup })
    }

    /// p50 and p99 of GET `path(k)` from the laptop, by the panel's name.
    fn latencies(&self, bench: &Bench, path: fn(u64) -> String) -> (f64, f64) {
        let (clients, seconds) = (bench.args.concurrency, bench.seconds());
        crate::lab::in_netns(&self.laptop, async move || {
            latencies_of(clients, seconds, move |k| async move { get_as(LAB_ADDR, LAB_HOST, &path(k)).await })
                .await
        })
    }
}

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

    let lab = LabPanel::start(bench).await;

    let sites_path: fn(u64) -> String = |k| format!("/sites?q={}", site_term(k));
    let users_path: fn(u64) -> String = |k| format!("/users?q={}", user_term(k));
    let mut rows = Vec::new();
    type Measured = (Vec<f64>, Vec<f64>);
    let (mut sites_page, mut sites_lib, mut users_page, mut users_lib): (
        Measured,
        Measured,
        Measured,
        Measured,
    ) = Default::default();
    let (mut sites_lab, mut users_lab): (Measured, Measured) = Default::default();
    for _ in 0..bench.repeat() {
        if let Some(lab) = &lab {
            let (p50, p99) = lab.latencies(bench, sites_path);
            sites_lab.0.push(p50);
            sites_lab.1.push(p99);
            let (p50, p99) = lab.latencies(bench, users_path);
            users_lab.0.push(p50);
            users_lab.1.push(p99);
        }
        let a = addr.clone();
        let (p50, p99) = latencies(bench, move |k| {
            let a = a.clone();
            async move { get(&a, &sites_path(k)).await }
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
            async move { get(&a, &users_path(k)).await }
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
    let (sites_page_kept, users_page_kept) = (sites_page.clone(), users_page.clone());
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
    // The lab path next to loopback: what the tailnet hop, a MagicDNS name and whois add.
    if lab.is_some() {
        for (lab_page, loopback, what) in [
            (sites_lab, sites_page_kept, format!("sites list page via the tailnet (laptop → {LAB_ADDR})")),
            (users_lab, users_page_kept, format!("users search page via the tailnet (laptop → {LAB_ADDR})")),
        ] {
            for (i, quantile) in ["p50", "p99"].into_iter().enumerate() {
                let pick = |m: &Measured| if i == 0 { m.0.clone() } else { m.1.clone() };
                let mut row = time_row(
                    &format!("{what}, {quantile} latency, {clients} clients"),
                    Stats::of(pick(&lab_page)),
                    "the page on loopback",
                    Stats::of(pick(&loopback)),
                    2.0,
                );
                row.unit = "ms".into();
                rows.push(row);
            }
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
    latencies_of(bench.args.concurrency, bench.seconds(), op).await
}

/// [`latencies`] with its settings given (so it can run on a thread of a lab namespace).
async fn latencies_of<F, Fut>(clients: usize, seconds: f64, op: F) -> (f64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients as u64)
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
pub async fn get(addr: &str, path: &str) {
    get_as(addr, addr, path).await
}

/// [`get`] with its own `Host` (the panel's MagicDNS name).
async fn get_as(addr: &str, host: &str, path: &str) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
}

pub async fn wait_until_serving(addr: &str) {
    assert!(wait_until(addr).await, "cabinet-db serve did not start");
}

/// Whether `addr` accepts connections within 20 s.
async fn wait_until(addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
