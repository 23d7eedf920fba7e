use std::{
    path::Path,
    process::{Command, Output},
};

use super::{
    HOST,
    deb::{Uninstall, package},
    debian_cluster::{DebianCluster, run},
};
use cabinet_db::host::files::POSTGRESQL_DROPIN;

use crate::{
    fake_localapi::FakeLocalApi,
    harness::{stderr, stdout},
    lab::{add_namespaces, sh, veth},
};

const PORT: u16 = 5496;
const CONFIG: &str = "/etc/cabinet-db/cabinet-db.toml";

/// The node's namespace and its tailnet peer's, deleted when the test ends however it ends.
struct Namespaces(String, String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.0, &self.1] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A file host apply writes outside /etc/cabinet-db, removed when the test ends.
struct RemoveOnDrop(&'static str);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// The installed cabinet-db, run inside the node's namespace (as root, like an operator).
fn cabinet_db(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/cabinet-db"])
        .args(args)
        .env_remove("CABINET_CONFIG")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn host_apply_brings_a_debian_cluster_to_the_design_then_changes_nothing_and_never_loads_a_broken_pg_hba()
 {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    // Arrange: the package installed; a tailnet node (tailscale0 holds its Tailscale address);
    // a Debian cluster started in it; tailscaled's LocalAPI faked; the configuration edited.
    let deb = package();
    let _uninstall = Uninstall;
    let _dropin = RemoveOnDrop(POSTGRESQL_DROPIN);
    let _ = std::fs::remove_file(POSTGRESQL_DROPIN);
    drop(Command::new("dpkg").args(["--purge", "cabinet-db"]).output());
    run("dpkg", &["--install", deb.to_str().unwrap()]);
    let [node, peer] = add_namespaces("host apply", ["host", "peer"]);
    let ns = Namespaces(node, peer);
    veth(&ns.0, "tailscale0", &ns.1, &format!("ts{}", std::process::id()));
    sh(&["ip", "-n", &ns.0, "addr", "add", "100.101.102.103/32", "dev", "tailscale0"]);
    sh(&["ip", "-n", &ns.0, "addr", "add", "fd7a:115c:a1e0::a01:2b03/128", "dev", "tailscale0", "nodad"]);
    sh(&["ip", "-n", &ns.0, "link", "set", "tailscale0", "up"]);
    let cluster = DebianCluster::create_in("cdbhost", PORT, Some(&ns.0));
    let api = FakeLocalApi::start("status-running.json", "serve-config-empty.json");
    let repo = tempfile::Builder::new().prefix("cabinet-db-host-apply-repo").tempdir().unwrap();
    std::fs::set_permissions(repo.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let socket_url =
        |user: &str| format!("postgresql:///cabinet?host=/var/run/postgresql&port={PORT}&user={user}");
    std::fs::write(
        CONFIG,
        format!(
            "database_url = \"{}\"\nsecrets_dir = \"/etc/cabinet-db/secrets\"\ntailscale_socket = \"{}\"\n\n\
             [panel]\ndatabase_url = \"{}\"\n\n[backup]\nconfig = \"{}\"\nrepo = \"{}\"\nstate_dir = \"{}\"\n\n[host]\ncluster = \"{}\"\n",
            socket_url("postgres"),
            api.socket.display(),
            socket_url("cabinet_admin"),
            repo.path().join("pgbackrest.conf").display(),
            repo.path().join("repo").display(),
            repo.path().join("state").display(),
            cluster.id()
        ),
    )
    .unwrap();
    let hba = Path::new("/etc/postgresql").join(&cluster.version).join(&cluster.name).join("pg_hba.conf");
    let debian_hba = std::fs::read(&hba).unwrap();

    // A dry run shows the diffs and changes nothing.
    let dry = cabinet_db(&ns.0, &["host", "apply", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("+listen_addresses = 'localhost,100.101.102.103,fd7a:115c:a1e0::a01:2b03'"),
        "{}",
        stdout(&dry)
    );
    assert!(stdout(&dry).contains("would install"), "{}", stdout(&dry));
    assert_eq!(std::fs::read(&hba).unwrap(), debian_hba, "a dry run writes nothing");

    // Act: the first run.
    let first = cabinet_db(&ns.0, &["host", "apply"]);
    assert!(first.status.success(), "{}\n{}", stdout(&first), stderr(&first));
    let said = stdout(&first);
    for done in [
        "restarted",
        "created database cabinet",
        "applied migration",
        "created role",
        "took the first full backup",
        "proved a restore",
        "enabled cabinet-db-audit.timer",
        "set archive_mode",
        "did install /etc/systemd/system/postgresql@.service.d/cabinet-db.conf",
    ] {
        assert!(said.contains(done), "the first run does not say {done:?}:\n{said}");
    }

    // Assert: the audit passes, as the timer will run it; the panel's peer rule is in force.
    let audit = cabinet_db(&ns.0, &["audit"]);
    assert!(audit.status.success(), "{}\n{}", stdout(&audit), stderr(&audit));
    assert!(
        cluster.psql("cabinet", "SELECT count(*) FROM pg_hba_file_rules WHERE 'map=panel' = ANY(options)")
            == "1"
    );
    assert!(Path::new("/etc/systemd/system/timers.target.wants/cabinet-db-drill.timer").exists());

    // A second run changes nothing and restarts or reloads nothing.
    let started = cluster.psql("postgres", "SELECT pg_postmaster_start_time(), pg_conf_load_time()");
    let second = cabinet_db(&ns.0, &["host", "apply"]);
    assert!(second.status.success(), "{}\n{}", stdout(&second), stderr(&second));
    assert!(
        stdout(&second).trim_end().ends_with(&format!("{}: no changes", cluster.id())),
        "{}",
        stdout(&second)
    );
    assert_eq!(cluster.psql("postgres", "SELECT pg_postmaster_start_time(), pg_conf_load_time()"), started);

    // A careless rule of the operator's own: the server would refuse it, so it is never loaded.
    std::fs::write(
        "/etc/cabinet-db/pg_hba.local.conf",
        "host cabinet cabinet_n8n 100.64.0.9/32 scram-sha-257\n",
    )
    .unwrap();
    let before = std::fs::read(&hba).unwrap();
    let refused = cabinet_db(&ns.0, &["host", "apply"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let why = stderr(&refused);
    assert!(why.contains("stopped at step `files`") && why.contains("pg_hba.conf line"), "{why}");
    assert!(
        why.contains("nothing was reloaded") && why.contains("not done: files, database, migrate"),
        "{why}"
    );
    assert_eq!(std::fs::read(&hba).unwrap(), before, "the previous pg_hba.conf is back");
    // … readable by the server as before (its owner and mode kept), and without errors.
    assert_eq!(
        cluster.psql("postgres", "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0"
    );
    assert_eq!(cluster.psql("postgres", "SELECT pg_postmaster_start_time(), pg_conf_load_time()"), started);

    // A hand edit of pg_hba.conf itself is shown and replaced by the design (valid, reloaded).
    std::fs::remove_file("/etc/cabinet-db/pg_hba.local.conf").unwrap();
    let edited = format!("{}host all all 0.0.0.0/0 trust\n", String::from_utf8_lossy(&before));
    std::fs::write(&hba, edited).unwrap();
    let repaired = cabinet_db(&ns.0, &["host", "apply"]);
    assert!(repaired.status.success(), "{}\n{}", stdout(&repaired), stderr(&repaired));
    assert!(stdout(&repaired).contains("-host all all 0.0.0.0/0 trust"), "{}", stdout(&repaired));
    assert_eq!(std::fs::read(&hba).unwrap(), before);
    assert_eq!(
        cluster.psql("postgres", "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'"),
        "0"
    );
}
