//! The steps of `host apply`, in order. Each reports what it changed (nothing, on a host already
//! as designed); the first that fails stops the run, and the failure says what was done, what
//! was not, and how to resume (run it again: what is done is not done twice).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{
    HostError,
    debian::{PgCluster, run},
    files::{Change, Desired, Effect, FIREWALL_FILE, POSTGRESQL_DROPIN, local_hba_rules, with_local_rules},
};
use crate::{
    audit::{self, AuditOptions, Verdict},
    backup::{self, config::BackupConfig, setup::SetupOptions},
    db::{self, DatabaseUrl},
    migrations::{MigrationSet, runner},
    roles::{Roles, password::PasswordSources},
    tailnet::{
        localapi::LocalApi,
        render::{self, PanelGrant, RenderInput},
    },
};

/// The steps, in the order they run.
pub(crate) const STEPS: [&str; 8] =
    ["cluster", "files", "database", "migrate", "roles", "backup", "units", "audit"];

/// The package's units that `host apply` enables: the panel and the timers.
pub(crate) const UNITS: [&str; 7] = [
    "cabinet-db-firewall.service",
    "cabinet-db-serve.service",
    "cabinet-db-backup-full.timer",
    "cabinet-db-backup-incr.timer",
    "cabinet-db-drill.timer",
    "cabinet-db-audit.timer",
    "cabinet-db-metrics.timer",
];

/// Where systemd keeps the package's units.
const PACKAGE_UNITS: &str = "/lib/systemd/system";

#[derive(Debug, Clone)]
pub(crate) struct ApplyOptions {
    /// `VERSION/NAME`; the only cluster when `None`.
    pub(crate) cluster: Option<String>,
    /// The superuser over the socket (`database_url` in the configuration file).
    pub(crate) database_url: DatabaseUrl,
    pub(crate) roles: Roles,
    pub(crate) secrets_dir: PathBuf,
    pub(crate) tailscale_socket: PathBuf,
    pub(crate) backup: SetupOptions,
    /// `/etc/cabinet-db`: the operator's pg_hba rules live here.
    pub(crate) etc_dir: PathBuf,
    /// The packaged panel's OS user (`cabinet-db`); let in by peer when it exists.
    pub(crate) panel_user: String,
    pub(crate) panel_port: u16,
    /// Show what would change; change nothing.
    pub(crate) dry_run: bool,
}

/// What one step did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    /// One line per change; empty when the step found everything as designed.
    pub(crate) changes: Vec<String>,
    /// The files that differ from the design.
    pub(crate) files: Vec<Change>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) cluster: String,
    pub(crate) dry_run: bool,
    pub(crate) steps: Vec<Step>,
}

impl Report {
    pub(crate) fn changed(&self) -> bool {
        self.steps.iter().any(|s| !s.changes.is_empty() || !s.files.is_empty())
    }
}

/// A step failed: what was done before it, and what was not.
#[derive(Debug, Serialize, thiserror::Error)]
#[error(
    "host apply stopped at step `{step}`: {error}\n  done: {}\n  not done: {}\n  fix what it names, then run `cabinet-db host apply` again: what is done already stays as it is",
    done_summary(.done), .not_done.join(", ")
)]
pub(crate) struct ApplyFailure {
    pub(crate) step: &'static str,
    pub(crate) error: String,
    pub(crate) done: Vec<Step>,
    pub(crate) not_done: Vec<&'static str>,
}

