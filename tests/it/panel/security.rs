//! The panel's security battery, over HTTP from peers with tailnet addresses: the server runs
//! in namespace "ps" on 100.101.102.103 (as `tailscale0`), peers connect from namespace "pc",
//! each from an address of its own, and the fake tailscaled answers whois per address.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    process::Command,
};

use cabinet_db::{audit::Verdict, roles::RoleKind};

use super::{PanelProcess, Request, Response};
use crate::{
    fake_localapi::FakeLocalApi,
    harness::{WithRoles, binary, stderr},
    lab::{add_namespaces, forward_into, in_netns, tailnet_cable},
};

const SERVER_IP: &str = "100.101.102.103";
const PORT: u16 = 8432;
const CAP: &str = "ai-cabinet.internal/cap/cabinet-db";

/// Each peer's address and what tailscaled says about it (`None`: unknown to tailscaled).
fn peers() -> Vec<(&'static str, &'static str, Option<String>)> {
    let person = |login: &str, roles: &[&str]| {
        let grants: Vec<String> = roles.iter().map(|r| format!(r#"{{"role":"{r}"}}"#)).collect();
        format!(
            r#"{{"Node":{{"Name":"laptop.tail1234.ts.net.","Tags":[]}},"UserProfile":{{"ID":1,"LoginName":"{login}","DisplayName":"{login}"}},"CapMap":{{"{CAP}":[{}]}}}}"#,
            grants.join(",")
        )
    };
    vec![
        ("viewer", "100.101.102.10", Some(person("alice@example.com", &["viewer"]))),
        ("editor", "100.101.102.11", Some(person("bob@example.com", &["viewer", "editor"]))),
        ("admin", "100.101.102.12", Some(person("carol@example.com", &["admin"]))),
        (
            "tagged",
            "100.101.102.13",
            Some(format!(
                r#"{{"Node":{{"Name":"n8n.tail1234.ts.net.","Tags":["tag:n8n"]}},"UserProfile":{{"LoginName":"tagged-devices"}},"CapMap":{{"{CAP}":[{{"role":"admin"}}]}}}}"#
            )),
        ),
        ("unknown", "100.101.102.14", None),
        ("nogrant", "100.101.102.15", Some(person("dave@example.com", &[]))),
    ]
}

struct Battery {
    ns_client: String,
    addr: SocketAddr,
    ips: HashMap<&'static str, IpAddr>,
}

impl Battery {
    /// Sends `request` from the named peer.
    fn send(&self, peer: &str, request: Request<'static>) -> Response {
        let (addr, from) = (self.addr, self.ips[peer]);
        in_netns(&self.ns_client, async move || request.from(from).send(addr).await.unwrap())
    }
}

fn assert_protected(response: &Response, what: &str) {
    let csp = response.header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert!(response.header("referrer-policy").is_some(), "{what}");
}

#[tokio::test]
async fn the_panel_lets_in_only_granted_people_and_only_same_origin_changes() {
    // Arrange: the database (as cabinet_admin), the namespaces, the fake tailscaled.
    let setup = WithRoles::new().await;
    let url = setup.url_as(RoleKind::Admin);
    let pg_port = url.connect_options().unwrap().get_port();
    let [ns_server, ns_client] = add_namespaces("the panel security test", ["ps", "pc"]);
    let _cleanup = Cleanup(vec![ns_server.clone(), ns_client.clone()]);
    let client_link = format!("pc{}", std::process::id());
    let peer_ips: Vec<&str> = peers().iter().map(|(_, ip, _)| *ip).collect();
    tailnet_cable(&ns_server, SERVER_IP, &ns_client, &client_link, &peer_ips);
    let mut ips = HashMap::new();
    let mut whois = HashMap::new();
    for (name, ip, answer) in peers() {
        ips.insert(name, ip.parse::<IpAddr>().unwrap());
        if let Some(answer) = answer {
            whois.insert(ip.parse().unwrap(), answer);
        }
    }
    forward_into(&ns_server, pg_port);
    let tailscaled = FakeLocalApi::with_whois("status-running.json", whois);
    let addr: SocketAddr = format!("{SERVER_IP}:{PORT}").parse().unwrap();

    // The server refuses addresses it must never bind, before touching anything.
    for (listen, says) in [
        ("0.0.0.0:8432", "wildcard"),
        ("[::]:8432", "wildcard"),
        ("127.0.0.1:8432", "loopback is never an identity"),
        ("192.0.2.10:8432", "not a tailnet address"),
    ] {
        let out = binary()
            .env("DATABASE_URL", url.expose())
            .args(["serve", "--socket", tailscaled.socket.to_str().unwrap(), "--listen", listen])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{listen}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{listen}: {}", stderr(&out));
    }
    let out = binary()
        .env("DATABASE_URL", url.expose())
        .args(["serve", "--dev-identity", "dev@example.com=admin", "--listen", "100.101.102.103:8432"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("loopback only"), "{}", stderr(&out));

    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &ns_server, env!("CARGO_BIN_EXE_cabinet-db"), "--json", "serve"])
        .args(["--socket", tailscaled.socket.to_str().unwrap(), "--listen", &addr.to_string()])
        .env("DATABASE_URL", url.expose())
        .env("CABINET_CONFIG", crate::harness::NO_CONFIG);
    let mut panel = PanelProcess::spawn(command, addr, Some(&ns_client)).await;
    let battery = Battery { ns_client: ns_client.clone(), addr, ips };

    // Act and assert: who gets in.
    let healthz = battery.send("unknown", Request::get("/healthz"));
    assert_eq!(
        (healthz.status, healthz.body.as_str()),
        (200, "ok\n"),
        "/healthz needs no identity, says nothing"
    );
    assert_protected(&healthz, "/healthz");
    for (peer, says) in [
        ("unknown", "not a known tailnet device"),
        ("tagged", "tagged devices"),
        ("nogrant", "has no role for the admin panel"),
    ] {
        let refused = battery.send(peer, Request::get("/sites"));
        assert_eq!(refused.status, 403, "{peer}: {}", refused.body);
        assert!(refused.body.contains(says), "{peer}: {}", refused.body);
        assert_protected(&refused, peer);
        // Identity headers a client sends are never read.
        let forged = battery.send(
            peer,
            Request::get("/sites")
                .header("Tailscale-User-Login", "carol@example.com")
                .header("Tailscale-User-Name", "Carol")
                .header("X-Forwarded-For", "100.101.102.12"),
        );
        assert_eq!(forged.status, 403, "{peer} with forged identity headers");
    }
    let viewer_page =
        battery.send("viewer", Request::get("/").header("Tailscale-User-Login", "carol@example.com"));
    assert_eq!(viewer_page.status, 200, "{}", viewer_page.body);
    assert!(viewer_page.body.contains("alice@example.com · viewer"), "{}", viewer_page.body);
    assert!(!viewer_page.body.contains("carol@example.com"));
    assert_protected(&viewer_page, "dashboard");

    // The editor creates a site; the history names the person.
    let create = || {
        Request::post(
            "/sites",
            vec![
                ("site_id", "sec1"),
                ("domain", "sec1.example.com"),
                ("language", "en"),
                ("ai_prompt", "Be kind"),
            ],
        )
    };
    let created = battery.send("editor", create());
    assert_eq!(created.status, 303, "{}", created.body);
    let mut conn = setup.conn(RoleKind::Admin).await;
    let actor: String = sqlx::query_scalar("SELECT actor FROM sites_history WHERE site_id = 'sec1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(actor, "bob@example.com");

    // What a viewer may not do: no edit controls, and a crafted POST fails.
    let viewer_site = battery.send("viewer", Request::get("/sites/sec1"));
    assert_eq!(viewer_site.status, 200);
    assert!(!viewer_site.body.contains("method=\"post\""), "a viewer sees no form: {}", viewer_site.body);
    let crafted = battery.send(
        "viewer",
        Request::post(
            "/sites/sec1",
            vec![
                ("version", "1"),
                ("domain", "sec1.example.com"),
                ("language", "en"),
                ("ai_prompt", "pwned"),
            ],
        ),
    );
    assert_eq!(crafted.status, 403, "{}", crafted.body);
    assert!(crafted.body.contains("needs the editor role"), "{}", crafted.body);
    assert_eq!(
        battery.send("viewer", Request::post("/sites/sec1/delete", vec![("confirm", "sec1")])).status,
        403
    );

    // Cross-origin changes are refused, whoever's browser carries them; nothing is written.
    let cross_site = battery.send(
        "editor",
        Request::post("/sites/sec1/delete", vec![("confirm", "sec1")]).header("Sec-Fetch-Site", "cross-site"),
    );
    assert_eq!(cross_site.status, 403, "{}", cross_site.body);
    let mut foreign_origin = Request::post("/sites/sec1/delete", vec![("confirm", "sec1")]);
    foreign_origin.headers.clear();
    let foreign_origin = battery.send("editor", foreign_origin.header("Origin", "http://evil.example.com"));
    assert_eq!(foreign_origin.status, 403);
    for (origin, says) in [
        (Some("null"), "Origin: null"),
        (Some("http://100.101.102.103:8432.evil.example.com"), "cross-origin"),
        (Some("http://100.101.102.103:9999"), "cross-origin"),
        (None, "scripts change data with the cabinet-db CLI or SQL"),
    ] {
        let mut request = Request::post("/sites/sec1/delete", vec![("confirm", "sec1")]);
        request.headers.clear();
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let refused = battery.send("editor", request);
        assert_eq!(refused.status, 403, "{origin:?}");
        assert!(refused.body.contains(says), "{origin:?}: {}", refused.body);
    }
    // Over plain HTTP a browser sends the page's own origin and nothing else: let in.
    let mut same_origin = Request::post("/sites/sec1/check", vec![("domain", "sec1.example.com")]);
    same_origin.headers.clear();
    let same_origin = battery.send("editor", same_origin.header("Origin", "http://100.101.102.103:8432"));
    assert_eq!(same_origin.status, 200, "{}", same_origin.body);
    let still_there: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE site_id = 'sec1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(still_there, 1, "no cross-origin request deleted anything");

    // Users: every granted role reads; only an admin forgets, and then no e-mail is left.
    sqlx::query("INSERT INTO users (user_id, email) VALUES ('u-sec', 'secret.person@example.com')")
        .execute(&mut conn)
        .await
        .unwrap();
    let listed = battery.send("viewer", Request::get("/users?q=SECRET"));
    assert!(listed.body.contains("href=\"/users/u-sec\""), "{}", listed.body);
    let forget = || Request::post("/users/u-sec/forget", vec![("confirm", "u-sec")]);
    for peer in ["viewer", "editor"] {
        let refused = battery.send(peer, forget());
        assert_eq!(refused.status, 403, "{peer}");
        assert!(refused.body.contains("needs the admin role"), "{}", refused.body);
    }
    assert!(
        !battery.send("editor", Request::get("/users/u-sec")).body.contains("/forget"),
        "no control shown"
    );
    let forgotten = battery.send("admin", forget());
    assert_eq!(forgotten.status, 303, "{}", forgotten.body);
    let traces: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM users WHERE user_id = 'u-sec')
              + (SELECT count(*) FROM users_history WHERE old_email LIKE 'secret%' OR new_email LIKE 'secret%')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(traces, 0);
    let forgotten_by: String =
        sqlx::query_scalar("SELECT DISTINCT forgotten_by FROM users_history WHERE user_id = 'u-sec'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(forgotten_by, "carol@example.com");

    // DNS rebinding: a name that is not ours is refused; our MagicDNS name is answered.
    let rebound = battery.send("editor", Request::get("/sites").host("evil.example.com"));
    assert_eq!(rebound.status, 403);
    assert_protected(&rebound, "wrong host");
    let by_name = battery.send("editor", Request::get("/sites").host("cabinet-db.tail1234.ts.net:8432"));
    assert_eq!(by_name.status, 200);

    // Every page and file carries the protections.
    for path in [
        "/",
        "/sites",
        "/sites/sec1",
        "/sites/sec1/history",
        "/sites/new",
        "/no-such-page",
        "/assets/htmx.min.js",
    ] {
        let response = battery.send("editor", Request::get(path));
        assert_protected(&response, path);
    }
    let script = battery.send("editor", Request::get("/assets/htmx.min.js"));
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));

    // The audit on the panel's host: the panel listens on the tailnet address only.
    let server_ns = ns_server.clone();
    let check = in_netns(&server_ns, async move || cabinet_db::audit::network::panel(&audit_options(PORT)));
    assert_eq!(check.verdict, Verdict::Pass, "{check:?}");
    assert!(check.detail.contains(SERVER_IP), "{check:?}");

    // The request log names who did what, one JSON object per request; SIGTERM stops cleanly.
    assert!(panel.terminate().success());
    let log = panel.log_text();
    let posted = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["method"] == "POST" && v["path"] == "/sites" && v["status"] == 303)
        .unwrap_or_else(|| panic!("no log line of the create: {log}"));
    assert_eq!(posted["login"], "bob@example.com");
    assert_eq!(posted["peer"], "100.101.102.11");
    sqlx::Connection::close(conn).await.unwrap();
}

