//! Being paged, the way it is deployed: a database host (namespace, tailnet address
//! 100.101.102.103) with PostgreSQL backed up by pgBackRest and `cabinet-db serve`, whose
//! /metrics passes on the scrape the metrics unit stores each minute (here: each second, as the
//! test drives the timer); a monitoring host (namespace, 100.101.102.30, tagged
//! `tag:monitoring` with the policy's `metrics` grant) running the real Prometheus with the
//! packaged rules and the real Alertmanager with a webhook receiver. Faults are caused in
//! parallel — archiving broken, a drill that fails, an audit that fails (a grant to n8n) — then
//! fixed, then the database stopped and started; each alert must reach the receiver with its
//! runbook link within a bound, and resolve after the fix. The rules are the package's with
//! every `for:` at 0s (their durations are proven by `promtool test rules` in simulated time).

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use cabinet_db::backup::run::{self, Kind};

use crate::{
    backup::{Production, walkdir},
    fake_localapi::FakeLocalApi,
    harness::{binary, exec_at, stderr, stdout},
    lab::{Cleanup, add_namespaces, forward_into, in_netns, monitoring::Monitoring, tailnet_cable},
    panel::PanelProcess,
};

const DB_HOST_IP: &str = "100.101.102.103";
const MONITOR_IP: &str = "100.101.102.30";
/// A person's laptop on the same cable: may use the panel, may not read its metrics.
const LAPTOP_IP: &str = "100.101.102.40";
const CAP: &str = "ai-cabinet.internal/cap/cabinet-db";
const PANEL_PORT: u16 = 8432;
const RUNBOOKS: &str = "https://wiki.example.com/cabinet-db/alerts.md";
/// How long an alert may take from its fault to the receiver: the stored scrape is renewed
/// about every second, Prometheus scrapes and evaluates every second, Alertmanager waits a
/// second; the rest is slack for a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(60);

/// The package's rules with every `for:` at 0s, and a check that nothing else differs.
fn live_rules() -> String {
    let packaged = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/prometheus/alerts.yml"),
    )
    .unwrap();
    let live: String = packaged
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 0s\n", &line[..line.len() - line.trim_start().len()]),
            None => format!("{line}\n"),
        })
        .collect();
    let differing: Vec<(&str, &str)> = packaged.lines().zip(live.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(packaged.lines().count(), live.lines().count());
    assert!(
        differing.iter().all(|(a, b)| a.trim_start().starts_with("for: ") && b.trim_start() == "for: 0s"),
        "the live rules differ from the package's in more than for: {differing:?}"
    );
    assert!(differing.len() >= 10, "the rules have for: durations to shorten: {differing:?}");
    live
}

/// Runs `cabinet-db metrics --out` about every second until dropped: the metrics timer.
struct MetricsTimer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsTimer {
    fn start(url: String, backup_config: PathBuf, out: PathBuf) -> MetricsTimer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let ran = binary()
                    .env("DATABASE_URL", &url)
                    .args(["metrics", "--backup-config", backup_config.to_str().unwrap()])
                    .args(["--out", out.to_str().unwrap()])
                    .output()
                    .unwrap();
                assert!(ran.status.success(), "the metrics unit failed: {}", stderr(&ran));
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        MetricsTimer { stop, thread: Some(thread) }
    }
}

impl Drop for MetricsTimer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A GET of `path` on the panel from `source` (an address of namespace `ns`): (status, body).
fn get_from(ns: &str, source: &'static str, path: &'static str) -> (u16, String) {
    in_netns(ns, async move || {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source.parse().unwrap(), 0)).unwrap();
        let mut stream =
            socket.connect(SocketAddr::new(DB_HOST_IP.parse().unwrap(), PANEL_PORT)).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {DB_HOST_IP}:{PANEL_PORT}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    })
}

