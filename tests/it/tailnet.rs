//! `tailnet status` and `tailnet render` against a fake LocalAPI, and the rendered files
//! against their snapshots (tests/snapshots/tailnet-render).

use std::path::Path;

use cabinet_db::{
    roles::{RoleKind, Roles},
    tailnet::render::{Client, RenderInput, render},
};

use crate::{
    fake_localapi::FakeLocalApi,
    harness::{binary, stderr, stdout},
};

fn tailnet(args: &[&str]) -> std::process::Output {
    binary().arg("tailnet").args(args).output().unwrap()
}

#[test]
fn status_shows_addresses_name_tags_and_serve_configuration() {
    let api = FakeLocalApi::start("status-running.json", "serve-config-empty.json");
    let out = tailnet(&["status", "--socket", api.socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "state:      Running",
        "addresses:  100.101.102.103, fd7a:115c:a1e0::a01:2b03",
        "MagicDNS:   cabinet-db.tail1234.ts.net",
        "tags:       tag:cabinet-db",
        "tailnet:    example.com (MagicDNS on)",
        "funnel:     (none)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn status_reports_funnel_and_served_ports() {
    let api = FakeLocalApi::start("status-running.json", "serve-config-funnel.json");
    let out = tailnet(&["status", "--socket", api.socket.to_str().unwrap(), "--json"]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["serve_config"]["AllowFunnel"]["cabinet-db.tail1234.ts.net:443"], true);
    let human = stdout(&tailnet(&["status", "--socket", api.socket.to_str().unwrap()]));
    assert!(human.contains("serve TCP:  443, 5432"), "{human}");
    assert!(human.contains("funnel:     cabinet-db.tail1234.ts.net:443"), "{human}");
}

#[test]
fn status_of_a_node_that_is_not_running_fails_with_the_fix() {
    let api = FakeLocalApi::start("status-needs-login.json", "serve-config-empty.json");
    let out = tailnet(&["status", "--socket", api.socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not connected (NeedsLogin): run `tailscale up`"), "{}", stdout(&out));
    let render = tailnet(&["render", "--out", "/tmp/never", "--socket", api.socket.to_str().unwrap()]);
    assert_eq!(render.status.code(), Some(2));
    assert!(stderr(&render).contains("tailscaled is NeedsLogin, not Running"), "{}", stderr(&render));
}

#[test]
fn a_missing_socket_says_tailscaled_is_not_running() {
    let out = tailnet(&["status", "--socket", "/nonexistent/tailscaled.sock"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("tailscaled is not running on this host (no socket at /nonexistent/tailscaled.sock)")
    );
}

fn golden_input() -> RenderInput {
    RenderInput {
        ips: vec!["100.101.102.103".parse().unwrap(), "fd7a:115c:a1e0::a01:2b03".parse().unwrap()],
        dns_name: "cabinet-db.tail1234.ts.net".to_owned(),
        clients: vec![
            Client { role: RoleKind::N8n, ip: "100.88.1.2".parse().unwrap() },
            Client { role: RoleKind::Admin, ip: "100.88.1.3".parse().unwrap() },
        ],
        port: 5432,
        database: "cabinet".to_owned(),
        roles: Roles::default(),
        panel: Default::default(),
        panel_os_user: None,
    }
}

/// Compares rendered files with their snapshots under `tests/snapshots/tailnet-render/<case>`.
fn assert_snapshots(case: &str, input: &RenderInput) {
    crate::harness::assert_snapshots(&format!("tailnet-render/{case}"), &render(input).unwrap());
}

#[test]
fn rendered_files_match_their_golden_copies() {
    assert_snapshots("with-clients", &golden_input());
    assert_snapshots("tailnet-wide", &RenderInput { clients: vec![], ..golden_input() });
}

#[test]
fn rendering_from_the_socket_equals_rendering_from_flags() {
    let api = FakeLocalApi::start("status-running.json", "serve-config-empty.json");
    let from_socket = tempfile::tempdir().unwrap();
    let out = tailnet(&[
        "render",
        "--out",
        from_socket.path().to_str().unwrap(),
        "--socket",
        api.socket.to_str().unwrap(),
        "--client",
        "n8n=100.88.1.2",
        "--client",
        "admin=100.88.1.3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in render(&golden_input()).unwrap() {
        let written = std::fs::read_to_string(from_socket.path().join(&file.path)).unwrap();
        assert_eq!(written, file.contents, "{}", file.path.display());
    }
}

#[test]
fn render_refuses_non_tailnet_addresses() {
    let out =
        tailnet(&["render", "--out", "/tmp/never", "--ip", "192.168.1.10", "--dns-name", "db.tail1.ts.net"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("192.168.1.10 is not a Tailscale address"), "{}", stderr(&out));
    let client = tailnet(&[
        "render",
        "--out",
        "/tmp/never",
        "--ip",
        "100.101.102.103",
        "--dns-name",
        "db.tail1.ts.net",
        "--client",
        "n8n=203.0.113.7",
    ]);
    assert!(stderr(&client).contains("203.0.113.7 is not a Tailscale address"), "{}", stderr(&client));
    assert!(!Path::new("/tmp/never").exists());
}

/// The `host` rules of a rendered pg_hba.conf (comments and blank lines dropped).
fn hba_rules(files: &[cabinet_db::tailnet::render::RenderedFile]) -> Vec<String> {
    let hba = files.iter().find(|f| f.path.ends_with("pg_hba.conf")).unwrap();
    hba.contents
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn hostile_names_never_reach_the_rendered_files() {
    // Arrange: the values an attacker (or a careless paste) would try.
    let hostile = [
        "cabinet  all  100.64.0.0/10 trust\n#",
        "cabinet all 0.0.0.0/0 trust",
        "all",
        "replication",
        "samerole",
        "sameuser",
        "+admins",
        "@/etc/passwd",
        "cabinet,postgres",
        "\"cabinet\"",
        "cabinet\r\nhost all all 0.0.0.0/0 trust",
        "Cabinet",
        "",
    ];
    let expected_rules = hba_rules(&render(&golden_input()).unwrap());
    for value in hostile {
        // Act + Assert: refused as a database name and as a role prefix, by the library...
        let mut as_database = golden_input();
        as_database.database = value.to_owned();
        assert!(render(&as_database).is_err(), "database {value:?} was accepted");
        // As a prefix, a keyword only starts longer names ("allowner"): harmless, so it may
        // pass, but then the rules are exactly the usual ones.
        let mut as_prefix = golden_input();
        as_prefix.roles = Roles::new(value);
        match render(&as_prefix) {
            Ok(files) => assert_eq!(hba_rules(&files).len(), expected_rules.len(), "prefix {value:?}"),
            Err(_) => assert!(Roles::parse(value).is_err()),
        }

        // ...and by the command, which writes nothing.
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("rendered");
        let base = [
            "render",
            "--out",
            out.to_str().unwrap(),
            "--ip",
            "100.101.102.103",
            "--dns-name",
            "db.tail1234.ts.net",
        ];
        // As the admin panel's capability, which is written into the policy file.
        let mut as_capability = golden_input();
        as_capability.panel.capability = format!("example.com/cap/{value}");
        let plain = !value.is_empty()
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        assert_eq!(render(&as_capability).is_ok(), plain, "capability {value:?}");
        let prefix_is_a_name = Roles::parse(value).is_ok();
        for flag in ["--database", "--role-prefix", "--panel-capability"] {
            if flag == "--role-prefix" && prefix_is_a_name {
                continue;
            }
            let mut args = base.to_vec();
            args.extend([flag, value]);
            let run = tailnet(&args);
            assert_eq!(run.status.code(), Some(2), "{flag} {value:?}: {}", stdout(&run));
            assert!(!out.exists(), "{flag} {value:?} wrote files");
        }
    }
    // A role prefix PostgreSQL reserves is refused too.
    assert!(
        stderr(&tailnet(&[
            "render",
            "--out",
            "/tmp/never",
            "--ip",
            "100.101.102.103",
            "--dns-name",
            "db.tail1234.ts.net",
            "--role-prefix",
            "pg_"
        ]))
        .contains("reserves")
    );

    // Names that are valid but look like keywords stay names: exactly the usual rules.
    let mut odd = golden_input();
    odd.database = "all_sites".to_owned();
    odd.roles = Roles::new("replication_");
    let rules = hba_rules(&render(&odd).unwrap());
    assert_eq!(rules.len(), expected_rules.len(), "{rules:#?}");
    assert!(rules.iter().all(|r| !r.contains("trust")), "{rules:#?}");
    assert!(
        rules.iter().any(|r| r.starts_with("host all_sites replication_n8n 100.88.1.2/32 scram-sha-256")),
        "{rules:#?}"
    );
}