fn done_summary(done: &[Step]) -> String {
    if done.is_empty() {
        return "nothing".to_owned();
    }
    done.iter()
        .map(|s| {
            let n = s.changes.len() + s.files.len();
            if n == 0 { format!("{} (as designed)", s.name) } else { format!("{} ({n} changes)", s.name) }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs every step; stops at the first failure.
pub(crate) async fn apply(options: &ApplyOptions) -> Result<Report, ApplyFailure> {
    let mut done: Vec<Step> = Vec::new();
    let fail = |step: &'static str, error: String, done: Vec<Step>| {
        let position = STEPS.iter().position(|s| *s == step).unwrap_or(0);
        ApplyFailure { step, error, done, not_done: STEPS[position..].to_vec() }
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(
            "cluster",
            "host apply changes /etc and restarts PostgreSQL: run it as root".into(),
            done,
        ));
    }
    // Two runs at once would interleave installs and restarts: the second one stops at once.
    let _lock = match lock() {
        Ok(lock) => lock,
        Err(e) => return Err(fail("cluster", e, done)),
    };
    let mut host = match Host::find(options) {
        Ok(host) => host,
        Err(e) => return Err(fail("cluster", e.to_string(), done)),
    };
    let id = host.cluster.id();
    macro_rules! step {
        ($name:literal, $call:expr) => {
            match $call {
                Ok(step) => done.push(step),
                Err(e) => return Err(fail($name, e.to_string(), done)),
            }
        };
    }
    step!("cluster", host.start_if_stopped(options.dry_run));
    step!("files", host.files(options).await);
    if options.dry_run {
        let planned =
            STEPS[2..].iter().map(|name| Step { name, changes: vec!["would run".into()], files: vec![] });
        done.extend(planned);
        return Ok(Report { cluster: id, dry_run: true, steps: done });
    }
    step!("database", host.database(options).await);
    step!("migrate", migrate(options).await);
    step!("roles", roles(options).await);
    step!("backup", host.backup(options).await);
    step!("units", units());
    step!("audit", audit(options).await);
    Ok(Report { cluster: id, dry_run: false, steps: done })
}

/// The lock one `host apply` holds while it runs (released when the process ends, however).
const LOCK_FILE: &str = "/run/lock/cabinet-db-host-apply.lock";

fn lock() -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| format!("cannot open {LOCK_FILE}: {e}"))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        format!("another `cabinet-db host apply` is running (it holds {LOCK_FILE}); wait for it to finish")
    })
}

/// The cluster `host apply` works on, and what the configuration says of it.
struct Host {
    cluster: PgCluster,
    database: String,
}

type StepResult = Result<Step, Box<dyn std::error::Error + Send + Sync>>;

