//! The test cluster: started once per test run from the machine's PostgreSQL binaries (or
//! taken from `CABINET_TEST_DATABASE_URL`), with a migrated template database that every
//! test clones, crates.io-style, and drops again when its guard goes out of scope.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use cabinet_db::{
    db::{self, DatabaseUrl, quote_ident},
    local_cluster::{LocalCluster, ServerSettings},
    migrations::{MigrationSet, RunnerOptions, runner},
    roles::{
        RoleKind, Roles,
        apply::apply,
        password::{self, PasswordSources},
    },
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const TEST_SUPERUSER: &str = "cabinet_test";
const TEST_ROOT_PREFIX: &str = "cabinet-db-test-";

pub struct TestCluster {
    /// Superuser URL without a database name; tests append one.
    base: String,
    template: String,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub fn cluster() -> &'static TestCluster {
    // Initialised on a thread of its own: each #[tokio::test] has its own runtime, and the
    // cluster must outlive all of them.
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(start())
        })
        .join()
        .expect("starting the test cluster panicked")
    })
}

async fn start() -> TestCluster {
    let base = match std::env::var("CABINET_TEST_DATABASE_URL") {
        Ok(url) => url.trim_end_matches('/').rsplit_once('/').map_or(url.clone(), |(b, _)| b.to_owned()),
        Err(_) => superuser_base(&start_local_cluster("main")),
    };
    let template = format!("cabinet_test_tpl_{}", std::process::id());
    let mut admin =
        PgConnection::connect(&format!("{base}/postgres")).await.expect("connect to the test cluster");
    sweep_leftover_databases(&mut admin).await;
    exec(&mut admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&template))).await;
    exec(&mut admin, &format!("CREATE DATABASE {}", quote_ident(&template))).await;
    admin.close().await.unwrap();
    let url = DatabaseUrl::new(format!("{base}/{template}"));
    let set = MigrationSet::embedded().unwrap();
    runner::up(&url, &set, None, &RunnerOptions::default()).await.expect("migrate the template database");
    TestCluster { base, template }
}

/// Starts a throw-away cluster of this run; `purpose` names it (`main`, `audit`). It is
/// stopped and deleted when the test binary exits.
pub fn start_local_cluster(purpose: &str) -> LocalCluster {
    sweep_leftover_clusters();
    let root = std::env::temp_dir().join(format!("{TEST_ROOT_PREFIX}{}-{purpose}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let port = free_port();
    let cluster = LocalCluster::new(root, port).expect("PostgreSQL binaries for the tests");
    eprintln!("test cluster {purpose}: {} ({})", cluster.binaries.version, cluster.binaries.bindir.display());
    let settings = ServerSettings { port, durable: false };
    cluster.init(TEST_SUPERUSER, settings).expect("initdb for the tests");
    cluster.start().expect("start the test cluster");
    STOP_ON_EXIT.lock().unwrap().push(cluster.clone());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: registering a plain extern "C" function with the C runtime.
    REGISTER.call_once(|| unsafe {
        libc::atexit(stop_test_clusters);
    });
    cluster
}

/// The superuser URL of a local test cluster, without a database name.
pub fn superuser_base(cluster: &LocalCluster) -> String {
    let password = cluster.superuser_password().unwrap();
    format!("postgres://{TEST_SUPERUSER}:{password}@127.0.0.1:{}", cluster.port)
}

static STOP_ON_EXIT: std::sync::Mutex<Vec<LocalCluster>> = std::sync::Mutex::new(Vec::new());

/// Runs when the test binary exits (the harness calls `exit` after the last test).
extern "C" fn stop_test_clusters() {
    if let Ok(clusters) = STOP_ON_EXIT.lock() {
        for cluster in clusters.iter() {
            let _ = cluster.stop("immediate");
            let _ = std::fs::remove_dir_all(&cluster.root);
        }
    }
}

/// Clusters of earlier runs that died before their exit handler (killed, aborted).
fn sweep_leftover_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(TEST_ROOT_PREFIX).and_then(|p| p.split('-').next()?.parse::<i32>().ok());
        let Some(pid) = pid else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(old) = LocalCluster::new(entry.path(), 0) {
            let _ = old.stop("immediate");
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Databases left by runs against an external server whose process is gone.
async fn sweep_leftover_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'cabinet\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap();
    for name in names {
        let pid = name.split('_').find_map(|part| part.parse::<i32>().ok());
        if pid.is_some_and(|pid| {
            pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists()
        }) {
            exec(admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name))).await;
            drop_roles_with_prefix(admin, &format!("{name}_")).await;
        }
    }
}

