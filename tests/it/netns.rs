//! The network proof, in network namespaces of our own (root only: CI runs as root):
//!
//! - "db" runs PostgreSQL configured by `tailnet render` (listen on loopback + its tailnet
//!   address, the rendered pg_hba, the rendered nftables table), reached from
//! - "tailnet" (100.101.102.7, a tailnet address), where cabinet_n8n can read `sites`, and
//! - "outside" (198.51.100.7, not a tailnet address), which is refused at every layer.
//!
//! The addresses exist only inside these namespaces. This test fails, never skips, when it
//! cannot build them.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use cabinet_db::{
    audit::{self, AuditOptions, Verdict},
    db::DatabaseUrl,
    local_cluster::{LocalCluster, RunAs, ServerSettings},
    migrations::{MigrationSet, RunnerOptions, runner},
    roles::{
        RoleKind, Roles,
        apply::apply,
        password::{self, PasswordSources},
    },
    tailnet::render::{Client, RenderInput, render},
};
use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};

use crate::{
    fake_localapi::FakeLocalApi,
    lab::{add_namespaces, in_netns, sh, veth},
};

const DB_TAILNET_IP: &str = "100.101.102.103";
const CLIENT_TAILNET_IP: &str = "100.101.102.7";
const DB_OUTSIDE_IP: &str = "198.51.100.1";
const CLIENT_OUTSIDE_IP: &str = "198.51.100.7";
const PORT: u16 = 5432;
const SUPERUSER: &str = "cabinet_test";

/// Three namespaces and their links; removed on drop (which also ends PostgreSQL's network).
struct Namespaces {
    db: String,
    tailnet: String,
    outside: String,
}

impl Namespaces {
    fn create() -> Namespaces {
        let [db, tailnet, outside] = add_namespaces("the network-namespace test", ["db", "ts", "out"]);
        let ns = Namespaces { db, tailnet, outside };
        let pid = std::process::id();
        // db's side of the tailnet link is called tailscale0, as on a real node, so the
        // rendered nftables rule applies to it.
        let (ts_peer, out_peer) = (format!("ts{pid}"), format!("out{pid}"));
        for (db_side, peer, peer_ns) in
            [("tailscale0", &ts_peer, &ns.tailnet), ("eth-out", &out_peer, &ns.outside)]
        {
            veth(&ns.db, db_side, peer_ns, peer);
        }
        for (name, dev, addr) in [
            (&ns.db, "tailscale0", format!("{DB_TAILNET_IP}/24")),
            (&ns.tailnet, ts_peer.as_str(), format!("{CLIENT_TAILNET_IP}/24")),
            (&ns.db, "eth-out", format!("{DB_OUTSIDE_IP}/24")),
            (&ns.outside, out_peer.as_str(), format!("{CLIENT_OUTSIDE_IP}/24")),
        ] {
            sh(&["ip", "-n", name, "addr", "add", &addr, "dev", dev]);
            sh(&["ip", "-n", name, "link", "set", dev, "up"]);
        }
        // The outside host even has a route to the tailnet address, as a misrouted or
        // spoofing LAN neighbour would: only the layers under test stop it.
        sh(&["ip", "-n", &ns.outside, "route", "add", "100.101.102.0/24", "via", DB_OUTSIDE_IP]);
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.db, &self.tailnet, &self.outside] {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// PostgreSQL in the db namespace, set up from `tailnet render`'s files.
struct Server {
    cluster: LocalCluster,
    namespace: String,
}

impl Server {
    fn start(ns: &Namespaces, rendered: &Path) -> Server {
        let root = std::env::temp_dir().join(format!("cabinet-db-test-{}-netns", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cluster = LocalCluster::new(root, PORT).unwrap();
        cluster.init(SUPERUSER, ServerSettings { port: PORT, durable: false }).unwrap();
        let pgdata = cluster.pgdata();
        std::fs::copy(rendered.join("postgresql/conf.d/cabinet-db.conf"), pgdata.join("tailnet.conf"))
            .unwrap();
        let mut conf = std::fs::read_to_string(pgdata.join("postgresql.conf")).unwrap();
        conf.push_str("include 'tailnet.conf'\n");
        std::fs::write(pgdata.join("postgresql.conf"), conf).unwrap();
        std::fs::copy(rendered.join("postgresql/pg_hba.conf"), pgdata.join("pg_hba.conf")).unwrap();
        for file in ["tailnet.conf", "pg_hba.conf"] {
            cluster.run_as.hand_over(&pgdata.join(file)).unwrap();
        }
        let server = Server { cluster, namespace: ns.db.clone() };
        server.pg_ctl(&["start", "-w", "-t", "30", "-l", &server.cluster.log_file().display().to_string()]);
        server
    }

    /// `pg_ctl -D pgdata ARGS` inside the db namespace, as the server user.
    fn pg_ctl_command(&self, args: &[&str]) -> Command {
        let RunAs::User { uid, gid, .. } = &self.cluster.run_as else { unreachable!("checked: we are root") };
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace, "setpriv"])
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .args(["--clear-groups", "--"])
            .arg(self.cluster.binaries.tool("pg_ctl"))
            .arg("-D")
            .arg(self.cluster.pgdata())
            .args(args)
            .current_dir("/");
        command
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = self.pg_ctl_command(args).output().unwrap();
        let log = std::fs::read_to_string(self.cluster.log_file()).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl {args:?}: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.pg_ctl_command(&["stop", "-m", "immediate"]).output();
        let _ = std::fs::remove_dir_all(&self.cluster.root);
    }
}

fn options(host: &str, user: &str, password: &str, database: &str) -> PgConnectOptions {
    PgConnectOptions::new().host(host).port(PORT).username(user).password(password).database(database)
}

/// Tries to connect within 3 s: `Ok` on success, else what stopped it.
async fn try_connect(options: PgConnectOptions) -> Result<sqlx::PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(3), options.connect()).await {
        Err(_) => Err("timed out (packets dropped)".to_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(conn)) => Ok(conn),
    }
}