impl Host {
    fn find(options: &ApplyOptions) -> Result<Host, HostError> {
        let cluster = PgCluster::find(options.cluster.as_deref())?;
        let connect =
            options.database_url.connect_options().map_err(|e| HostError::Refused(e.to_string()))?;
        let database = connect.get_database().unwrap_or("postgres").to_owned();
        db::check_identifier("the database in database_url", &database).map_err(HostError::Refused)?;
        // One truth: the URL every other command uses must reach this cluster, over its socket
        // (/run/postgresql and /var/run/postgresql are one directory).
        let same_dir = |a: &Path, b: &Path| {
            a == b || std::fs::canonicalize(a).ok().is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a))
        };
        let reaches = connect.get_port() == cluster.port
            && connect.get_socket().is_some_and(|socket| same_dir(socket, &cluster.socket_dir));
        if !reaches {
            return Err(HostError::Refused(format!(
                "database_url ({}) does not reach cluster {} over its socket: set database_url = \"postgresql:///{database}?host={}&port={}&user=postgres\" in /etc/cabinet-db/cabinet-db.toml",
                options.database_url.redacted(),
                cluster.id(),
                cluster.socket_dir.display(),
                cluster.port
            )));
        }
        Ok(Host { cluster, database })
    }

    fn start_if_stopped(&mut self, dry_run: bool) -> StepResult {
        let mut changes = Vec::new();
        if !self.cluster.is_running() {
            changes.push(format!("start {}", self.cluster.id()));
            if !dry_run {
                self.cluster.ctl("start")?;
            }
        }
        Ok(Step { name: "cluster", changes, files: vec![] })
    }

    /// The designed files, rendered for this cluster and this node's tailnet addresses.
    async fn desired(
        &self,
        options: &ApplyOptions,
    ) -> Result<Vec<Desired>, Box<dyn std::error::Error + Send + Sync>> {
        let status = LocalApi::new(&options.tailscale_socket).status().await?;
        let ips: Vec<IpAddr> = status.ips().iter().filter_map(|ip| ip.parse().ok()).collect();
        let dns_name = status.dns_name().ok_or("tailscaled reports no MagicDNS name for this node")?;
        let panel_os_user = nix::unistd::User::from_name(&options.panel_user).ok().flatten().map(|u| u.name);
        let rendered = render::render(&RenderInput {
            ips,
            dns_name,
            clients: Vec::new(),
            port: self.cluster.port,
            database: self.database.clone(),
            roles: options.roles.clone(),
            panel: PanelGrant { port: options.panel_port, ..PanelGrant::default() },
            panel_os_user,
        })?;
        let text = |name: &str| {
            rendered
                .iter()
                .find(|f| f.path == Path::new(name))
                .map(|f| f.contents.clone())
                .expect("render writes it")
        };
        let local_path = local_hba_rules(&options.etc_dir);
        let local = std::fs::read_to_string(&local_path).ok();
        let owner = Some((
            self.cluster.owner_uid,
            nix::unistd::User::from_uid(self.cluster.owner_uid.into())?.map_or(0, |u| u.gid.as_raw()),
        ));
        let conf = &self.cluster.config_dir;
        let file = |path: PathBuf, contents: String, mode: u32, owner: Option<(u32, u32)>, effect: Effect| {
            Desired { path, contents, mode, owner, effect }
        };
        Ok(vec![
            file(
                conf.join("pg_ident.conf"),
                text("postgresql/pg_ident.conf"),
                0o640,
                owner,
                Effect::ClientAuthentication,
            ),
            file(
                conf.join("pg_hba.conf"),
                with_local_rules(
                    &text("postgresql/pg_hba.conf"),
                    local.as_deref().map(|l| (local_path.as_path(), l)),
                ),
                0o640,
                owner,
                Effect::ClientAuthentication,
            ),
            file(
                conf.join("conf.d/cabinet-db.conf"),
                text("postgresql/conf.d/cabinet-db.conf"),
                0o644,
                owner,
                Effect::ServerSettings,
            ),
            file(FIREWALL_FILE.into(), text("nftables/cabinet-pg.nft"), 0o644, None, Effect::Firewall),
            file(
                POSTGRESQL_DROPIN.into(),
                text("systemd/postgresql@.service.d/cabinet-db.conf"),
                0o644,
                None,
                Effect::Systemd,
            ),
        ])
    }

    async fn files(&self, options: &ApplyOptions) -> StepResult {
        let mut changes_to_make = Vec::new();
        for desired in self.desired(options).await? {
            if let Some(change) = desired.change()? {
                changes_to_make.push(change);
            }
        }
        let firewall_loaded = run("nft", &["list", "table", "inet", "cabinet_pg"]).is_ok();
        let mut notes = Vec::new();
        if options.dry_run {
            if !firewall_loaded {
                notes.push("load the nftables table cabinet_pg".to_owned());
            }
            return Ok(Step { name: "files", changes: notes, files: changes_to_make });
        }
        let of =
            |effect: Effect| changes_to_make.iter().filter(move |c| c.effect == effect).collect::<Vec<_>>();

        let auth = of(Effect::ClientAuthentication);
        if !auth.is_empty() {
            for change in &auth {
                change.install()?;
            }
            // The server reads the files on disk for these views: a rule it would reject is
            // seen here, before any reload, and the previous files go back.
            let mut errors = self.cluster.psql(
                "postgres",
                "SELECT 'pg_hba.conf line ' || line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL",
            )?;
            if self.cluster.version >= 15 {
                let ident = self.cluster.psql(
                    "postgres",
                    "SELECT 'pg_ident.conf line ' || line_number || ': ' || error FROM pg_ident_file_mappings WHERE error IS NOT NULL",
                )?;
                errors = [errors, ident].into_iter().filter(|e| !e.is_empty()).collect::<Vec<_>>().join("\n");
            }
            if !errors.is_empty() {
                for change in &auth {
                    change.restore()?;
                }
                return Err(Box::new(HostError::Refused(format!(
                    "the server would refuse the new client authentication ({}); the previous pg_hba.conf and pg_ident.conf are back and nothing was reloaded (rules of your own go in {})",
                    errors.replace('\n', "; "),
                    local_hba_rules(&options.etc_dir).display()
                ))));
            }
            self.cluster.ctl("reload")?;
            notes.push(format!("reloaded {} (client authentication)", self.cluster.id()));
        }

        let settings = of(Effect::ServerSettings);
        if !settings.is_empty() {
            for change in &settings {
                change.install()?;
            }
            let errors = self.cluster.psql(
                "postgres",
                // 'setting could not be applied' is a setting that waits for a restart, not a
                // mistake: that is decided below, after the reload.
                "SELECT sourcefile || ':' || sourceline || ': ' || error FROM pg_file_settings
                  WHERE error IS NOT NULL AND error <> 'setting could not be applied'",
            )?;
            if !errors.is_empty() {
                for change in &settings {
                    change.restore()?;
                }
                return Err(Box::new(HostError::Refused(format!(
                    "the server would refuse the new settings ({}); the previous file is back and nothing was reloaded",
                    errors.replace('\n', "; ")
                ))));
            }
            self.cluster.ctl("reload")?;
            // Give the postmaster a moment to read the files before asking what waits for a restart.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let pending = self
                .cluster
                .psql("postgres", "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")?;
            if pending.is_empty() {
                notes.push(format!("reloaded {} (settings)", self.cluster.id()));
            } else {
                self.cluster.ctl("restart")?;
                notes.push(format!("restarted {} ({pending} take effect at a restart)", self.cluster.id()));
            }
        }

        let firewall = of(Effect::Firewall);
        for change in &firewall {
            change.install()?;
        }
        if !firewall.is_empty() || !firewall_loaded {
            run("nft", &["--check", "--file", FIREWALL_FILE])?;
            run("nft", &["--file", FIREWALL_FILE])?;
            notes.push("loaded the nftables table cabinet_pg".to_owned());
        }

        let systemd = of(Effect::Systemd);
        for change in &systemd {
            change.install()?;
        }
        if !systemd.is_empty() && systemd_runs() {
            run("systemctl", &["daemon-reload"])?;
            notes.push("systemctl daemon-reload".to_owned());
        }
        Ok(Step { name: "files", changes: notes, files: changes_to_make })
    }

    async fn database(&self, options: &ApplyOptions) -> StepResult {
        let mut changes = Vec::new();
        let exists = self.cluster.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{}'", self.database.replace('\'', "''")),
        )?;
        if exists.is_empty() {
            self.cluster.psql("postgres", &format!("CREATE DATABASE {}", db::quote_ident(&self.database)))?;
            changes.push(format!("created database {}", self.database));
        }
        // From here on, cabinet-db's own connection: root as postgres through pg_ident's map.
        let conn = db::connect(&options.database_url, "cabinet-db host apply").await?;
        sqlx::Connection::close(conn).await?;
        Ok(Step { name: "database", changes, files: vec![] })
    }

    async fn backup(&self, options: &ApplyOptions) -> StepResult {
        let mut changes = Vec::new();
        let config = &options.backup.config_path;
        let before = std::fs::read(config).ok();
        let mut report = backup::setup::setup(&options.database_url, &options.backup).await?;
        changes.extend(report.changed.iter().map(|c| format!("set {c}")));
        if report.restart_needed {
            self.cluster.ctl("restart")?;
            changes.push(format!("restarted {} (archive_mode)", self.cluster.id()));
            report = backup::setup::setup(&options.database_url, &options.backup).await?;
            changes.extend(report.changed.iter().map(|c| format!("set {c}")));
        }
        if std::fs::read(config).ok() != before {
            changes.push(format!("wrote {}", config.display()));
        }
        if !report.checked {
            return Err(format!("pgBackRest's check did not pass on {}", self.cluster.id()).into());
        }
        // A backup never restored is a hope: the first full backup and the first drill, once.
        let checks =
            audit::audit(&options.database_url, &MigrationSet::embedded()?, &audit_options(options)).await?;
        let failing = |id: &str| checks.iter().any(|c| c.id == id && c.verdict == Verdict::Fail);
        if failing("backup.newest_full") {
            backup::run::run(config, backup::run::Kind::Full, None)?;
            changes.push("took the first full backup".to_owned());
        }
        if failing("backup.drill") {
            let record = backup::drill::drill(&backup::drill::DrillOptions {
                config_path: config.clone(),
                live: options.database_url.clone(),
                work_dir: BackupConfig::read(config)?.state_dir,
                repo: None,
            })
            .await?;
            if !record.passed {
                return Err(format!("the restore drill failed: {}", record.problems.join("; ")).into());
            }
            changes.push("proved a restore (backup drill)".to_owned());
        }
        Ok(Step { name: "backup", changes, files: vec![] })
    }
}