/// Drops the roles a test created (after its database, which held their grants).
async fn drop_roles_with_prefix(admin: &mut PgConnection, prefix: &str) {
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let roles: Vec<String> = sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE $1")
        .bind(pattern)
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for role in roles {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", quote_ident(&role))))
            .execute(&mut *admin)
            .await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs SQL on a fresh connection to `url` (any role), failing the test on error.
pub async fn exec_at(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    exec(&mut conn, sql).await;
    conn.close().await.unwrap();
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A database for one test, dropped when this goes out of scope.
pub struct TestDb {
    pub name: String,
    pub url: DatabaseUrl,
}

impl TestDb {
    /// A clone of the migrated template: the schema at head, no rows.
    pub async fn migrated() -> TestDb {
        let template = cluster().template.clone();
        Self::create(&format!("TEMPLATE {}", quote_ident(&template))).await
    }

    /// An empty database: nothing applied.
    pub async fn empty() -> TestDb {
        Self::create("TEMPLATE template0").await
    }

    async fn create(template_clause: &str) -> TestDb {
        let cluster = cluster();
        let name = format!("cabinet_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let mut admin = PgConnection::connect(&format!("{}/postgres", cluster.base)).await.unwrap();
        exec(&mut admin, &format!("CREATE DATABASE {} {template_clause}", quote_ident(&name))).await;
        admin.close().await.unwrap();
        let url = DatabaseUrl::new(format!("{}/{name}", cluster.base));
        TestDb { name, url }
    }

    pub async fn conn(&self) -> PgConnection {
        db::connect(&self.url, "cabinet-db tests").await.unwrap()
    }

    /// A connection as another role; errors (e.g. no CONNECT privilege) are the caller's.
    pub async fn conn_as(&self, role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
        let options = self.url.connect_options().unwrap().username(role).password(password);
        sqlx::ConnectOptions::connect(&options).await
    }

    /// The URL as another role.
    pub fn url_as(&self, role: &str, password: &str) -> DatabaseUrl {
        let options = self.url.connect_options().unwrap();
        DatabaseUrl::new(format!(
            "postgres://{role}:{password}@{}:{}/{}",
            options.get_host(),
            options.get_port(),
            self.name
        ))
    }

    /// The role names of this test start with this (roles are cluster-wide); they are dropped
    /// with the database.
    pub fn role_prefix(&self) -> String {
        format!("{}_", self.name)
    }

    /// Runs SQL (several statements allowed) and panics on failure.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn().await;
        exec(&mut conn, sql).await;
        conn.close().await.unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let base = cluster().base.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&format!("{base}/postgres")).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    )))
                    .execute(&mut admin)
                    .await;
                    drop_roles_with_prefix(&mut admin, &format!("{name}_")).await;
                    let _ = admin.close().await;
                }
            })
        })
        .join();
    }
}

pub use crate::lab::NO_CONFIG;

/// The pgBackRest configuration the tests' commands look for unless they name one: none.
pub const NO_BACKUP_CONFIG: &str = "/nonexistent/cabinet-db/pgbackrest.conf";

/// The cabinet-db binary built for these tests.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cabinet-db"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("CABINET_MIGRATIONS_DIR")
        .env("CABINET_CONFIG", NO_CONFIG)
        // Not the host's pgBackRest configuration either (the package test writes one there).
        .env("CABINET_BACKUP_CONFIG", NO_BACKUP_CONFIG)
        .env("NO_COLOR", "1");
    command
}

