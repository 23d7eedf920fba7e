//! A live cluster from `cluster render`'s files, in network namespaces joined by one switch:
//! db1 and db2 (PostgreSQL 15 from Debian + Patroni), a witness (etcd only; db1 and db2 run
//! etcd too), and a client running HAProxy. Only host-specific paths are moved into the test's
//! directory (the nodes share one filesystem here): data directories, sockets, etcd's data.
//!
//! Root only (CI runs as root); fails, never skips, without it or without the engines
//! (scripts/setup installs etcd, HAProxy and Patroni's virtualenv).

use std::{
    collections::{BTreeSet, HashMap},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cabinet_db::{
    cluster::{
        ClusterSpec, Member, Ports, Timing,
        patroni::{ClusterView, PatroniApi},
        render,
    },
    roles::{RoleKind, Roles},
};
use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};

use super::{Cleanup, Killed};
use crate::{
    harness::{stderr, stdout, tools_dir},
    netns::{add_namespaces, in_netns, sh, veth},
};

const NODES: [(&str, &str); 2] = [("db1", "100.101.2.1"), ("db2", "100.101.2.2")];
const WITNESS: (&str, &str) = ("witness", "100.101.2.3");
const CLIENT_IP: &str = "100.101.2.9";

struct Live {
    out: tempfile::TempDir,
    /// Namespace per host name (and "client").
    ns: HashMap<&'static str, String>,
    secrets: HashMap<String, String>,
    etcd: Vec<Killed>,
    patroni: HashMap<&'static str, Killed>,
    haproxy: Option<Killed>,
    _cleanup: Cleanup,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.haproxy.take();
        self.patroni.clear();
        // Patroni's PostgreSQL outlives a killed Patroni: stop it by its pid file.
        for (name, _) in NODES {
            kill_postmaster(&self.data_dir(name), nix::sys::signal::Signal::SIGKILL);
        }
        self.etcd.clear();
    }
}

fn kill_postmaster(data_dir: &Path, signal: nix::sys::signal::Signal) -> bool {
    let Ok(pid_file) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else { return false };
    let Some(pid) = pid_file.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return false };
    let killed = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).is_ok();
    // Its children too, as when the host dies: a backend whose postmaster is gone may still
    // finish the statement it is running.
    let _ = Command::new("pkill").args([&format!("-{}", signal as i32), "-P", &pid.to_string()]).output();
    killed
}

fn postgres_ids() -> (nix::unistd::Uid, nix::unistd::Gid) {
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("the postgres user (scripts/setup creates it)");
    (user.uid, user.gid)
}

impl Live {
    fn dir(&self, host: &str) -> PathBuf {
        self.out.path().join("hosts").join(host)
    }

    fn data_dir(&self, host: &str) -> PathBuf {
        self.dir(host).join("data")
    }