async fn migrate(options: &ApplyOptions) -> StepResult {
    let set = MigrationSet::embedded()?;
    let runner_options = runner::RunnerOptions {
        owner_role: Some(options.roles.name(crate::roles::RoleKind::Owner)),
        actor: Some(crate::history::Actor::for_cli(Some("cabinet-db host apply"))?),
        ..runner::RunnerOptions::default()
    };
    let applied = runner::up(&options.database_url, &set, None, &runner_options).await?;
    let changes = applied.iter().map(|s| format!("applied migration {}", s.version)).collect();
    Ok(Step { name: "migrate", changes, files: vec![] })
}

async fn roles(options: &ApplyOptions) -> StepResult {
    let sources = PasswordSources { files: Vec::new(), secrets_dir: Some(options.secrets_dir.clone()) };
    let report = crate::roles::apply::apply(&options.database_url, &options.roles, &sources).await?;
    let mut changes: Vec<String> = report.created.iter().map(|r| format!("created role {r}")).collect();
    changes.extend(report.removed.iter().map(|r| format!("removed {r}")));
    changes.extend(report.granted.iter().map(|r| format!("granted {r}")));
    changes.extend(
        report.password_files.iter().map(|p| format!("wrote a generated password to {}", p.display())),
    );
    if !report.missing_tables.is_empty() {
        return Err(format!("tables missing after migrate: {}", report.missing_tables.join(", ")).into());
    }
    Ok(Step { name: "roles", changes, files: vec![] })
}

