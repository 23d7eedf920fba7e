use std::process::{Command, Output};

/// A cluster as `apt install postgresql` makes them (configuration under /etc/postgresql, data
/// under /var/lib/postgresql, run by the `postgres` user), dropped with its data when dropped.
pub struct DebianCluster {
    pub version: String,
    pub name: String,
}

/// Runs a command; panics with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl DebianCluster {
    /// Creates and starts `NAME` with the newest server Debian installed, after dropping one of
    /// that name that an earlier, killed run left.
    pub fn create(name: &str, port: u16) -> DebianCluster {
        Self::create_in(name, port, None)
    }

    /// The same, started inside a network namespace (where it binds the namespace's addresses).
    pub fn create_in(name: &str, port: u16, namespace: Option<&str>) -> DebianCluster {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the package tests install a .deb and create a Debian cluster: run scripts/test as root (CI does)"
        );
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL (scripts/setup tests installs it)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|v| v.parse::<u32>().is_ok())
            .max_by_key(|v| v.parse::<u32>().unwrap())
            .expect("a server under /usr/lib/postgresql");
        drop_cluster(&version, name);
        let port_text = port.to_string();
        run("pg_createcluster", &["--port", &port_text, &version, name]);
        let cluster = DebianCluster { version, name: name.to_owned() };
        match namespace {
            Some(ns) => run("ip", &["netns", "exec", ns, "pg_ctlcluster", &cluster.version, name, "start"]),
            None => run("pg_ctlcluster", &[&cluster.version, name, "start"]),
        };
        cluster
    }

    /// psql as the cluster's owner over the socket (the library's own way, as `host apply` asks):
    /// the rows, unaligned and tuples only.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let cluster = cabinet_db::host::debian::PgCluster::find(Some(&self.id())).unwrap();
        cluster.psql(database, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        format!("/var/lib/postgresql/{}/{}", self.version, self.name).into()
    }

    /// `15/main`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.version, self.name)
    }

    pub fn is_online(&self) -> bool {
        let out = Command::new("pg_ctlcluster").args([&self.version, &self.name, "status"]).output().unwrap();
        out.status.success()
    }
}

/// pg_dropcluster leaves a configuration directory holding files it did not make (host apply's
/// conf.d drop-in): those go too, so the next cluster of the name starts from Debian's files.
fn drop_cluster(version: &str, name: &str) {
    let _ = Command::new("pg_dropcluster").args(["--stop", version, name]).output();
    for root in ["/etc/postgresql", "/var/lib/postgresql"] {
        let _ = std::fs::remove_dir_all(std::path::Path::new(root).join(version).join(name));
    }
}

impl Drop for DebianCluster {
    fn drop(&mut self) {
        drop_cluster(&self.version, &self.name);
    }
}
