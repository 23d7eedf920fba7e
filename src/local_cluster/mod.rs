//! A private PostgreSQL cluster built from the machine's server binaries: the one-command
//! development database (`cabinet-db dev`) and the test harness both run on it.
//!
//! Layout under the cluster's root directory:
//! `pgdata/` (the cluster, owned by the server user), `run/` (its unix socket),
//! `log/postgres.log`, `superuser.password` (0600, owned by whoever ran `dev up`).

/// Locating `initdb`, `pg_ctl` and `postgres`.
pub(crate) mod binaries;
/// What a private cluster fails with.
mod error;
/// Running the server as an unprivileged user when we are root.
pub(crate) mod run_as;

use std::{
    fs,
    io::Write,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Output,
};

pub use binaries::PgBinaries;
pub(crate) use error::ClusterError;
pub use run_as::RunAs;

use crate::db::DatabaseUrl;

/// Client authentication of a local cluster: on the socket, the OS user that runs the server
/// may be the superuser without a password (as `local all postgres peer` on a Debian server:
/// pgBackRest connects that way); everyone else needs a SCRAM password; loopback only, and the
/// final reject the audit requires of every server.
pub(crate) fn local_pg_hba(superuser: &str) -> String {
    format!(
        "# Managed by cabinet-db: a loopback-only development/test cluster.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       {superuser:<9}           peer map=server
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
host    all       all   0.0.0.0/0     reject
host    all       all   ::/0          reject
"
    )
}

/// The `server` map of `local_pg_hba`: only the server's own OS user.
fn local_pg_ident(os_user: &str, superuser: &str) -> String {
    format!(
        "# Managed by cabinet-db.\n# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\nserver     {os_user}  {superuser}\n"
    )
}

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECS: u32 = 60;

/// A cluster under one root directory.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    pub root: PathBuf,
    pub port: u16,
    pub binaries: PgBinaries,
    pub run_as: RunAs,
}

/// Settings written to `pgdata/cabinet.conf` (included from `postgresql.conf`).
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    pub port: u16,
    /// `false` for throw-away test clusters: no fsync, no full-page writes.
    pub durable: bool,
}

impl LocalCluster {
    /// A cluster run by the binaries `PgBinaries::locate` finds.
    pub fn new(root: PathBuf, port: u16) -> Result<Self, ClusterError> {
        Self::with_binaries(root, port, PgBinaries::locate()?)
    }

    pub(crate) fn with_binaries(
        root: PathBuf,
        port: u16,
        binaries: PgBinaries,
    ) -> Result<Self, ClusterError> {
        Ok(LocalCluster { root, port, binaries, run_as: RunAs::detect()? })
    }

    pub fn pgdata(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("log").join("postgres.log")
    }

    pub(crate) fn password_file(&self) -> PathBuf {
        self.root.join("superuser.password")
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.pgdata().join("PG_VERSION").is_file()
    }