fn audit_options(panel_port: u16) -> cabinet_db::audit::AuditOptions {
    cabinet_db::audit::AuditOptions {
        roles: cabinet_db::roles::Roles::default(),
        socket: "/nonexistent/tailscaled.sock".into(),
        socket_explicit: false,
        // The calling thread's namespace (the process's /proc/net is the main thread's).
        proc_root: "/proc/thread-self".into(),
        secrets_dir: None,
        backup_config: "/nonexistent/pgbackrest.conf".into(),
        panel_port,
        cluster_members: vec![],
    }
}

#[tokio::test]
async fn the_audit_fails_a_panel_on_loopback_or_every_interface() {
    let db = crate::harness::TestDb::migrated().await;
    let dev = PanelProcess::dev(&db.url, "dev@example.com=admin").await;
    let check = cabinet_db::audit::network::panel(&audit_options(dev.addr.port()));
    assert_eq!(check.verdict, Verdict::Fail, "{check:?}");
    assert!(check.detail.contains("127.0.0.1") && check.remedy.contains("--dev-identity"), "{check:?}");
    let wildcard = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let check = cabinet_db::audit::network::panel(&audit_options(wildcard.local_addr().unwrap().port()));
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.detail.contains("every interface"), "{check:?}");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_eq!(cabinet_db::audit::network::panel(&audit_options(free)).verdict, Verdict::Pass);
}

/// Removes the namespaces when the test ends, also on failure.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