/// Whether systemd manages this host (it does not in a container or a build chroot).
fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn units() -> StepResult {
    let mut changes = Vec::new();
    let installed: Vec<&str> =
        UNITS.into_iter().filter(|u| Path::new(PACKAGE_UNITS).join(u).exists()).collect();
    if installed.is_empty() {
        return Err(format!(
            "the package's units are not in {PACKAGE_UNITS}: install the cabinet-db package (this binary was built from source)"
        )
        .into());
    }
    let running = systemd_runs();
    for unit in installed {
        let enabled =
            std::process::Command::new("systemctl").args(["is-enabled", "--quiet", unit]).status()?.success();
        if !enabled {
            run("systemctl", &["enable", unit])?;
            changes.push(format!("enabled {unit}"));
        }
        if running {
            let active = std::process::Command::new("systemctl")
                .args(["is-active", "--quiet", unit])
                .status()?
                .success();
            if !active {
                run("systemctl", &["start", unit])?;
                changes.push(format!("started {unit}"));
            }
        }
    }
    if !running && !changes.is_empty() {
        changes.push("systemd does not run here: the units start at the next boot".to_owned());
    }
    Ok(Step { name: "units", changes, files: vec![] })
}

fn audit_options(options: &ApplyOptions) -> AuditOptions {
    AuditOptions {
        roles: options.roles.clone(),
        socket: options.tailscale_socket.clone(),
        socket_explicit: true,
        proc_root: PathBuf::from("/proc"),
        secrets_dir: Some(options.secrets_dir.clone()),
        backup_config: options.backup.config_path.clone(),
        panel_port: options.panel_port,
        cluster_members: Vec::new(),
    }
}

async fn audit(options: &ApplyOptions) -> StepResult {
    let checks =
        audit::audit(&options.database_url, &MigrationSet::embedded()?, &audit_options(options)).await?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("{}: {} ({})", c.id, c.detail, c.remedy))
        .collect();
    if !failed.is_empty() {
        return Err(format!("the audit fails: {}", failed.join("; ")).into());
    }
    Ok(Step { name: "audit", changes: vec![], files: vec![] })
}