/// Runs the binary with `DATABASE_URL` set to `url`.
pub fn run(url: &DatabaseUrl, args: &[&str]) -> Output {
    binary().env("DATABASE_URL", url.expose()).args(args).output().expect("run cabinet-db")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A migrations directory holding the real migrations plus `extra` files.
pub fn migrations_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(real).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    for (name, sql) in extra {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

/// Test migrations 0902 and 0903 on top of the real ones (numbered far above them, so new real
/// migrations never collide).
pub const EXTRA_MIGRATIONS: &[(&str, &str)] = &[
    ("0902_add_site_notes.up.sql", "ALTER TABLE sites ADD COLUMN notes text;\n"),
    ("0902_add_site_notes.down.sql", "ALTER TABLE sites DROP COLUMN notes;\n"),
    ("0903_add_audit_table.up.sql", "CREATE TABLE test_audit (id bigint PRIMARY KEY);\n"),
    ("0903_add_audit_table.down.sql", "DROP TABLE test_audit;\n"),
];

/// The newest real (embedded) migration.
pub fn real_head() -> i64 {
    MigrationSet::embedded().unwrap().head()
}

/// The real migrations' versions followed by `extra`: what a database holds after `up`.
pub fn with_real(extra: &[i64]) -> Vec<i64> {
    MigrationSet::embedded().unwrap().iter().map(|m| m.version).chain(extra.iter().copied()).collect()
}

pub async fn applied_versions(db: &TestDb) -> Vec<i64> {
    let mut conn = db.conn().await;
    let versions = sqlx::query_scalar("SELECT version FROM cabinet_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    conn.close().await.unwrap();
    versions
}

pub async fn table_exists(db: &TestDb, table: &str) -> bool {
    let mut conn = db.conn().await;
    let exists = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    exists
}

pub async fn column_exists(db: &TestDb, table: &str, column: &str) -> bool {
    let mut conn = db.conn().await;
    let exists = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2)",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    exists
}

/// A migrated database with this test's roles applied; passwords in a temporary directory.
pub struct WithRoles {
    pub db: TestDb,
    pub roles: Roles,
    pub secrets: tempfile::TempDir,
}

impl WithRoles {
    pub async fn new() -> WithRoles {
        let db = TestDb::migrated().await;
        let roles = Roles::new(db.role_prefix());
        let secrets = tempfile::tempdir().unwrap();
        // Tests apply roles at once, each in its own database of the one cluster: `apply`
        // itself copes with the cluster-wide rows they share.
        apply(&db.url, &roles, &sources(&secrets)).await.unwrap();
        WithRoles { db, roles, secrets }
    }

    pub fn password(&self, kind: RoleKind) -> String {
        let path = self.secrets.path().join(format!("{}.password", self.roles.name(kind)));
        password::read(&path).unwrap().expose().to_owned()
    }

    pub async fn conn(&self, kind: RoleKind) -> PgConnection {
        self.db.conn_as(&self.roles.name(kind), &self.password(kind)).await.unwrap()
    }

    /// The URL as one of this test's login roles.
    pub fn url_as(&self, kind: RoleKind) -> DatabaseUrl {
        self.db.url_as(&self.roles.name(kind), &self.password(kind))
    }
}

/// Passwords generated into `secrets`.
pub fn sources(secrets: &tempfile::TempDir) -> PasswordSources {
    PasswordSources { files: vec![], secrets_dir: Some(secrets.path().to_owned()) }
}

/// Runs `cabinet-db audit --json`; returns its exit code and the checks that failed, as
/// (id, detail).
pub fn audit(url: &DatabaseUrl, extra: &[&str]) -> (i32, Vec<(String, String)>) {
    let out =
        binary().env("DATABASE_URL", url.expose()).args(["audit", "--json"]).args(extra).output().unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| panic!("no JSON: {}", stderr(&out)));
    let failed = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["detail"].as_str().unwrap().to_owned()))
        .collect();
    (out.status.code().unwrap(), failed)
}

