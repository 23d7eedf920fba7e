//! The panel the way operators open it: PostgreSQL's port and `cabinet-db serve` on a
//! "database host" (namespace, tailnet address 100.101.102.103 on `tailscale0`), Chromium and
//! ChromeDriver on a "laptop" (namespace, 100.101.102.20, which the fake tailscaled's whois
//! names as an admin), the panel opened as `cabinet-db.tail1234.ts.net` (Chromium's resolver
//! rules stand in for MagicDNS) over plain HTTP — not a secure context: no `Sec-Fetch-Site` —
//! and over HTTPS with a certificate from a CA in the browser's certificate store. A third
//! origin on the laptop serves pages that post forged forms to the panel.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::SocketAddr,
    process::Command,
    time::{Duration, Instant},
};

use cabinet_db::roles::RoleKind;
use serde_json::json;

use super::{
    PanelProcess,
    browser::stored,
    chromium::{Browser, Options},
};
use crate::{
    fake_localapi::FakeLocalApi,
    harness::{TestDb, WithRoles},
    lab::{Cleanup, add_namespaces, forward_into, in_netns, sh, tailnet_cable},
};

const DB_HOST_IP: &str = "100.101.102.103";
const LAPTOP_IP: &str = "100.101.102.20";
/// The third origin: another web server the operator's browser visits.
const EVIL_IP: &str = "198.51.100.66";
const EVIL_PORT: u16 = 8080;
/// The node's MagicDNS name in tailscaled's status (tests/fixtures/localapi/status-running.json).
const NAME: &str = "cabinet-db.tail1234.ts.net";
const CAP: &str = "ai-cabinet.internal/cap/cabinet-db";
const HTTP_PORT: u16 = 8432;
const HTTPS_PORT: u16 = 8443;

/// The two hosts, tailscaled, and the panel served both ways.
struct Lab {
    _cleanup: Cleanup,
    laptop: String,
    _tailscaled: FakeLocalApi,
    plain: PanelProcess,
    tls: PanelProcess,
    /// The test CA Chromium trusts.
    _certificates: tempfile::TempDir,
    ca: std::path::PathBuf,
}

impl Lab {
    async fn start(url: &cabinet_db::db::DatabaseUrl) -> Lab {
        let pg_port = url.connect_options().unwrap().get_port();
        let [db_host, laptop] = add_namespaces("the deployed panel test", ["pdb", "plap"]);
        let cleanup = Cleanup(vec![db_host.clone(), laptop.clone()]);
        let laptop_link = format!("pl{}", std::process::id());
        tailnet_cable(&db_host, DB_HOST_IP, &laptop, &laptop_link, &[LAPTOP_IP]);
        sh(&["ip", "-n", &laptop, "addr", "add", &format!("{EVIL_IP}/32"), "dev", "lo"]);
        // The database host reaches PostgreSQL on its own 127.0.0.1, as the panel's unit does.
        forward_into(&db_host, pg_port);
        let admin = format!(
            r#"{{"Node":{{"Name":"laptop.tail1234.ts.net.","Tags":[]}},"UserProfile":{{"ID":7,"LoginName":"olga@example.com","DisplayName":"Olga"}},"CapMap":{{"{CAP}":[{{"role":"admin"}}]}}}}"#
        );
        let tailscaled = FakeLocalApi::with_whois(
            "status-running.json",
            HashMap::from([(LAPTOP_IP.parse().unwrap(), admin)]),
        );

        let certificates = tempfile::tempdir().unwrap();
        let issued = cabinet_db::backup::tls::issue(certificates.path(), NAME, 30).unwrap();
        let serve = |port: u16, tls: bool| {
            let mut command = Command::new("ip");
            command
                .args(["netns", "exec", &db_host, env!("CARGO_BIN_EXE_cabinet-db"), "serve"])
                .args(["--socket", tailscaled.socket.to_str().unwrap()])
                .args(["--listen", &format!("{DB_HOST_IP}:{port}")])
                .env("DATABASE_URL", url.expose())
                .env("CABINET_CONFIG", crate::harness::NO_CONFIG);
            if tls {
                command.args([
                    "--tls-cert",
                    issued.cert.to_str().unwrap(),
                    "--tls-key",
                    issued.key.to_str().unwrap(),
                ]);
            }
            command
        };
        let addr = |port: u16| SocketAddr::new(DB_HOST_IP.parse().unwrap(), port);
        let plain = PanelProcess::spawn(serve(HTTP_PORT, false), addr(HTTP_PORT), Some(&laptop)).await;
        let probe_ns = laptop.clone();
        let tls = PanelProcess::spawn_until(serve(HTTPS_PORT, true), addr(HTTPS_PORT), move || {
            in_netns(&probe_ns, async move || tokio::net::TcpStream::connect(addr(HTTPS_PORT)).await.is_ok())
        })
        .await;
        Lab {
            _cleanup: cleanup,
            laptop,
            _tailscaled: tailscaled,
            plain,
            tls,
            ca: issued.ca,
            _certificates: certificates,
        }
    }

