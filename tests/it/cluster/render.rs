//! `cluster render`: the rendered files against their snapshots, the secrets file, refusals
//! before anything is written, and the real engines' own checks of what it writes (Patroni's
//! `--validate-config` inside a network namespace holding the node's address, `haproxy -c`).

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use cabinet_db::{
    cluster::{ClusterSpec, Member, Ports, Timing, render},
    roles::Roles,
};

use crate::lab::{Cleanup, Killed};
use crate::{
    harness::{assert_snapshots, binary, stderr},
    lab::{add_namespaces, sh},
};

fn member(text: &str) -> Member {
    Member::parse(text).unwrap()
}

fn spec() -> ClusterSpec {
    ClusterSpec {
        scope: "cabinet".into(),
        nodes: vec![member("db1=100.101.1.1"), member("db2=100.101.1.2")],
        witness: Some(member("witness=100.101.1.3")),
        ports: Ports::default(),
        timing: Timing::default(),
        data_dir: "/var/lib/postgresql/15/cabinet".into(),
        bin_dir: "/usr/lib/postgresql/15/bin".into(),
        patroni_dir: "/opt/cabinet-db/patroni".into(),
        database: "cabinet".into(),
        roles: Roles::default(),
        backup_config: None,
    }
}

#[test]
fn rendered_files_match_their_golden_copies() {
    assert_snapshots("cluster-render/two-nodes-and-a-witness", &render::render(&spec()).unwrap());
    let three = ClusterSpec {
        nodes: vec![member("db1=100.101.1.1"), member("db2=100.101.1.2"), member("db3=fd7a:115c:a1e0::3")],
        witness: None,
        timing: Timing { ttl: 30, loop_wait: 5, retry_timeout: 10 },
        // With archiving to pgBackRest, at a path that needs quoting in neither sh nor YAML.
        backup_config: Some("/etc/cabinet-db/pgbackrest.conf".into()),
        ..spec()
    };
    assert_snapshots("cluster-render/three-nodes", &render::render(&three).unwrap());
}

