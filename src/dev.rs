//! `cabinet-db dev`: a local database in one command.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sqlx::Connection;

use crate::{
    backup::{
        run::{self, Kind},
        setup::{self, SetupOptions},
    },
    db::{self, DatabaseUrl, DbError, quote_ident},
    local_cluster::{ClusterError, LocalCluster, ServerSettings},
    migrations::{MigrateError, MigrationSet, RunnerOptions, runner},
    models::schema::TABLES,
    roles::{self, RoleKind, Roles, RolesError, password::PasswordSources},
};

/// Chosen away from 5432 so it never collides with a system PostgreSQL.
pub(crate) const DEFAULT_DEV_PORT: u16 = 54320;
pub(crate) const DEV_SUPERUSER: &str = "cabinet";
pub(crate) const DEV_DATABASE: &str = "cabinet";
const STATE_FILE: &str = "dev.json";
/// Sites listed by `dev up` / `dev status`.
const DEMO_SITES_SHOWN: i64 = 10;

/// A few sites and users so a fresh database shows something; loaded once, at creation.
const DEMO_DATA_SQL: &str = "
INSERT INTO sites (site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage)
VALUES
  ('demo-acme', 'acme.example.com', 'support-v2', 'You are the friendly support assistant of ACME.', 'ACME', 'en', 'default', 'appointmentscheduled'),
  ('demo-baeckerei', 'baeckerei-schmidt.example.de', 'sales-v1', 'Du bist der Assistent der Bäckerei Schmidt.', 'Bäckerei Schmidt', 'de', NULL, NULL),
  ('demo-lisboa', 'loja.example.pt', 'support-v2', 'Você é o assistente da Loja Lisboa.', 'Loja Lisboa', 'pt-BR', 'default', 'qualifiedtobuy')
ON CONFLICT DO NOTHING;
INSERT INTO users (user_id, email, first_seen, last_seen)
VALUES
  ('291840123456789012', 'ada@example.com', now() - interval '30 days', now() - interval '1 hour'),
  ('291840123456789013', 'grace@example.org', now() - interval '7 days', now() - interval '2 days'),
  ('291840123456789014', NULL, now() - interval '1 day', now())
ON CONFLICT DO NOTHING;
";

#[derive(Debug, thiserror::Error)]
pub(crate) enum DevError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Roles(#[from] RolesError),
    #[error("could not read the sites")]
    Sites(#[source] crate::data::DataError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error("no development database in {0}; create it with cabinet-db dev up")]
    NotCreated(PathBuf),
    #[error("the development database in {0} is not running; start it with cabinet-db dev up")]
    NotRunning(PathBuf),
    #[error("no login role {role:?} in the development database; the login roles are {}", .known.join(", "))]
    UnknownRole { role: String, known: Vec<String> },
    #[error(
        "the development database in {dir} is running on port {running}; stop it (cabinet-db dev down) before choosing port {requested}"
    )]
    PortInUse { dir: PathBuf, running: u16, requested: u16 },
    #[error("could not read {0}")]
    State(PathBuf, #[source] std::io::Error),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DevState {
    port: u16,
}

/// Where the development database lives unless `--data-dir` says otherwise: as root
/// `/var/lib/cabinet-db/dev` (the server user must be able to reach it, and root's home is
/// private), otherwise `$XDG_STATE_HOME/cabinet-db/dev` (`~/.local/state/cabinet-db/dev`).
pub(crate) fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/cabinet-db/dev");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("cabinet-db/dev")
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DevReport {
    pub(crate) data_dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) running: bool,
    pub(crate) server_binaries: String,
    pub(crate) server_user: String,
    /// The superuser's URL, password included: printed only on request (`--json`).
    #[serde(serialize_with = "expose_url")]
    pub(crate) database_url: Option<DatabaseUrl>,
    /// One URL per login role (`cabinet_admin`, `cabinet_n8n`, `cabinet_app`), passwords included.
    #[serde(serialize_with = "expose_urls")]
    pub(crate) role_urls: BTreeMap<String, DatabaseUrl>,
    pub(crate) server_version: Option<String>,
    pub(crate) migration_version: Option<i64>,
    pub(crate) migration_head: i64,
    pub(crate) tables: Vec<TableRows>,
    /// The first sites, by site_id.
    pub(crate) sites: Vec<crate::models::Site>,
    /// What this invocation did: `created`, `started`, `migrated to 0001`, `loaded demo data`.
    pub(crate) actions: Vec<String>,
    /// pgBackRest's configuration, once `dev up --backups` made one.
    pub(crate) backup_config: Option<PathBuf>,
}

fn expose_urls<S: serde::Serializer>(urls: &BTreeMap<String, DatabaseUrl>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(urls.iter().map(|(role, url)| (role, url.expose())))
}