    /// Chromium on the laptop, knowing the panel's name and the third origin's.
    async fn browser(&self, base: &str) -> Browser {
        let mut browser = Browser::with(Options {
            width: 1280,
            height: 900,
            netns: Some(&self.laptop),
            resolver_rules: Some(format!("MAP {NAME} {DB_HOST_IP}, MAP evil.example.com {EVIL_IP}")),
            trusted_ca: Some(&self.ca),
        })
        .await;
        browser.base = base.to_owned();
        browser
    }
}

/// A web server on the laptop's third address answering each path with its page: what another
/// site the operator visits could serve. Runs until the test ends.
fn serve_forgeries(laptop: &str, pages: HashMap<String, (Option<&'static str>, String)>) {
    let listener = in_netns(laptop, async move || std::net::TcpListener::bind((EVIL_IP, EVIL_PORT)).unwrap());
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let n = client.read(&mut request).unwrap_or(0);
            let line = String::from_utf8_lossy(&request[..n]).lines().next().unwrap_or("").to_owned();
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, policy, body) = match pages.get(path) {
                Some((policy, body)) => ("200 OK", *policy, body.clone()),
                None => ("404 Not Found", None, String::new()),
            };
            let policy = policy.map(|p| format!("Referrer-Policy: {p}\r\n")).unwrap_or_default();
            let _ = write!(
                client,
                "HTTP/1.1 {status}\r\nContent-Type: text/html\r\n{policy}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// A page that posts `fields` to `action` as soon as it loads.
fn forged_form(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{value}">"#))
        .collect();
    format!(
        r#"<!doctype html><title>Cute cats</title><form method="post" action="{action}">{inputs}</form><script>document.forms[0].submit()</script>"#
    )
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    stored(db, sql).await["n"].as_i64().unwrap()
}

/// Every write the panel offers, through its pages, as an admin: create, save, revert, delete,
/// restore, forget a user, import.
async fn every_write(browser: &Browser, db: &TestDb, tag: &str) {
    let id = format!("lab-{tag}");
    let base = format!("/sites/{id}");

    browser.open("/sites/new").await;
    browser.fill("#site_id", &id).await;
    browser.fill("#domain", &format!("{id}.example.com")).await;
    browser.fill("#language", "en").await;
    browser.fill("#brand_name", "Lab").await;
    browser.paste("#ai_prompt", "Hello,\nworld").await;
    browser.click("button[type=submit]").await;
    browser.arrive(&format!("{base}?notice=created")).await;
    let row = stored(db, &format!("SELECT brand_name, ai_prompt FROM sites WHERE site_id = '{id}'")).await;
    assert_eq!(row, json!({"brand_name": "Lab", "ai_prompt": "Hello,\nworld"}), "{tag}: created");

    browser.fill("#brand_name", "Lab, renamed").await;
    browser.click("button[type=submit]").await;
    browser.arrive(&format!("{base}?notice=saved")).await;
    let row = stored(db, &format!("SELECT brand_name, ai_prompt FROM sites WHERE site_id = '{id}'")).await;
    assert_eq!(row, json!({"brand_name": "Lab, renamed", "ai_prompt": "Hello,\nworld"}), "{tag}: saved");

    browser.open(&format!("{base}/history/1")).await;
    browser.click(&format!("form[action='{base}/revert'] button")).await;
    browser.arrive(&format!("{base}/revert")).await;
    browser.click(&format!("form[action='{base}/revert'] button")).await;
    browser.arrive(&format!("{base}?notice=reverted&to=1")).await;
    assert_eq!(
        stored(db, &format!("SELECT brand_name FROM sites WHERE site_id = '{id}'")).await["brand_name"],
        "Lab"
    );

    browser.open(&format!("{base}/delete")).await;
    browser.fill("#confirm", &id).await;
    browser.click("button.danger").await;
    browser.arrive(&format!("/sites?notice=deleted&id={id}")).await;
    assert_eq!(
        count(db, &format!("SELECT count(*) AS n FROM sites WHERE site_id = '{id}'")).await,
        0,
        "{tag}: deleted"
    );

    browser.open(&base).await;
    browser.click(&format!("form[action='{base}/restore'] button")).await;
    browser.arrive(&format!("{base}/restore")).await;
    browser.click(&format!("form[action='{base}/restore'] button")).await;
    browser.arrive(&format!("{base}?notice=restored")).await;
    assert_eq!(
        count(db, &format!("SELECT count(*) AS n FROM sites WHERE site_id = '{id}'")).await,
        1,
        "{tag}: restored"
    );

    let user = format!("user-{tag}");
    db.exec(&format!("INSERT INTO users (user_id, email) VALUES ('{user}', '{user}@example.com')")).await;
    browser.open(&format!("/users/{user}/forget")).await;
    browser.fill("#confirm", &user).await;
    browser.click("button.danger").await;
    browser.arrive(&format!("/users?notice=forgotten&id={user}")).await;
    assert_eq!(
        count(db, &format!("SELECT count(*) AS n FROM users WHERE user_id = '{user}'")).await,
        0,
        "{tag}: forgotten"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.csv");
    std::fs::write(&file, format!("site_id,domain,language\nimported-{tag},imported-{tag}.example.com,de\n"))
        .unwrap();
    browser.open("/transfer").await;
    let input = browser.client.find(fantoccini::Locator::Css("#file")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    browser.click("form[action='/transfer/import'] button").await;
    browser.arrive("/transfer/import").await;
    let report = browser.text("main").await;
    assert!(report.contains("1 inserted"), "{tag}: {report}");
    assert_eq!(
        count(db, &format!("SELECT count(*) AS n FROM sites WHERE site_id = 'imported-{tag}'")).await,
        1,
        "{tag}: imported"
    );
}

/// Refused POSTs in the panel's request log (proof that a forged form did arrive).
fn refused_posts(panel: &PanelProcess) -> usize {
    panel.log_text().lines().filter(|l| l.contains(" POST ") && l.contains(" 403 ")).count()
}

#[tokio::test]
async fn operators_open_the_panel_by_name_over_http_and_https_and_forged_forms_change_nothing() {
    let setup = WithRoles::new().await;
    let db = &setup.db;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('victim', 'victim.example.com')").await;
    let lab = Lab::start(&setup.url_as(RoleKind::Admin)).await;
    let http = format!("http://{NAME}:{HTTP_PORT}");
    let https = format!("https://{NAME}:{HTTPS_PORT}");

    // The third origin's pages: a forged delete and a forged create, each with a page policy of
    // `no-referrer` (the browser then sends `Origin: null`) and with none, to either panel.
    let mut pages = HashMap::new();
    for (scheme, base) in [("http", &http), ("https", &https)] {
        for (label, policy) in [("null", Some("no-referrer")), ("plain", None)] {
            pages.insert(
                format!("/{scheme}-{label}-delete"),
                (policy, forged_form(&format!("{base}/sites/victim/delete"), &[("confirm", "victim")])),
            );
            pages.insert(
                format!("/{scheme}-{label}-create"),
                (
                    policy,
                    forged_form(
                        &format!("{base}/sites"),
                        &[("site_id", "forged"), ("domain", "forged.example.com"), ("language", "en")],
                    ),
                ),
            );
        }
    }
    serve_forgeries(&lab.laptop, pages);

    for (tag, base, panel) in [("http", &http, &lab.plain), ("https", &https, &lab.tls)] {
        let browser = lab.browser(base).await;
        every_write(&browser, db, tag).await;
        browser.screenshot(&format!("deployed-{tag}")).await;
        assert_eq!(browser.js("return window.isSecureContext").await, json!(tag == "https"), "{tag}");

        for label in ["null", "plain"] {
            for action in ["delete", "create"] {
                let before = refused_posts(panel);
                browser
                    .client
                    .goto(&format!("http://evil.example.com:{EVIL_PORT}/{tag}-{label}-{action}"))
                    .await
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while refused_posts(panel) == before {
                    assert!(
                        Instant::now() < deadline,
                        "{tag} {label} {action}: the forged form never reached the panel: {}",
                        panel.log_text()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let said = browser.text("main").await;
                assert!(said.contains("cross-origin request refused"), "{tag} {label} {action}: {said}");
                assert_eq!(count(db, "SELECT count(*) AS n FROM sites WHERE site_id = 'victim'").await, 1);
                assert_eq!(count(db, "SELECT count(*) AS n FROM sites WHERE site_id = 'forged'").await, 0);
            }
        }
    }
}