/// The ids of the checks the audit fails now.
fn failing_checks(production: &Production, secrets: &Path) -> BTreeSet<String> {
    let out = binary()
        .env("DATABASE_URL", production.url.expose())
        .args(["audit", "--json", "--record", "--backup-config", production.config.to_str().unwrap()])
        .args(["--secrets-dir", secrets.to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("audit --json: {}", stderr(&out)));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_page_through_the_real_prometheus_and_alertmanager_and_resolve_after_the_fix() {
    // Arrange: production with backups, a passed drill and a recorded audit; the roles.
    let rules = live_rules();
    let production = Production::start("monitoring").await;
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full, None).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let applied = binary()
        .env("DATABASE_URL", production.url.expose())
        .args(["roles", "apply", "--secrets-dir", secrets.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", stderr(&applied));
    let admin_password = std::fs::read_to_string(secrets.path().join("cabinet_admin.password")).unwrap();
    let pg_port = production.url.connect_options().unwrap().get_port();
    let admin_url = format!("postgres://cabinet_admin:{}@127.0.0.1:{pg_port}/cabinet", admin_password.trim());
    let drilled = production.backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(0), "{}{}", stdout(&drilled), stderr(&drilled));
    let baseline = failing_checks(&production, secrets.path());

    // The hosts: the database host and the monitoring host (with a laptop's address) on the tailnet.
    let [db_host, monitor] = add_namespaces("the monitoring test", ["mdb", "mmon"]);
    let _cleanup = Cleanup(vec![db_host.clone(), monitor.clone()]);
    tailnet_cable(
        &db_host,
        DB_HOST_IP,
        &monitor,
        &format!("mm{}", std::process::id()),
        &[MONITOR_IP, LAPTOP_IP],
    );
    forward_into(&db_host, pg_port);
    let scraper = format!(
        r#"{{"Node":{{"Name":"monitoring.tail1234.ts.net.","Tags":["tag:monitoring"]}},"UserProfile":{{"LoginName":"tagged-devices"}},"CapMap":{{"{CAP}":[{{"role":"metrics"}}]}}}}"#
    );
    let person = format!(
        r#"{{"Node":{{"Name":"laptop.tail1234.ts.net.","Tags":[]}},"UserProfile":{{"LoginName":"olga@example.com","DisplayName":"Olga"}},"CapMap":{{"{CAP}":[{{"role":"admin"}}]}}}}"#
    );
    let tailscaled = FakeLocalApi::with_whois(
        "status-running.json",
        HashMap::from([(MONITOR_IP.parse().unwrap(), scraper), (LAPTOP_IP.parse().unwrap(), person)]),
    );
    let stored = tempfile::tempdir().unwrap();
    let stored_scrape = stored.path().join("cabinet-db.prom");
    let timer = MetricsTimer::start(
        production.url.expose().to_owned(),
        production.config.clone(),
        stored_scrape.clone(),
    );
    let mut serve = Command::new("ip");
    serve
        .args(["netns", "exec", &db_host, env!("CARGO_BIN_EXE_cabinet-db"), "serve"])
        .args(["--socket", tailscaled.socket.to_str().unwrap()])
        .args(["--listen", &format!("{DB_HOST_IP}:{PANEL_PORT}")])
        .args(["--metrics-file", stored_scrape.to_str().unwrap()])
        .args(["--backup-config", production.config.to_str().unwrap()])
        .env("DATABASE_URL", &admin_url)
        .env("CABINET_CONFIG", crate::harness::NO_CONFIG);
    let panel_addr = SocketAddr::new(DB_HOST_IP.parse().unwrap(), PANEL_PORT);
    let _panel = PanelProcess::spawn(serve, panel_addr, Some(&monitor)).await;

    // Who may read /metrics: the tagged monitoring node with the metrics grant, and nobody
    // else — the person with the panel's admin role gets 403, and the monitoring node gets no page.
    let (status, body) = get_from(&monitor, MONITOR_IP, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("cabinet_panel_requests_total") && body.contains("# TYPE "), "{body}");
    let (status, body) = get_from(&monitor, LAPTOP_IP, "/metrics");
    assert_eq!(status, 403, "a person without the metrics grant: {body}");
    assert!(body.contains("\"role\": \"metrics\""), "the refusal says what grant is missing: {body}");
    let (status, _) = get_from(&monitor, MONITOR_IP, "/sites");
    assert_eq!(status, 403, "the metrics grant opens no page");

    let monitoring = Monitoring::start(
        &monitor,
        &[format!("{DB_HOST_IP}:{PANEL_PORT}")],
        &rules,
        &[("cabinet_runbook_base", RUNBOOKS)],
    );
    // The pipeline works: the watchdog arrives, with the runbook base the external label gives.
    let watchdog = monitoring
        .wait_for("from the watchdog", BOUND, |n| n.name() == "CabinetDbWatchdog" && n.status == "firing")
        .await;
    assert_eq!(watchdog.annotations["runbook_url"], format!("{RUNBOOKS}#cabinetdbwatchdog"));
    // Healthy: none of the alerts the faults will cause is firing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before: Vec<String> = monitoring.received().iter().map(|n| n.name().to_owned()).collect();
    for name in ["CabinetDbWalArchivingFailing", "CabinetDbDrillFailed", "CabinetDbDatabaseDown"] {
        assert!(!before.iter().any(|b| b == name), "{name} fires before its fault: {before:?}");
    }

    // Faults, all at once. n8n granted what it must not have: the audit fails a check it passed.
    let n8n_grant = "GRANT DELETE ON sites TO cabinet_n8n";
    exec_at(production.url.expose(), n8n_grant).await;
    let newly_failing: BTreeSet<String> =
        failing_checks(&production, secrets.path()).difference(&baseline).cloned().collect();
    assert!(!newly_failing.is_empty(), "the grant to n8n fails a check (baseline {baseline:?})");
    // A damaged repository: the drill fails.
    let repo = production.repo();
    let victim = walkdir(repo.join("backup/cabinet"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/bundle/") || p.to_string_lossy().contains("/pg_data/"))
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let original = std::fs::read(&victim).unwrap();
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 10].copy_from_slice(b"corrupted!");
    std::fs::write(&victim, bytes).unwrap();
    let drilled = production.backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(1), "{}", stdout(&drilled));
    // Archiving broken: every attempt fails.
    let ours = cabinet_db::backup::config::archive_command(&production.config);
    exec_at(production.url.expose(), "ALTER SYSTEM SET archive_command = '/bin/false'").await;
    exec_at(production.url.expose(), "SELECT pg_reload_conf()").await;
    exec_at(
        production.url.expose(),
        "INSERT INTO users (user_id) VALUES ('while-archiving-fails'); SELECT pg_switch_wal()",
    )
    .await;

    let fires = |name: &'static str| {
        move |n: &crate::lab::monitoring::Notified| n.name() == name && n.status == "firing"
    };
    let drill = monitoring.wait_for("that the drill failed", BOUND, fires("CabinetDbDrillFailed")).await;
    assert_eq!(drill.labels["severity"], "critical");
    assert_eq!(drill.annotations["runbook_url"], format!("{RUNBOOKS}#cabinetdbdrillfailed"));
    let audit = monitoring
        .wait_for("that the audit fails the n8n grant's check", BOUND, |n| {
            n.name() == "CabinetDbAuditFailing"
                && n.status == "firing"
                && newly_failing.contains(n.labels.get("check").map_or("", String::as_str))
        })
        .await;
    assert_eq!(audit.annotations["runbook_url"], format!("{RUNBOOKS}#cabinetdbauditfailing"));
    let archiving =
        monitoring.wait_for("that archiving fails", BOUND, fires("CabinetDbWalArchivingFailing")).await;
    assert_eq!(archiving.labels["severity"], "critical");
    assert_eq!(archiving.annotations["runbook_url"], format!("{RUNBOOKS}#cabinetdbwalarchivingfailing"));

    // The fixes, all at once: our archive command back, the damaged file repaired and a drill
    // that passes, the grant revoked and the audit run again.
    exec_at(
        production.url.expose(),
        &format!("ALTER SYSTEM SET archive_command = {}", cabinet_db::db::quote_literal(&ours)),
    )
    .await;
    exec_at(production.url.expose(), "SELECT pg_reload_conf()").await;
    exec_at(production.url.expose(), "SELECT pg_switch_wal()").await;
    std::fs::write(&victim, &original).unwrap();
    let drilled = production.backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(0), "{}{}", stdout(&drilled), stderr(&drilled));
    exec_at(production.url.expose(), "REVOKE DELETE ON sites FROM cabinet_n8n").await;
    let still_failing = failing_checks(&production, secrets.path());
    assert!(still_failing.is_disjoint(&newly_failing), "{still_failing:?}");
    let resolves = |name: &'static str| {
        move |n: &crate::lab::monitoring::Notified| n.name() == name && n.status == "resolved"
    };
    monitoring.wait_for("that the drill passes again", BOUND, resolves("CabinetDbDrillFailed")).await;
    monitoring
        .wait_for("that the audit passes the n8n grant's check again", BOUND, |n| {
            n.name() == "CabinetDbAuditFailing"
                && n.status == "resolved"
                && n.labels.get("check") == audit.labels.get("check")
        })
        .await;
    monitoring.wait_for("that archiving works again", BOUND, resolves("CabinetDbWalArchivingFailing")).await;

    // The database stopped: paged; started again: resolved.
    production.cluster.stop("fast").unwrap();
    let down = monitoring.wait_for("that the database is down", BOUND, fires("CabinetDbDatabaseDown")).await;
    assert_eq!(down.annotations["runbook_url"], format!("{RUNBOOKS}#cabinetdbdatabasedown"));
    production.cluster.start().unwrap();
    monitoring.wait_for("that the database is back", BOUND, resolves("CabinetDbDatabaseDown")).await;

    // No secret reached Prometheus: the scrape it reads holds none of the passwords.
    let (_, scrape) = get_from(&monitor, MONITOR_IP, "/metrics");
    for file in std::fs::read_dir(secrets.path()).unwrap().flatten() {
        let password = std::fs::read_to_string(file.path()).unwrap();
        assert!(!scrape.contains(password.trim()), "{} is in the scrape", file.path().display());
    }
    drop(timer);
}