    fn exec_in(&self, host: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns[host]]);
        command
    }

    /// Builds the hosts, renders, starts etcd everywhere and Patroni on db1 then db2, and waits
    /// for a leader and a streaming synchronous standby.
    async fn start() -> Live {
        let patroni_bin = tools_dir().join("patroni/bin/patroni");
        assert!(patroni_bin.exists(), "{} is missing: run scripts/setup", patroni_bin.display());
        let names = add_namespaces("the live cluster test", ["hs", "h1", "h2", "hw", "hc"]);
        let [switch, n1, n2, nw, nc] = names.clone();
        let cleanup = Cleanup(names.to_vec());
        sh(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        let mut ns = HashMap::new();
        for (host, namespace, ip) in [
            ("db1", &n1, NODES[0].1),
            ("db2", &n2, NODES[1].1),
            ("witness", &nw, WITNESS.1),
            ("client", &nc, CLIENT_IP),
        ] {
            let port = format!("sw-{host}");
            veth(namespace, "tailscale0", &switch, &port);
            sh(&["ip", "-n", &switch, "link", "set", &port, "master", "br0"]);
            sh(&["ip", "-n", &switch, "link", "set", &port, "up"]);
            sh(&["ip", "-n", namespace, "addr", "add", &format!("{ip}/24"), "dev", "tailscale0"]);
            sh(&["ip", "-n", namespace, "link", "set", "tailscale0", "up"]);
            ns.insert(host, namespace.clone());
        }

        let out = tempfile::Builder::new().prefix("cabinet-live-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = ClusterSpec {
            scope: "cabinet".into(),
            nodes: NODES.iter().map(|(n, ip)| Member::parse(&format!("{n}={ip}")).unwrap()).collect(),
            witness: Some(Member::parse(&format!("{}={}", WITNESS.0, WITNESS.1)).unwrap()),
            ports: Ports::default(),
            timing: Timing::default(),
            data_dir: "/var/lib/postgresql/15/cabinet".into(),
            bin_dir: "/usr/lib/postgresql/15/bin".into(),
            patroni_dir: tools_dir().join("patroni"),
            database: "cabinet".into(),
            roles: Roles::default(),
        };
        let rendered = out.path().join("rendered");
        render::write(&rendered, &spec).unwrap();
        let secrets: HashMap<String, String> = std::fs::read_to_string(rendered.join(render::SECRETS_FILE))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut live = Live {
            out,
            ns,
            secrets,
            etcd: vec![],
            patroni: HashMap::new(),
            haproxy: None,
            _cleanup: cleanup,
        };
        let (uid, gid) = postgres_ids();
        for host in ["db1", "db2", "witness"] {
            let dir = live.dir(host);
            std::fs::create_dir_all(dir.join("etcd")).unwrap();
            let conf = std::fs::read_to_string(rendered.join(host).join("etcd.conf.yml")).unwrap().replace(
                "data-dir: /var/lib/cabinet-db/etcd",
                &format!("data-dir: {}", dir.join("etcd").display()),
            );
            std::fs::write(dir.join("etcd.conf.yml"), conf).unwrap();
            let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
            let child = live
                .exec_in(host)
                .args(["etcd", "--config-file"])
                .arg(dir.join("etcd.conf.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            live.etcd.push(Killed(child));
        }
        // etcd first (as the units order it), so Patroni's first look finds a quorum.
        live.wait_for_etcd().await;
        for (host, _) in NODES {
            let dir = live.dir(host);
            for sub in ["", "sock"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
                nix::unistd::chown(&dir.join(sub), Some(uid), Some(gid)).unwrap();
            }
            let yml = std::fs::read_to_string(rendered.join(host).join("patroni.yml"))
                .unwrap()
                .replace(
                    "data_dir: /var/lib/postgresql/15/cabinet",
                    &format!("data_dir: {}", live.data_dir(host).display()),
                )
                .replace(
                    "pgpass: /var/lib/postgresql/15/cabinet.pgpass",
                    &format!("pgpass: {}", dir.join("pgpass").display()),
                )
                .replace(
                    "unix_socket_directories: /var/run/postgresql",
                    &format!("unix_socket_directories: {}", dir.join("sock").display()),
                );
            std::fs::write(dir.join("patroni.yml"), yml).unwrap();
        }
        for (host, _) in NODES {
            live.start_patroni(host);
            if host == "db1" {
                live.wait_for("db1 to lead", Duration::from_secs(90), |v| {
                    v.leader().is_some_and(|l| l.state == "running")
                })
                .await;
            }
        }
        live.wait_for("a streaming synchronous standby", Duration::from_secs(120), |v| {
            !v.streaming_sync_standbys().is_empty()
        })
        .await;
        live
    }

    /// `kill -9` of a node's Patroni and PostgreSQL at once, as a crash would.
    fn kill_node(&mut self, host: &'static str) {
        let config = self.dir(host).join("patroni.yml");
        let pids = Command::new("pgrep")
            .arg("-f")
            .arg(format!("bin/patroni {}", config.display()))
            .output()
            .unwrap();
        let pids: Vec<i32> = stdout(&pids).lines().filter_map(|l| l.trim().parse().ok()).collect();
        assert!(!pids.is_empty(), "no Patroni process of {host}");
        for pid in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        assert!(
            kill_postmaster(&self.data_dir(host), nix::sys::signal::Signal::SIGKILL),
            "no postmaster to kill"
        );
        self.patroni.remove(host);
    }

    async fn wait_for_etcd(&self) {
        let endpoints = "http://100.101.2.1:2379,http://100.101.2.2:2379,http://100.101.2.3:2379";
        for _ in 0..150 {
            let health = self
                .exec_in("client")
                .args(["etcdctl", "--endpoints", endpoints, "endpoint", "health"])
                .env("ETCDCTL_API", "3")
                .output()
                .unwrap();
            if health.status.success() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the etcd members never became healthy");
    }

    fn start_patroni(&mut self, host: &'static str) {
        let dir = self.dir(host);
        let log = std::fs::File::create(dir.join(format!("patroni-{}.log", self.patroni.len()))).unwrap();
        let mut command = self.exec_in(host);
        command.args(["runuser", "-u", "postgres", "--", "env"]);
        for (key, value) in &self.secrets {
            command.arg(format!("{key}={value}"));
        }
        let child = command
            .arg(tools_dir().join("patroni/bin/patroni"))
            .arg(dir.join("patroni.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.patroni.insert(host, Killed(child));
    }

    fn api(&self) -> Vec<PatroniApi> {
        NODES.iter().map(|(_, ip)| PatroniApi::new(format!("{ip}:8008"))).collect()
    }

    /// The cluster as seen from the client host.
    async fn view(&self) -> Option<ClusterView> {
        let apis = self.api();
        in_netns(&self.ns["client"], async move || {
            cabinet_db::cluster::patroni::first_answer(&apis).await.ok().map(|(_, v)| v)
        })
    }

    async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&ClusterView) -> bool,
    ) -> ClusterView {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(view) = self.view().await
                && ready(&view)
            {
                return view;
            }
            if Instant::now() > deadline {
                let logs: String = NODES
                    .iter()
                    .flat_map(|(h, _)| std::fs::read_dir(self.dir(h)).unwrap().flatten())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                    .map(|e| {
                        format!(
                            "--- {}\n{}",
                            e.path().display(),
                            tail(&std::fs::read_to_string(e.path()).unwrap_or_default())
                        )
                    })
                    .collect();
                panic!("waited {limit:?} for {what}: {:?}\n{logs}", self.view().await);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A superuser connection to `host`'s PostgreSQL over its loopback, from its namespace.
    fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:5432/{database}",
            self.secrets["PATRONI_SUPERUSER_PASSWORD"]
        )
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn options(port: u16, role: &str, password: &str) -> PgConnectOptions {
    PgConnectOptions::new().host("127.0.0.1").port(port).username(role).password(password).database("cabinet")
}

#[tokio::test]
async fn a_switchover_and_a_killed_leader_lose_no_acknowledged_commit_and_reads_go_on() {
    let mut live = Live::start().await;
    let view = live.view().await.unwrap();
    let leader = view.leader().unwrap().name.clone();
    let leader_host: &'static str = if leader == "db1" { "db1" } else { "db2" };

    // Schema and roles on the leader, as an operator would through its loopback.
    let secrets_dir = live.out.path().join("role-secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let (url, db_url) = (live.superuser_url("postgres"), live.superuser_url("cabinet"));
    let roles_secrets = secrets_dir.clone();
    in_netns(&live.ns[leader_host], async move || {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("CREATE DATABASE cabinet").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let url = cabinet_db::db::DatabaseUrl::new(db_url);
        let set = cabinet_db::migrations::MigrationSet::embedded().unwrap();
        cabinet_db::migrations::runner::up(&url, &set, None, &Default::default()).await.unwrap();
        let sources =
            cabinet_db::roles::password::PasswordSources { files: vec![], secrets_dir: Some(roles_secrets) };
        cabinet_db::roles::apply::apply(&url, &Roles::default(), &sources).await.unwrap();
    });
    let password = |kind: RoleKind| {
        cabinet_db::roles::password::read(
            &secrets_dir.join(format!("{}.password", Roles::default().name(kind))),
        )
        .unwrap()
        .expose()
        .to_owned()
    };
    let (admin_password, n8n_password) = (password(RoleKind::Admin), password(RoleKind::N8n));

    // HAProxy on the client host, from its rendered file.
    let haproxy_log = std::fs::File::create(live.out.path().join("haproxy.log")).unwrap();
    let haproxy = live
        .exec_in("client")
        .args(["haproxy", "-db", "-f"])
        .arg(live.out.path().join("rendered/clients/haproxy.cfg"))
        .stdout(haproxy_log.try_clone().unwrap())
        .stderr(haproxy_log)
        .spawn()
        .expect("haproxy (scripts/setup installs it)");
    live.haproxy = Some(Killed(haproxy));

    // `cluster status` from the client host: healthy.
    let status = live
        .exec_in("client")
        .arg(env!("CARGO_BIN_EXE_cabinet-db"))
        .args(["--json", "cluster", "status", "--member", "100.101.2.1:8008", "--member", "100.101.2.2:8008"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}{}", stdout(&status), stderr(&status));
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["members"].as_array().unwrap().len(), 2);

    // Writers refuse a standby, naming the leader it follows; nothing is changed there.
    let standby_host: &'static str = if leader_host == "db1" { "db2" } else { "db1" };
    let leader_ip = NODES.iter().find(|(n, _)| *n == leader_host).unwrap().1;
    let on_standby = live.superuser_url("cabinet");
    for args in [
        vec!["migrate", "up"],
        vec!["roles", "apply"],
        vec!["serve", "--dev-identity", "dev@example.com=admin", "--listen", "127.0.0.1:18432"],
    ] {
        let run = live
            .exec_in(standby_host)
            .arg(env!("CARGO_BIN_EXE_cabinet-db"))
            .args(&args)
            .env("DATABASE_URL", &on_standby)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(stderr(&run).contains("read-only standby"), "{args:?}: {}", stderr(&run));
        assert!(
            stderr(&run).contains(&format!("following the leader at {leader_ip}:5432")),
            "{args:?}: {}",
            stderr(&run)
        );
    }

    // A writer through the leader frontend records what was acknowledged; a reader through the
    // any-member frontend (n8n's path) records its longest gap.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let unknown = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let first_ack_after_kill = Arc::new(Mutex::new(None::<Instant>));
    let writer = {
        let (acked, unknown, stop, killed_at, first) =
            (acked.clone(), unknown.clone(), stop.clone(), killed_at.clone(), first_ack_after_kill.clone());
        let (ns, admin_password) = (live.ns["client"].clone(), admin_password.clone());
        std::thread::spawn(move || {
            in_netns(&ns, async move || {
                let mut n = 0u64;
                let mut conn = None;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = options(5432, "cabinet_admin", &admin_password).connect().await.ok();
                        if conn.is_none() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                    n += 1;
                    let started = Instant::now();
                    let result = sqlx::query("INSERT INTO sites (site_id, domain) VALUES ($1, $2)")
                        .bind(format!("w{n}"))
                        .bind(format!("w{n}.example.com"))
                        .execute(conn.as_mut().unwrap())
                        .await;
                    match result {
                        Ok(_) => {
                            acked.lock().unwrap().insert(n);
                            // The first write begun after the kill that went through.
                            if killed_at.lock().unwrap().is_some_and(|k| started > k) {
                                first.lock().unwrap().get_or_insert_with(Instant::now);
                            }
                        }
                        // The acknowledgement may have been lost, not the commit: unknown.
                        Err(_) => {
                            unknown.lock().unwrap().insert(n);
                            conn = None;
                        }
                    }
                }
            })
        })
    };
    let longest_read_gap = Arc::new(Mutex::new(Duration::ZERO));
    let reader = {
        let (stop, gap) = (stop.clone(), longest_read_gap.clone());
        let (ns, n8n_password) = (live.ns["client"].clone(), n8n_password.clone());
        std::thread::spawn(move || {
            in_netns(&ns, async move || {
                let mut last_ok = Instant::now();
                let mut conn = None;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = options(5433, "cabinet_n8n", &n8n_password).connect().await.ok();
                    }
                    let ok = match conn.as_mut() {
                        Some(c) => sqlx::query("SELECT site_id, domain FROM sites LIMIT 1")
                            .fetch_all(c)
                            .await
                            .is_ok(),
                        None => false,
                    };
                    if ok {
                        let mut g = gap.lock().unwrap();
                        *g = (*g).max(last_ok.elapsed());
                        last_ok = Instant::now();
                    } else {
                        conn = None;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
    };

    // Writes flow.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 200 {
        assert!(
            Instant::now() < deadline,
            "the writer never got going: {}",
            std::fs::read_to_string(live.out.path().join("haproxy.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A planned switchover to the standby, under the same load.
    let switched = Instant::now();
    let switch = live
        .exec_in("client")
        .arg(env!("CARGO_BIN_EXE_cabinet-db"))
        .args([
            "cluster",
            "switchover",
            "--member",
            "100.101.2.1:8008",
            "--member",
            "100.101.2.2:8008",
            "--to",
            standby_host,
            "--secrets",
        ])
        .arg(live.out.path().join("rendered").join(render::SECRETS_FILE))
        .output()
        .unwrap();
    assert!(switch.status.success(), "{}{}", stdout(&switch), stderr(&switch));
    live.wait_for("the switchover", Duration::from_secs(30), |v| {
        v.leader().is_some_and(|l| l.name == standby_host && l.state == "running")
    })
    .await;
    let switchover_time = switched.elapsed();
    live.wait_for("the old leader to follow", Duration::from_secs(60), |v| {
        !v.streaming_sync_standbys().is_empty()
    })
    .await;
    let before = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < before + 200 {
        assert!(Instant::now() < deadline, "writes did not resume after the switchover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("switchover: `cluster switchover` to a running new leader in {switchover_time:?}");
    assert!(switchover_time <= Duration::from_secs(10), "switchover took {switchover_time:?}");
    let (leader, leader_host) = (standby_host.to_owned(), standby_host);

    // Then the leader's Patroni and PostgreSQL die at once.
    live.kill_node(leader_host);
    let killed = Instant::now();
    *killed_at.lock().unwrap() = Some(killed);

    let deadline = Instant::now() + Duration::from_secs(60);
    while first_ack_after_kill.lock().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "no write went through within 60 s of the kill: {:?}",
            live.view().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    reader.join().unwrap();
    let failover = first_ack_after_kill.lock().unwrap().unwrap() - killed;
    let gap = *longest_read_gap.lock().unwrap();
    eprintln!("failover: first acknowledged write {failover:?} after the kill; longest read gap {gap:?}");
    assert!(failover <= Duration::from_secs(20 + 3 + 5), "failover took {failover:?} (ttl 20 s)");

    // Every acknowledged commit is on the new leader; unknown ones may be either way.
    let new_view = live.view().await.unwrap();
    let new_leader = new_view.leader().unwrap().name.clone();
    assert_ne!(new_leader, leader);
    let admin = admin_password.clone();
    let present: BTreeSet<u64> = in_netns(&live.ns["client"], async move || {
        let mut conn = options(5432, "cabinet_admin", &admin).connect().await.unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT site_id FROM sites WHERE site_id LIKE 'w%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        ids.iter().filter_map(|id| id[1..].parse().ok()).collect()
    });
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<&u64> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "{} acknowledged commits lost: {lost:?}", lost.len());
    eprintln!("{} acknowledged, {} unknown, 0 lost", acked.len(), unknown.lock().unwrap().len());
}