fn expose_url<S: serde::Serializer>(url: &Option<DatabaseUrl>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(url.expose()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableRows {
    pub(crate) table: String,
    pub(crate) rows: i64,
}

/// Where `dev up` keeps the generated passwords of the login roles.
fn secrets_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets")
}

fn cluster(data_dir: &Path, port: u16) -> Result<LocalCluster, DevError> {
    Ok(LocalCluster::new(data_dir.to_owned(), port)?)
}

fn read_state(data_dir: &Path) -> Result<Option<DevState>, DevError> {
    let path = data_dir.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(serde_json::from_str(&text).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DevError::State(path, e)),
    }
}

fn write_state(data_dir: &Path, state: &DevState) -> Result<(), DevError> {
    let path = data_dir.join(STATE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(state).expect("state serialises"))
        .map_err(|e| DevError::State(path, e))
}

/// Creates (first time), starts, migrates and seeds the development database; idempotent.
pub(crate) async fn up(data_dir: &Path, port: Option<u16>, backups: bool) -> Result<DevReport, DevError> {
    let state = read_state(data_dir)?;
    let port = port.or(state.as_ref().map(|s| s.port)).unwrap_or(DEFAULT_DEV_PORT);
    let cluster = cluster(data_dir, port)?;
    let mut actions = Vec::new();
    let settings = ServerSettings { port, durable: true };
    if !cluster.is_initialized() {
        cluster.init(DEV_SUPERUSER, settings)?;
        actions.push("created the cluster".to_owned());
    }
    if cluster.is_running() {
        let running = state.as_ref().map_or(port, |s| s.port);
        if running != port {
            return Err(DevError::PortInUse { dir: data_dir.to_owned(), running, requested: port });
        }
    } else {
        cluster.write_settings(settings)?;
        cluster.start()?;
        actions.push(format!("started PostgreSQL on 127.0.0.1:{port}"));
    }
    write_state(data_dir, &DevState { port })?;

    let password = cluster.superuser_password()?;
    let admin_url = cluster.url(DEV_SUPERUSER, &password, "postgres");
    let created_database = ensure_database(&admin_url, DEV_DATABASE).await?;
    if created_database {
        actions.push(format!("created database {DEV_DATABASE}"));
    }
    let url = cluster.url(DEV_SUPERUSER, &password, DEV_DATABASE);
    let set = MigrationSet::embedded().map_err(MigrateError::from)?;
    let applied = runner::up(&url, &set, None, &RunnerOptions::default()).await?;
    if let Some(last) = applied.last() {
        actions.push(format!("migrated to {:04}", last.version));
    }
    let roles = Roles::default();
    let sources = PasswordSources { files: vec![], secrets_dir: Some(secrets_dir(data_dir)) };
    let applied_roles = roles::apply::apply(&url, &roles, &sources).await?;
    if !applied_roles.created.is_empty() {
        actions.push(format!("created roles {}", applied_roles.created.join(", ")));
    }
    if created_database {
        let mut conn = db::connect(&url, "cabinet-db dev").await?;
        sqlx::raw_sql(DEMO_DATA_SQL).execute(&mut conn).await?;
        conn.close().await?;
        actions.push("loaded demo data".to_owned());
    }
    if backups {
        set_up_backups(&cluster, &url, &mut actions).await?;
    }
    let mut report = describe(&cluster, Some(url), &set).await?;
    report.actions = actions;
    Ok(report)
}

/// pgBackRest's configuration for the development cluster: everything under `<dir>/backup`.
pub(crate) fn backup_config(data_dir: &Path) -> PathBuf {
    data_dir.join("backup").join("pgbackrest.conf")
}

/// A repository under the data directory, archiving on (restarting the cluster once for
/// `archive_mode`), and a first full backup: enough to try a point-in-time restore.
async fn set_up_backups(
    cluster: &LocalCluster,
    url: &DatabaseUrl,
    actions: &mut Vec<String>,
) -> Result<(), DevError> {
    let dir = cluster.root.join("backup");
    let options = SetupOptions::local(backup_config(&cluster.root), dir.join("state"), dir.join("repo"));
    // Clusters made before cabinet-db let their server user in by peer (pgBackRest's way in).
    cluster.write_client_authentication(DEV_SUPERUSER)?;
    let mut conn = db::connect(url, "cabinet-db dev").await?;
    sqlx::query("SELECT pg_reload_conf()").execute(&mut conn).await?;
    conn.close().await?;
    let first = setup::setup(url, &options).await?;
    if !first.changed.is_empty() {
        actions.push(format!("set up backups ({})", options.config_path.display()));
    }
    if first.restart_needed {
        cluster.stop("fast")?;
        cluster.start()?;
        actions.push("restarted PostgreSQL with WAL archiving on".to_owned());
        setup::setup(url, &options).await?;
    }
    let catalog = run::list(&options.config_path, None).await?.catalog;
    if catalog.newest_full().is_none() {
        for backup in run::run(&options.config_path, Kind::Full, None)?.backups {
            actions.push(format!("took a full backup ({})", backup.label));
        }
    }
    Ok(())
}

