//! A monitoring host: the real Prometheus (Debian's `prometheus`) scraping targets over the
//! lab's cables with a set of rules, the real Alertmanager (`prometheus-alertmanager`) routing
//! each alert on its own at once, and a webhook receiver that keeps every notification. Started
//! by the test itself in its namespace, on that namespace's loopback (a package's own daemons
//! may or may not run on the machine; these never meet them).

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::in_netns;

const PROMETHEUS_PORT: u16 = 9090;
const ALERTMANAGER_PORT: u16 = 9093;
const RECEIVER_PORT: u16 = 9095;

/// One alert as a webhook notification carried it.
#[derive(Debug, Clone)]
pub struct Notified {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Notified {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Prometheus, Alertmanager and the receiver, stopped when dropped.
pub struct Monitoring {
    prometheus: Child,
    alertmanager: Child,
    dir: tempfile::TempDir,
    received: Arc<Mutex<Vec<Notified>>>,
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        for child in [&mut self.prometheus, &mut self.alertmanager] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Monitoring {
    /// Starts the stack in namespace `ns`: Prometheus scrapes `targets` (`HOST:PORT`, path
    /// /metrics) every second and evaluates `rules` (the text of a rule file) every second, with
    /// the external labels given; Alertmanager notifies the receiver of each alert at once and
    /// of its resolution.
    pub fn start(ns: &str, targets: &[String], rules: &str, external_labels: &[(&str, &str)]) -> Monitoring {
        let dir = tempfile::tempdir().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        receive(ns, received.clone());

        let alertmanager_config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &alertmanager_config,
            format!(
                "route:
  receiver: webhook
  # Every alert a group of its own, sent at once; resolutions as soon as they are known.
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:{RECEIVER_PORT}/alerts
        send_resolved: true
"
            ),
        )
        .unwrap();
        let checked =
            Command::new("amtool").args(["check-config"]).arg(&alertmanager_config).output().unwrap();
        assert!(
            checked.status.success(),
            "amtool check-config: {}",
            String::from_utf8_lossy(&checked.stdout)
        );
        let alertmanager = spawn_logged(
            ns,
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", alertmanager_config.display()),
                format!("--storage.path={}", dir.path().join("alertmanager-data").display()),
                format!("--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}"),
                // No cluster: one instance, no gossip port.
                "--cluster.listen-address=".to_owned(),
            ],
            &dir.path().join("alertmanager.log"),
        );

        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        let labels: String = external_labels.iter().map(|(k, v)| format!("    {k}: {v:?}\n")).collect();
        let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
{labels}rule_files:
  - rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{ALERTMANAGER_PORT}']
scrape_configs:
  - job_name: cabinet-db
    static_configs:
      - targets: [{}]
",
                targets.join(", ")
            ),
        )
        .unwrap();
        let checked = Command::new("promtool")
            .args(["check", "config"])
            .arg(dir.path().join("prometheus.yml"))
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "promtool check config: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        let prometheus = spawn_logged(
            ns,
            "prometheus",
            &[
                format!("--config.file={}", dir.path().join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.path().join("prometheus-data").display()),
                format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
                // Resolved alerts reach Alertmanager within a second, not a minute.
                "--rules.alert.resend-delay=1s".to_owned(),
            ],
            &dir.path().join("prometheus.log"),
        );
        Monitoring { prometheus, alertmanager, dir, received }
    }

    /// Every notification so far.
    pub fn received(&self) -> Vec<Notified> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to `within` for a notification that `wanted` accepts; panics naming what
    /// arrived, with both daemons' logs, when none does.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&Notified) -> bool,
    ) -> Notified {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = self.received().into_iter().find(|n| wanted(n)) {
                return found;
            }
            if Instant::now() > deadline {
                let got: Vec<String> = self
                    .received()
                    .iter()
                    .map(|n| format!("{} {} {:?}", n.status, n.name(), n.labels))
                    .collect();
                panic!(
                    "no notification {what} within {within:?}; received:\n{}\n{}",
                    got.join("\n"),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Both daemons' logs (the tail of each).
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "--- prometheus.log\n{}\n--- alertmanager.log\n{}",
            tail("prometheus.log"),
            tail("alertmanager.log")
        )
    }
}

/// `program args` in namespace `ns`, its output into `log`.
fn spawn_logged(ns: &str, program: &str, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (scripts/setup tests installs it): {e}"))
}

/// The webhook receiver: a listener on `ns`'s loopback, each POSTed notification's alerts kept.
fn receive(ns: &str, received: Arc<Mutex<Vec<Notified>>>) {
    let listener =
        in_netns(ns, async move || std::net::TcpListener::bind(("127.0.0.1", RECEIVER_PORT)).unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let received = received.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(notification) = serde_json::from_slice::<serde_json::Value>(&body)
                {
                    let map = |v: &serde_json::Value| -> BTreeMap<String, String> {
                        v.as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    };
                    let alerts = notification["alerts"].as_array().cloned().unwrap_or_default();
                    received.lock().unwrap().extend(alerts.iter().map(|alert| Notified {
                        status: alert["status"].as_str().unwrap_or_default().to_owned(),
                        labels: map(&alert["labels"]),
                        annotations: map(&alert["annotations"]),
                    }));
                }
                let _ =
                    (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            });
        }
    });
}