#[test]
fn only_the_tailnet_reaches_postgresql_and_only_as_its_role() {
    // Arrange: hosts, the rendered configuration, the server, schema, roles and a row.
    let ns = Namespaces::create();
    let rendered = tempfile::tempdir().unwrap();
    let input = RenderInput {
        ips: vec![DB_TAILNET_IP.parse().unwrap()],
        dns_name: "cabinet-db.tailtest.ts.net".to_owned(),
        clients: vec![Client { role: RoleKind::N8n, ip: CLIENT_TAILNET_IP.parse::<IpAddr>().unwrap() }],
        port: PORT,
        database: "cabinet".to_owned(),
        roles: Roles::default(),
        panel: Default::default(),
        panel_os_user: None,
    };
    cabinet_db::tailnet::render::write(rendered.path(), &render(&input).unwrap()).unwrap();
    let server = Server::start(&ns, rendered.path());
    let nft = Command::new("nft").arg("--version").output().is_ok();
    if nft {
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns.db,
            "nft",
            "-f",
            rendered.path().join("nftables/cabinet-pg.nft").to_str().unwrap(),
        ]);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nft is missing in CI: scripts/setup tests installs nftables"
        );
        eprintln!("note: nft is not installed; the firewall layer is not exercised");
    }
    let superuser_password = server.cluster.superuser_password().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let secrets_dir = secrets.path().to_owned();
    let api = FakeLocalApi::start("status-running.json", "serve-config-empty.json");
    let socket = api.socket.clone();
    let audit_checks = in_netns(&ns.db, async move || {
        let admin = options("127.0.0.1", SUPERUSER, &superuser_password, "postgres");
        let mut conn = admin.connect().await.unwrap();
        sqlx::raw_sql("CREATE DATABASE cabinet").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let url =
            DatabaseUrl::new(format!("postgres://{SUPERUSER}:{superuser_password}@127.0.0.1:{PORT}/cabinet"));
        runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
        let sources = PasswordSources { files: vec![], secrets_dir: Some(secrets_dir) };
        apply(&url, &Roles::default(), &sources).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
        sqlx::raw_sql("INSERT INTO sites (site_id, domain) VALUES ('acme', 'acme.example.com')")
            .execute(&mut conn)
            .await
            .unwrap();
        let options = AuditOptions {
            roles: Roles::default(),
            socket,
            socket_explicit: true,
            proc_root: PathBuf::from("/proc/thread-self"),
            secrets_dir: None,
            backup_config: PathBuf::from("/nonexistent/pgbackrest.conf"),
            panel_port: 8432,
            cluster_members: vec![],
        };
        audit::audit(&url, &MigrationSet::embedded().unwrap(), &options).await.unwrap()
    });
    let n8n_password =
        password::read(&secrets.path().join("cabinet_n8n.password")).unwrap().expose().to_owned();
    let admin_password =
        password::read(&secrets.path().join("cabinet_admin.password")).unwrap().expose().to_owned();

    // Assert 1: the audit of the rendered setup, run on the db host, passes every check (this
    // host has no backups set up: that alone is a warning; tests/it/backup.rs covers them).
    let failed: Vec<_> =
        audit_checks.iter().filter(|c| c.verdict != Verdict::Pass && c.id != "backup.configured").collect();
    assert!(failed.is_empty(), "{failed:#?}");

    // Assert 2: from the tailnet, n8n reads sites and nothing more; admin may not come from n8n's address.
    let (n8n, admin) = (n8n_password.clone(), admin_password.clone());
    let (sites, users_denied, admin_refused) = in_netns(&ns.tailnet, async move || {
        let mut conn = try_connect(options(DB_TAILNET_IP, "cabinet_n8n", &n8n, "cabinet"))
            .await
            .expect("n8n over the tailnet");
        let sites: i64 = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut conn).await.unwrap();
        let users = sqlx::query("SELECT * FROM users").execute(&mut conn).await.unwrap_err().to_string();
        let admin = try_connect(options(DB_TAILNET_IP, "cabinet_admin", &admin, "cabinet"))
            .await
            .err()
            .unwrap_or_default();
        (sites, users, admin)
    });
    assert_eq!(sites, 1);
    assert!(users_denied.contains("permission denied"), "{users_denied}");
    assert!(
        admin_refused.contains("pg_hba.conf rejects connection")
            || admin_refused.contains("no pg_hba.conf entry"),
        "{admin_refused}"
    );

    // Assert 3: from outside, nothing gets through.
    let n8n = n8n_password.clone();
    let (to_outside_address, to_tailnet_address) = in_netns(&ns.outside, async move || {
        let a = try_connect(options(DB_OUTSIDE_IP, "cabinet_n8n", &n8n, "cabinet")).await.err();
        let b = try_connect(options(DB_TAILNET_IP, "cabinet_n8n", &n8n, "cabinet")).await.err();
        (a, b)
    });
    let to_outside_address = to_outside_address.expect("the outside address must not accept connections");
    assert!(
        to_outside_address.contains("refused") || to_outside_address.contains("timed out"),
        "{to_outside_address}"
    );
    let to_tailnet_address =
        to_tailnet_address.expect("the tailnet address must not accept outside connections");
    if nft {
        assert!(to_tailnet_address.contains("timed out"), "nftables drops it: {to_tailnet_address}");
        // Without the firewall, pg_hba's final reject still refuses the outside address.
        sh(&["ip", "netns", "exec", &ns.db, "nft", "delete", "table", "inet", "cabinet_pg"]);
    }
    let n8n = n8n_password.clone();
    let by_hba = in_netns(&ns.outside, async move || {
        try_connect(options(DB_TAILNET_IP, "cabinet_n8n", &n8n, "cabinet")).await.err()
    })
    .expect("pg_hba must refuse the outside address");
    assert!(by_hba.contains("pg_hba.conf rejects connection"), "{by_hba}");
    drop(server);
}