#[test]
fn the_passwords_are_private_generated_once_and_nowhere_else() {
    let out = tempfile::tempdir().unwrap();
    render::write(out.path(), &spec()).unwrap();
    let secrets = out.path().join(render::SECRETS_FILE);
    let first = std::fs::read_to_string(&secrets).unwrap();
    assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
    let passwords: Vec<&str> =
        first.lines().filter_map(|l| l.split_once("_PASSWORD=")).map(|(_, p)| p).collect();
    assert_eq!(passwords.len(), 4, "{first}");
    assert_eq!(passwords.iter().collect::<std::collections::HashSet<_>>().len(), 4, "each its own");
    assert!(passwords.iter().all(|p| p.len() >= 20));
    // A rerun (another node added, say) keeps them: every node must have the same ones.
    render::write(
        out.path(),
        &ClusterSpec {
            witness: None,
            nodes: vec![member("db1=100.101.1.1"), member("db2=100.101.1.2"), member("db3=100.101.1.4")],
            ..spec()
        },
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&secrets).unwrap(), first);
    for entry in walk(out.path()) {
        if entry != secrets {
            let text = std::fs::read_to_string(&entry).unwrap();
            for password in &passwords {
                assert!(!text.contains(password), "{} holds a password", entry.display());
            }
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn unsafe_or_hostile_input_is_refused_before_anything_is_written() {
    // A valid cluster, then one change each.
    const VALID: [&str; 6] =
        ["--node", "db1=100.101.1.1", "--node", "db2=100.101.1.2", "--witness", "w=100.101.1.3"];
    let with =
        |extra: &[&'static str]| VALID.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("one node", vec!["--node", "db1=100.101.1.1"], "at least two database nodes"),
        ("an even etcd", VALID[..4].to_vec(), "odd number of members"),
        (
            "a LAN address",
            vec!["--node", "db1=192.168.1.10", "--node", "db2=100.101.1.2", "--witness", "w=100.101.1.3"],
            "not a Tailscale address",
        ),
        (
            "a name twice",
            vec!["--node", "db1=100.101.1.1", "--node", "db1=100.101.1.2", "--witness", "w=100.101.1.3"],
            "given twice",
        ),
        (
            "an address twice",
            vec!["--node", "db1=100.101.1.1", "--node", "db2=100.101.1.1", "--witness", "w=100.101.1.3"],
            "given twice",
        ),
        (
            "a newline in a name",
            vec![
                "--node",
                "db1\nscope: evil=100.101.1.1",
                "--node",
                "db2=100.101.1.2",
                "--witness",
                "w=100.101.1.3",
            ],
            "DNS label",
        ),
        (
            "not NAME=IP",
            vec!["--node", "db1", "--node", "db2=100.101.1.2", "--witness", "w=100.101.1.3"],
            "NAME=TAILSCALE_IP",
        ),
        ("a quote in the scope", with(&["--scope", "a'b"]), "DNS label"),
        ("a short ttl", with(&["--ttl", "10"]), "below 20"),
        ("slow renewals", with(&["--loop-wait", "10", "--retry-timeout", "6"]), "loop_wait + 2"),
        ("a relative data dir", with(&["--data-dir", "data"]), "absolute path"),
        ("a data dir with a newline", with(&["--data-dir", "/var/lib/x\nbin_dir: /tmp"]), "absolute path"),
        ("a climbing data dir", with(&["--data-dir", "/var/../etc"]), "no .."),
        ("one port twice", with(&["--patroni-port", "5432"]), "port of its own"),
        ("a hostile database", with(&["--database", "cabinet all 0.0.0.0/0 trust"]), "--database"),
    ];
    for (what, args, says) in cases {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("rendered");
        let run = binary()
            .args(["cluster", "render", "--out", target.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr(&run));
        assert!(stderr(&run).contains(says), "{what}: {}", stderr(&run));
        assert!(stderr(&run).contains("nothing was written") || !stderr(&run).is_empty(), "{what}");
        assert!(!target.exists(), "{what}: files were written");
    }
}

#[test]
fn patroni_and_haproxy_accept_the_rendered_files() {
    let patroni = crate::lab::tools_dir().join("patroni/bin/patroni");
    assert!(
        patroni.exists(),
        "{} is missing: scripts/setup tests creates Patroni's virtualenv",
        patroni.display()
    );
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is missing: scripts/setup tests installs it"
    );
    let out = tempfile::tempdir().unwrap();
    // Patroni looks for the server binaries: Debian's 15, which scripts/setup tests installs. With
    // archiving, so Patroni checks that part too.
    let spec = ClusterSpec { backup_config: Some("/etc/cabinet-db/pgbackrest.conf".into()), ..spec() };
    render::write(out.path(), &spec).unwrap();

    let haproxy = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(out.path().join("clients/haproxy.cfg"))
        .output()
        .unwrap();
    assert!(haproxy.status.success(), "{}", stderr(&haproxy));

    // One namespace holds the three members' addresses (Patroni's validator binds db1's and
    // reaches every etcd member).
    let [ns] = add_namespaces("the cluster render test", ["cr"]);
    let _cleanup = Cleanup(vec![ns.clone()]);
    // (A veth pair: this kernel may lack the dummy device.)
    sh(&["ip", "-n", &ns, "link", "add", "tailscale0", "type", "veth", "peer", "name", "ts-peer"]);
    for ip in ["100.101.1.1", "100.101.1.2", "100.101.1.3"] {
        sh(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/32"), "dev", "tailscale0"]);
    }
    sh(&["ip", "-n", &ns, "link", "set", "tailscale0", "up"]);
    sh(&["ip", "-n", &ns, "link", "set", "ts-peer", "up"]);

    // nftables accepts each member's table (checked, not loaded).
    for name in ["db1", "db2", "witness"] {
        let table = out.path().join(name).join("nftables/cabinet-cluster.nft");
        let check =
            Command::new("ip").args(["netns", "exec", &ns, "nft", "-c", "-f"]).arg(&table).output().unwrap();
        assert!(check.status.success(), "{name}: {}", stderr(&check));
    }

    // The three etcd members start from their rendered files (only the data directory moved
    // into the test's) and form one healthy cluster.
    let mut members = Vec::new();
    for name in ["db1", "db2", "witness"] {
        let rendered = std::fs::read_to_string(out.path().join(name).join("etcd.conf.yml")).unwrap();
        let conf = out.path().join(format!("{name}-etcd-test.yml"));
        let data = out.path().join(format!("{name}-etcd-data"));
        std::fs::write(
            &conf,
            rendered.replace("data-dir: /var/lib/cabinet-db/etcd", &format!("data-dir: {}", data.display())),
        )
        .unwrap();
        let etcd = Command::new("ip")
            .args(["netns", "exec", &ns, "etcd", "--config-file"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd (scripts/setup tests installs etcd-server)");
        members.push(Killed(etcd));
    }
    let mut health = None;
    for _ in 0..100 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "etcdctl",
                "--endpoints",
                "http://100.101.1.1:2379,http://100.101.1.2:2379,http://100.101.1.3:2379",
                "endpoint",
                "health",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl (scripts/setup tests installs etcd-client)");
        if out.status.success() {
            // etcdctl 3.4 prints the verdicts on stderr.
            health = Some(format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let health = health.expect("the rendered etcd members never became a healthy cluster");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");

    let validate = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&patroni)
        .arg("--validate-config")
        .arg(out.path().join("db1/patroni.yml"))
        .output()
        .unwrap();
    assert!(validate.status.success(), "{}{}", String::from_utf8_lossy(&validate.stdout), stderr(&validate));
}
