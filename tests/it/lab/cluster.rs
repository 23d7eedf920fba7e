//! A live cluster from `cluster render`'s files, in network namespaces joined by one switch:
//! db1 and db2 (PostgreSQL 15 from Debian + Patroni), a witness (etcd only; db1 and db2 run
//! etcd too), and a client running HAProxy. Only host-specific paths are moved into the test's
//! directory (the nodes share one filesystem here): data directories, sockets, etcd's data.
//!
//! Root only (CI runs as root); fails, never skips, without it or without the engines
//! (scripts/setup tests installs etcd, HAProxy and Patroni's virtualenv).

use std::{
    collections::{BTreeSet, HashMap},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use cabinet_db::{
    cluster::{
        ClusterSpec, Member, Ports, Timing,
        patroni::{PatroniApi, Survey},
        render,
    },
    roles::{RoleKind, Roles},
};
use sqlx::Connection;

use super::{
    Cleanup, Killed, add_namespaces, in_netns,
    load::{ANY_MEMBER_PORT, LEADER_PORT, Load, Seen, options, present},
    sh, tools_dir, veth,
};

const NODES: [(&str, &str); 2] = [("db1", "100.101.2.1"), ("db2", "100.101.2.2")];
const WITNESS: (&str, &str) = ("witness", "100.101.2.3");
const CLIENT_IP: &str = "100.101.2.9";

/// One live cluster at a time: they share namespace names and addresses, and two at once
/// on two cores would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Live {
    pub out: tempfile::TempDir,
    /// Namespace per host name (and "client").
    pub ns: HashMap<&'static str, String>,
    secrets: HashMap<String, String>,
    etcd: Vec<Killed>,
    patroni: HashMap<&'static str, Killed>,
    haproxy: Option<Killed>,
    _cleanup: Cleanup,
    // Last: released after everything above is stopped and removed.
    _turn: std::sync::MutexGuard<'static, ()>,
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
        .expect("the postgres user (scripts/setup tests creates it)");
    (user.uid, user.gid)
}

impl Live {
    /// The host's own directory (the hosts share one filesystem here).
    pub fn dir(&self, host: &str) -> PathBuf {
        self.out.path().join("hosts").join(host)
    }

    pub fn data_dir(&self, host: &str) -> PathBuf {
        self.dir(host).join("data")
    }