/// Where the snapshots of rendered files live: `tests/snapshots/<case>/<file's path>.snap`, one
/// insta snapshot per file, its body the file's bytes.
const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");

/// Compares `contents` with its snapshot, `tests/snapshots/<file>.snap` (`file` such as
/// `python/models.py`). A difference, or a file with no snapshot yet, fails with insta's diff
/// and the snapshot's path; `INSTA_UPDATE=always` (or `cargo insta review` on the `.snap.new`
/// files a failing run leaves) writes it, and under `CI` insta writes nothing.
pub fn assert_snapshot(file: &Path, contents: &str) {
    // insta (1.49) compares bodies with trailing whitespace trimmed, CRLF read as LF and, for
    // its older snapshot format, leading newlines dropped; it writes a body back with one final
    // newline. So a unit or models.py that lost its final newline, gained a blank line at either
    // end, trailing spaces or CRs would still match (tried). Every file we render ends in
    // exactly one newline and holds no CR: asserted here, that makes insta's match byte-exact.
    let trimmed = contents.trim_end();
    assert!(
        contents.len() == trimmed.len() + 1 && contents.ends_with('\n'),
        "{} must end in exactly one newline (no missing final newline, no trailing blank line or space)",
        file.display()
    );
    assert!(!contents.starts_with(['\n', '\r']), "{} must not start with a blank line", file.display());
    assert!(!contents.contains('\r'), "{} must not hold a carriage return", file.display());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(SNAPSHOTS).join(file.parent().unwrap()));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(file.display().to_string());
    let name = file.file_name().unwrap().to_str().unwrap();
    settings.bind(|| insta::assert_snapshot!(name, contents));
}

/// Compares each rendered file with its snapshot under `tests/snapshots/<case>` (see
/// [`assert_snapshot`]), and fails for a snapshot there that no file matches any more (a file
/// the renderer stopped writing: delete its `.snap`).
pub fn assert_snapshots(case: &str, files: &[cabinet_db::tailnet::render::RenderedFile]) {
    for file in files {
        assert_snapshot(&Path::new(case).join(&file.path), &file.contents);
    }
    let rendered: std::collections::BTreeSet<PathBuf> =
        files.iter().map(|f| Path::new(case).join(&f.path)).collect();
    let orphans: Vec<String> = snapshot_files(&Path::new(SNAPSHOTS).join(case))
        .into_iter()
        .filter(|snap| !rendered.contains(&snap.strip_prefix(SNAPSHOTS).unwrap().with_extension("")))
        .map(|snap| snap.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string())
        .collect();
    assert!(
        orphans.is_empty(),
        "snapshots of files no longer rendered (delete them): {}",
        orphans.join(", ")
    );
}

/// The `.snap` files under `dir`, at any depth (not insta's pending `.snap.new`).
fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(snapshot_files(&path));
        } else if path.extension().is_some_and(|e| e == "snap") {
            found.push(path);
        }
    }
    found
}

/// The oldest pgBackRest that can read a server of `server_major` when this machine's (Debian
/// 12's 2.45: PostgreSQL 14 and 15) cannot, as `cabinet-db backup setup` names it ("2.55");
/// `None` when it can. The backup tests assert the refusal on such servers.
pub fn pgbackrest_needed_for(server_major: u32) -> Option<String> {
    use cabinet_db::backup::pgbackrest;
    let program = pgbackrest::locate().expect("pgbackrest (scripts/setup tests installs it)");
    let (installed, _) = pgbackrest::version_of(&program).expect("pgbackrest prints its version");
    cabinet_db::compat::pgbackrest_supports(installed, server_major).err()
}

/// In a scrape (`cabinet-db metrics`), the value of the one sample written `series`
/// (`name{labels}` as the text has it).
pub fn metric_sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