    /// `initdb` with a generated superuser password (stored 0600 in the root directory).
    pub fn init(&self, superuser: &str, settings: ServerSettings) -> Result<(), ClusterError> {
        for dir in [self.root.clone(), self.root.join("log"), self.socket_dir()] {
            make_dir(&dir, 0o755)?;
        }
        make_dir(&self.pgdata(), 0o700)?;
        for dir in [self.pgdata(), self.root.join("log"), self.socket_dir()] {
            self.run_as.hand_over(&dir)?;
        }
        let password = crate::roles::password::Password::generate();
        let password = password.expose();
        write_secret(&self.password_file(), password)?;
        // initdb reads the password from a file the server user can read; it lives only
        // for the duration of initdb.
        let pwfile = self.root.join(".initdb-pwfile");
        write_secret(&pwfile, password)?;
        self.run_as.hand_over(&pwfile)?;
        let mut initdb = self.run_as.command(&self.binaries.tool("initdb"));
        initdb
            .arg("--pgdata")
            .arg(self.pgdata())
            .args(["--username", superuser, "--auth", "scram-sha-256", "--encoding", "UTF8"])
            .args(["--locale", "C.UTF-8", "--no-instructions", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(&mut initdb, "initdb");
        let _ = fs::remove_file(&pwfile);
        result.map_err(|e| self.with_access_hint(e))?;

        let conf = self.pgdata().join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|source| ClusterError::Io { action: format!("open {}", conf.display()), source })?;
        file.write_all(b"\n# Written by cabinet-db: its settings live in cabinet.conf.\ninclude_if_exists = 'cabinet.conf'\n")
            .map_err(|source| ClusterError::Io { action: format!("write {}", conf.display()), source })?;
        self.write_client_authentication(superuser)?;
        self.write_settings(settings)
    }

    /// (Re)writes `pg_hba.conf` and `pg_ident.conf`; takes effect at the next start or reload.
    pub(crate) fn write_client_authentication(&self, superuser: &str) -> Result<(), ClusterError> {
        for (name, contents) in [
            ("pg_hba.conf", local_pg_hba(superuser)),
            ("pg_ident.conf", local_pg_ident(&self.run_as.user_name(), superuser)),
        ] {
            let path = self.pgdata().join(name);
            fs::write(&path, contents)
                .map_err(|source| ClusterError::Io { action: format!("write {}", path.display()), source })?;
            self.run_as.hand_over(&path)?;
        }
        Ok(())
    }

    /// (Re)writes `cabinet.conf`; takes effect at the next start.
    pub fn write_settings(&self, settings: ServerSettings) -> Result<(), ClusterError> {
        let mut conf = format!(
            "# Managed by cabinet-db; rewritten by every `dev up`.\n\
             # Loopback only: this is a development/test cluster, never a tailnet server.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             password_encryption = 'scram-sha-256'\n\
             max_connections = 100\n",
            settings.port,
            self.socket_dir().display()
        );
        if !settings.durable {
            conf.push_str("# Throw-away test cluster: durability off for speed.\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.pgdata().join("cabinet.conf");
        fs::write(&path, conf)
            .map_err(|source| ClusterError::Io { action: format!("write {}", path.display()), source })?;
        self.run_as.hand_over(&path)
    }

    pub fn start(&self) -> Result<(), ClusterError> {
        let mut pg_ctl = self.pg_ctl("start");
        pg_ctl.arg("--log").arg(self.log_file()).args([
            "--wait",
            "--timeout",
            &PG_CTL_WAIT_SECS.to_string(),
            "--silent",
        ]);
        run(&mut pg_ctl, "pg_ctl start").map(drop).map_err(|e| match e {
            ClusterError::Tool { action, output, .. } => ClusterError::Tool {
                action,
                hint: format!(
                    "\nserver log ({}):\n{}\nhint: if the port is in use, pick another with --port",
                    self.log_file().display(),
                    tail(&self.log_file(), 15)
                ),
                output,
            },
            other => other,
        })
    }

    /// `mode`: `fast` (roll back sessions, shut down cleanly) or `immediate`.
    pub fn stop(&self, mode: &str) -> Result<(), ClusterError> {
        let mut pg_ctl = self.pg_ctl("stop");
        pg_ctl.args(["--mode", mode, "--wait", "--timeout", &PG_CTL_WAIT_SECS.to_string(), "--silent"]);
        run(&mut pg_ctl, "pg_ctl stop").map(drop)
    }

    pub fn is_running(&self) -> bool {
        self.pg_ctl("status").output().is_ok_and(|o| o.status.success())
    }

    fn pg_ctl(&self, action: &str) -> std::process::Command {
        let mut command = self.run_as.command(&self.binaries.tool("pg_ctl"));
        command.arg(action).arg("--pgdata").arg(self.pgdata());
        command
    }

    pub fn superuser_password(&self) -> Result<String, ClusterError> {
        let path = self.password_file();
        fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|source| ClusterError::Io { action: format!("read {}", path.display()), source })
    }

    pub fn url(&self, user: &str, password: &str, database: &str) -> DatabaseUrl {
        DatabaseUrl::from_parts(user, password, "127.0.0.1", self.port, database)
    }

    fn with_access_hint(&self, error: ClusterError) -> ClusterError {
        match (error, &self.run_as) {
            (ClusterError::Tool { action, output, .. }, RunAs::User { name, .. }) => ClusterError::Tool {
                action,
                output,
                hint: format!(
                    "hint: PostgreSQL runs as {name}; every parent directory of {} must be searchable by that user (choose a --data-dir under /var/lib or /tmp)",
                    self.root.display()
                ),
            },
            (other, _) => other,
        }
    }
}

fn run(command: &mut std::process::Command, action: &str) -> Result<Output, ClusterError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|source| ClusterError::Spawn { program, source })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Tool {
            action: action.to_owned(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            hint: String::new(),
        })
    }
}

fn write_secret(path: &Path, contents: &str) -> Result<(), ClusterError> {
    crate::atomic_file::write_private(path, contents)
        .map_err(|source| ClusterError::Io { action: format!("write {}", path.display()), source })
}

fn make_dir(path: &Path, mode: u32) -> Result<(), ClusterError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| ClusterError::Io { action: format!("create {}", path.display()), source })
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
