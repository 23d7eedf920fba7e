//! Debian's Chromium, headless, driven through ChromeDriver (WebDriver) by fantoccini: on this
//! host's loopback, or in a lab namespace (a laptop on the tailnet) reaching the panel by its
//! MagicDNS name. Fails, never skips, when the browser is missing (`scripts/setup tests`
//! installs `chromium`, `chromium-driver` and `certutil`).
//!
//! Screenshots land in `$CABINET_SCREENSHOTS_DIR` when set (docs/admin-panel.md shows them).

use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::PanelProcess;

/// Where and how the browser runs.
#[derive(Default)]
pub struct Options<'a> {
    pub width: u32,
    pub height: u32,
    /// The lab namespace Chromium and ChromeDriver run in (`None`: this host).
    pub netns: Option<&'a str>,
    /// Chromium's `--host-resolver-rules` (`MAP name address, …`): names without DNS.
    pub resolver_rules: Option<String>,
    /// A CA certificate (PEM) put into the profile's certificate store (NSS, as an operator's
    /// browser trusts a CA), never a flag that ignores certificate errors.
    pub trusted_ca: Option<&'a Path>,
}

/// A headless Chromium behind its own ChromeDriver; both are killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _home: tempfile::TempDir,
    /// Where relative paths go: the panel's scheme and host.
    pub base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // ChromeDriver and the Chromium it started share a process group of their own.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.driver.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.driver.wait();
    }
}

fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is missing: scripts/setup tests installs Debian's chromium, chromium-driver and libnss3-tools"
        );
    }
}

/// A fresh NSS certificate store in `home` (where Chromium on Linux reads it) that trusts `ca`
/// for websites.
fn trust_ca(home: &Path, ca: &Path) {
    require_tools(&["certutil"]);
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let store = format!("sql:{}", db.display());
    crate::lab::sh(&["certutil", "-N", "-d", &store, "--empty-password"]);
    crate::lab::sh(&[
        "certutil",
        "-A",
        "-d",
        &store,
        "-n",
        "cabinet-db lab CA",
        "-t",
        "C,,",
        "-i",
        ca.to_str().unwrap(),
    ]);
}

impl Browser {
    /// A browser on this host's loopback, for `panel`.
    pub async fn start(width: u32, height: u32) -> Browser {
        Browser::with(Options { width, height, ..Options::default() }).await
    }

    pub async fn with(options: Options<'_>) -> Browser {
        require_tools(&["chromedriver", "chromium"]);
        let home = tempfile::tempdir().unwrap();
        if let Some(ca) = options.trusted_ca {
            trust_ca(home.path(), ca);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = match options.netns {
            None => Command::new("chromedriver"),
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, "chromedriver"]);
                command
            }
        };
        let driver = command
            .arg(format!("--port={port}"))
            // Chromium reads its certificate store from $HOME/.pki/nssdb.
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        // ChromeDriver listens on the namespace's loopback: reach it through a forwarder.
        let driver_port = match options.netns {
            None => port,
            Some(ns) => crate::lab::reach_into(ns, port),
        };
        let mut args = vec![
            // As root (CI) Chromium needs --no-sandbox; the rest keeps it off the network
            // (this machine's is closed) and quiet.
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", home.path().join("profile").display()),
            format!("--window-size={},{}", options.width, options.height),
        ];
        if let Some(rules) = &options.resolver_rules {
            args.push(format!("--host-resolver-rules={rules}"));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": args,
                // A window cannot be narrower than 500 px: a phone's viewport is emulated.
                "mobileEmulation": {"deviceMetrics": {"width": options.width, "height": options.height, "pixelRatio": 1}},
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{driver_port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        Browser { client, driver, _home: home, base: String::new() }
    }

    /// Opens `path` on `panel` (its loopback address).
    pub async fn goto(&self, panel: &PanelProcess, path: &str) {
        self.client.goto(&format!("http://{}{path}", panel.addr)).await.unwrap();
    }

    /// Opens `path` under `self.base` (e.g. `http://cabinet-db.tail1234.ts.net:8432`).
    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// The text of the first element matching `css`, waiting for it to appear. A page that
    /// htmx is still settling can replace an element between finding and reading it: then
    /// it is looked up again.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = async { self.client.find(Locator::Css(css)).await?.text().await };
            match attempt.await {
                Ok(text) => return text,
                Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = async { self.client.find(Locator::Css(css)).await?.click().await };
            match attempt.await {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Sets a field's value as a paste would (ChromeDriver types only the Basic Multilingual
    /// Plane: no emoji), with the `input` event the page listens to.
    pub async fn paste(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        let element = serde_json::to_value(&field).unwrap();
        self.client
            .execute(
                "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                vec![element, json!(value)],
            )
            .await
            .unwrap();
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The value a field holds now (what the browser would submit).
    pub async fn value(&self, css: &str) -> String {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the browser is at `expected` (a path with its query) after a form was sent.
    pub async fn arrive(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != expected {
            let body = self.js("return document.body ? document.body.innerText : ''").await;
            assert!(
                Instant::now() < deadline,
                "still at {} instead of {expected}: {}",
                self.path().await,
                body.as_str().unwrap_or("").chars().take(600).collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("CABINET_SCREENSHOTS_DIR") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }
}