    pub fn exec_in(&self, host: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns[host]]);
        command
    }

    /// Builds the hosts, renders, starts etcd everywhere and Patroni on db1 then db2, and waits
    /// for a leader and a streaming synchronous standby.
    pub async fn start() -> Live {
        Live::start_with(false).await
    }

    /// The same, rendered with `--backups` when `backups`: each node's patroni.yml archives
    /// through the pgBackRest configuration in its own directory (`pgbackrest.conf`).
    pub async fn start_with(backups: bool) -> Live {
        let patroni_bin = tools_dir().join("patroni/bin/patroni");
        assert!(patroni_bin.exists(), "{} is missing: run scripts/setup tests", patroni_bin.display());
        // A test that failed while holding it leaves nothing running (Drop stopped it).
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
            backup_config: backups.then(|| cabinet_db::backup::config::DEFAULT_CONFIG.into()),
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
            _turn: turn,
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
                )
                .replace("/etc/cabinet-db/pgbackrest.", &format!("{}/pgbackrest.", dir.display()));
            std::fs::write(dir.join("patroni.yml"), yml).unwrap();
        }
        for (host, _) in NODES {
            live.start_patroni(host);
            if host == "db1" {
                live.wait_for("db1 to lead", Duration::from_secs(90), |s| {
                    s.view.leader().is_some_and(|l| l.state == "running")
                })
                .await;
            }
        }
        live.wait_for("a streaming synchronous standby", Duration::from_secs(120), |s| {
            !s.view.streaming_sync_standbys().is_empty()
        })
        .await;
        live
    }

    /// `kill -9` of a node's Patroni and PostgreSQL at once, as a crash would.
    pub fn kill_node(&mut self, host: &'static str) {
        let config = self.dir(host).join("patroni.yml");
        let pids = Command::new("pgrep")
            .arg("-f")
            .arg(format!("bin/patroni {}", config.display()))
            .output()
            .unwrap();
        let pids: Vec<i32> =
            String::from_utf8_lossy(&pids.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
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

    pub fn start_patroni(&mut self, host: &'static str) {
        let dir = self.dir(host);
        let log = std::fs::File::create(dir.join(format!("patroni-{}.log", self.patroni.len()))).unwrap();
        let mut command = self.exec_in(host);
        // setpriv execs Patroni in its own place (runuser forks and waits), so the child killed
        // when the test ends is Patroni itself: with runuser every live cluster left its two
        // Patroni processes running, looping against the removed hosts' etcd.
        let user = nix::unistd::User::from_name("postgres").unwrap().expect("the postgres user");
        command.args(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", "env"]);
        command.arg(format!("HOME={}", user.dir.display())).args(["USER=postgres", "LOGNAME=postgres"]);
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
    pub async fn survey(&self) -> Option<Survey> {
        let apis = self.api();
        in_netns(&self.ns["client"], async move || cabinet_db::cluster::patroni::survey(&apis).await.ok())
    }

    pub async fn wait_for(&self, what: &str, limit: Duration, ready: impl Fn(&Survey) -> bool) -> Survey {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(view) = self.survey().await
                && ready(&view)
            {
                return view;
            }
            if Instant::now() > deadline {
                let logs = self.logs();
                panic!("waited {limit:?} for {what}: {:?}\n{logs}", self.survey().await);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The host whose Patroni holds the leader key.
    pub async fn leader_host(&self) -> &'static str {
        let survey = self.survey().await.expect("a member answers");
        let leader = survey.view.leader().expect("a leader").name.clone();
        NODES.iter().map(|(n, _)| *n).find(|n| *n == leader).expect("a known node")
    }

    pub fn other_node(host: &str) -> &'static str {
        if host == "db1" { "db2" } else { "db1" }
    }

    pub fn ip(host: &str) -> &'static str {
        NODES.iter().chain([&WITNESS]).find(|(n, _)| *n == host).expect("a known host").1
    }

    /// On the leader, as an operator through its loopback: the database, `migrate up` and
    /// `roles apply`; then HAProxy on the client host from its rendered file. The login roles'
    /// passwords.
    pub async fn prepare(&mut self, leader: &'static str) -> Passwords {
        let secrets_dir = self.out.path().join("role-secrets");
        std::fs::create_dir_all(&secrets_dir).unwrap();
        let (url, db_url) = (self.superuser_url("postgres"), self.superuser_url("cabinet"));
        let roles_secrets = secrets_dir.clone();
        let report = in_netns(&self.ns[leader], async move || {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("CREATE DATABASE cabinet").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            let url = cabinet_db::db::DatabaseUrl::new(db_url);
            let set = cabinet_db::migrations::MigrationSet::embedded().unwrap();
            cabinet_db::migrations::runner::up(&url, &set, None, &Default::default()).await.unwrap();
            let sources = cabinet_db::roles::password::PasswordSources {
                files: vec![],
                secrets_dir: Some(roles_secrets),
            };
            cabinet_db::roles::apply::apply(&url, &Roles::default(), &sources).await.unwrap()
        });
        // Patroni created the rewind role at bootstrap; closing PUBLIC's door on `postgres`
        // must leave pg_rewind's open (a former leader rejoins through it).
        assert!(
            report.granted.iter().any(|g| g.contains("cabinet_rewind")),
            "roles apply did not keep pg_rewind's CONNECT: {:?}",
            report.granted
        );
        let password = |kind: RoleKind| {
            cabinet_db::roles::password::read(
                &secrets_dir.join(format!("{}.password", Roles::default().name(kind))),
            )
            .unwrap()
            .expose()
            .to_owned()
        };
        let passwords = Passwords { admin: password(RoleKind::Admin), n8n: password(RoleKind::N8n) };

        let haproxy_log = std::fs::File::create(self.out.path().join("haproxy.log")).unwrap();
        let haproxy = self
            .exec_in("client")
            .args(["haproxy", "-db", "-f"])
            .arg(self.out.path().join("rendered/clients/haproxy.cfg"))
            .stdout(haproxy_log.try_clone().unwrap())
            .stderr(haproxy_log)
            .spawn()
            .expect("haproxy (scripts/setup tests installs it)");
        self.haproxy = Some(Killed(haproxy));
        // HAProxy counts every server up until its checks fail twice (`fall 2`, 1 s apart):
        // until then the leader frontend may pass a connection to the standby (whose writes
        // fail read-only). Wait for the standby to be marked down there.
        let standby_down = format!("Server cabinet_leader/{} is DOWN", Live::other_node(leader));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(self.out.path().join("haproxy.log"))
            .unwrap_or_default()
            .contains(&standby_down)
        {
            assert!(
                Instant::now() < deadline,
                "HAProxy never marked the standby down on the leader frontend"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        passwords
    }

    /// `cabinet-db ARGS` on `host`, with `env`.
    pub fn cabinet(&self, host: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut command = self.exec_in(host);
        command.arg(env!("CARGO_BIN_EXE_cabinet-db")).args(args).env("CABINET_CONFIG", super::NO_CONFIG);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    /// From the client host: a writer as `cabinet_admin` through HAProxy's leader port and an
    /// n8n-like reader as `cabinet_n8n` through its any-member port.
    pub fn load(&self, prefix: &str, passwords: &Passwords) -> Load {
        Load::start(
            &self.ns["client"],
            prefix,
            options(LEADER_PORT, "cabinet_admin", &passwords.admin),
            Some(options(ANY_MEMBER_PORT, "cabinet_n8n", &passwords.n8n)),
        )
    }

    /// Under `writes`, `kill -9` of `host`'s Patroni and PostgreSQL; waits (up to `limit`) for
    /// the first write begun after it to be acknowledged, lets the load run a moment longer,
    /// and returns that time and what the load saw.
    pub async fn kill_under_load(
        &mut self,
        host: &'static str,
        writes: Load,
        limit: Duration,
    ) -> (Duration, Seen) {
        self.kill_node(host);
        writes.fault();
        let took = writes.recovered(limit, async || format!("{:?}", self.survey().await)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (took, writes.finish())
    }

    /// `cabinet-db cluster switchover --to host` from the client host; returns once `host`
    /// leads and runs, with the time that took.
    pub async fn switchover_to(&self, host: &str) -> Duration {
        let started = Instant::now();
        let mut args =
            vec!["cluster".to_owned(), "switchover".into(), "--to".into(), host.into(), "--secrets".into()];
        args.push(self.out.path().join("rendered").join(render::SECRETS_FILE).display().to_string());
        args.extend(Live::member_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let switched = self.cabinet("client", &args, &[]);
        assert!(
            switched.status.success(),
            "{}{}",
            String::from_utf8_lossy(&switched.stdout),
            String::from_utf8_lossy(&switched.stderr)
        );
        self.wait_for("the switchover", Duration::from_secs(30), |s| {
            s.view.leader().is_some_and(|l| l.name == host && l.state == "running")
        })
        .await;
        started.elapsed()
    }

    /// The numbers of the rows `<prefix><n>` on the leader, read through HAProxy.
    pub async fn on_leader(&self, passwords: &Passwords, prefix: &str) -> BTreeSet<u64> {
        let (admin, prefix) = (passwords.admin.clone(), prefix.to_owned());
        in_netns(&self.ns["client"], async move || {
            present(&options(LEADER_PORT, "cabinet_admin", &admin), &prefix).await
        })
    }

    /// The members' REST APIs as `--member` arguments.
    pub fn member_args() -> Vec<String> {
        NODES.iter().flat_map(|(_, ip)| ["--member".to_owned(), format!("{ip}:8008")]).collect()
    }

    /// Cuts `host` off the network (its link down), as a failed switch port or cable would.
    pub fn cut(&self, host: &str) {
        sh(&["ip", "-n", &self.ns[host], "link", "set", "tailscale0", "down"]);
    }

    pub fn reconnect(&self, host: &str) {
        sh(&["ip", "-n", &self.ns[host], "link", "set", "tailscale0", "up"]);
    }

    /// Waits until every member is healthy as `cluster status` judges (a running leader, a
    /// streaming synchronous standby, no lag, nothing stopped or paused), all on one timeline.
    pub async fn wait_healthy(&self, what: &str, limit: Duration) -> Survey {
        self.wait_for(what, limit, |s| {
            let timelines: BTreeSet<Option<u64>> = s.view.members.iter().map(|m| m.timeline).collect();
            s.view.members.len() == NODES.len()
                && s.problems(cabinet_db::cluster::patroni::DEFAULT_MAX_LAG_BYTES).is_empty()
                && timelines.len() == 1
        })
        .await
    }

    /// The last lines of every node's Patroni and etcd logs.
    pub fn logs(&self) -> String {
        NODES
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
            .collect()
    }

    /// A superuser connection to `host`'s PostgreSQL over its loopback, from its namespace.
    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:5432/{database}",
            self.secrets["PATRONI_SUPERUSER_PASSWORD"]
        )
    }
}

pub struct Passwords {
    pub admin: String,
    pub n8n: String,
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