/// Stops the development database; `Ok(false)` when it was not running.
pub(crate) async fn down(data_dir: &Path) -> Result<bool, DevError> {
    let state = read_state(data_dir)?.ok_or_else(|| DevError::NotCreated(data_dir.to_owned()))?;
    let cluster = cluster(data_dir, state.port)?;
    if !cluster.is_running() {
        return Ok(false);
    }
    cluster.stop("fast")?;
    Ok(true)
}

pub(crate) async fn status(data_dir: &Path) -> Result<DevReport, DevError> {
    let state = read_state(data_dir)?.ok_or_else(|| DevError::NotCreated(data_dir.to_owned()))?;
    let cluster = cluster(data_dir, state.port)?;
    let set = MigrationSet::embedded().map_err(MigrateError::from)?;
    let url = cluster.is_running().then(|| -> Result<_, DevError> {
        Ok(cluster.url(DEV_SUPERUSER, &cluster.superuser_password()?, DEV_DATABASE))
    });
    describe(&cluster, url.transpose()?, &set).await
}

/// The superuser's URL, or a login role's: read from the cluster's files, without a query (so
/// it works whatever the tables hold).
pub(crate) fn url(data_dir: &Path, role: Option<&str>) -> Result<DatabaseUrl, DevError> {
    let state = read_state(data_dir)?.ok_or_else(|| DevError::NotCreated(data_dir.to_owned()))?;
    let cluster = cluster(data_dir, state.port)?;
    if !cluster.is_running() {
        return Err(DevError::NotRunning(data_dir.to_owned()));
    }
    let Some(role) = role else {
        return Ok(cluster.url(DEV_SUPERUSER, &cluster.superuser_password()?, DEV_DATABASE));
    };
    let mut urls = role_urls(&cluster);
    urls.remove(role)
        .ok_or_else(|| DevError::UnknownRole { role: role.to_owned(), known: urls.into_keys().collect() })
}

/// One URL per login role whose password file exists.
fn role_urls(cluster: &LocalCluster) -> BTreeMap<String, DatabaseUrl> {
    let roles = Roles::default();
    let mut urls = BTreeMap::new();
    for kind in RoleKind::ALL.into_iter().filter(|k| k.can_login()) {
        let name = roles.name(kind);
        if let Ok(password) =
            roles::password::read(&secrets_dir(&cluster.root).join(format!("{name}.password")))
        {
            urls.insert(name.clone(), cluster.url(&name, password.expose(), DEV_DATABASE));
        }
    }
    urls
}

/// Creates the database unless it exists; `true` when it was created.
pub(crate) async fn ensure_database(admin_url: &DatabaseUrl, name: &str) -> Result<bool, DevError> {
    let mut conn = db::connect(admin_url, "cabinet-db dev").await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", quote_ident(name))))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(!exists)
}

async fn describe(
    cluster: &LocalCluster,
    url: Option<DatabaseUrl>,
    set: &MigrationSet,
) -> Result<DevReport, DevError> {
    let mut report = DevReport {
        data_dir: cluster.root.clone(),
        port: cluster.port,
        running: url.is_some(),
        server_binaries: format!("{} ({})", cluster.binaries.version, cluster.binaries.bindir.display()),
        server_user: cluster.run_as.user_name(),
        database_url: None,
        role_urls: BTreeMap::new(),
        server_version: None,
        migration_version: None,
        migration_head: set.head(),
        tables: vec![],
        sites: vec![],
        actions: vec![],
        backup_config: Some(backup_config(&cluster.root)).filter(|p| p.is_file()),
    };
    let Some(url) = url else { return Ok(report) };
    let assessment = runner::status(&url, set).await?;
    report.migration_version = assessment.current;
    let mut conn = db::connect(&url, "cabinet-db dev").await?;
    report.server_version = Some(sqlx::query_scalar("SELECT version()").fetch_one(&mut conn).await?);
    if assessment.current.is_some() {
        for table in TABLES {
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {}",
                quote_ident(table.name)
            )))
            .fetch_one(&mut conn)
            .await?;
            report.tables.push(TableRows { table: table.name.to_owned(), rows });
        }
        report.sites =
            crate::sites::list(&mut conn, &crate::sites::SiteFilter::default(), None, DEMO_SITES_SHOWN)
                .await
                .map_err(|e| match e {
                    crate::data::DataError::Db(db) => DevError::Db(db),
                    other => DevError::Sites(other),
                })?
                .items;
    }
    conn.close().await?;
    report.role_urls = role_urls(cluster);
    report.database_url = Some(url);
    Ok(report)
}
