//! Backups with the real pgBackRest against real PostgreSQL clusters of their own (archiving is
//! cluster-wide): the encrypted offsite repository on a local S3 server, a dead repository, a
//! repository host, the schedules; and the fixtures the restores on every server
//! (`every_server::backup`) share.

/// A local S3 service for the offsite repository: moto behind stunnel's TLS.
pub mod fake_s3;
/// The offsite repository: encrypted in the bucket, restorable, hostile options refused, and
/// what happens while it is unreachable.
pub mod offsite;
/// A repository on a second host, over pgBackRest's TLS server, in network namespaces.
mod repo_host;
/// The systemd units and timers.
mod schedule;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};

use cabinet_db::{
    backup::{
        BackupError, drill as drill_api, restore,
        setup::{self, SetupOptions},
    },
    db::DatabaseUrl,
    local_cluster::LocalCluster,
    migrations::{MigrationSet, RunnerOptions, runner},
    models::timestamps::Checked,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::{audit, binary, pgbackrest_needed_for, start_local_cluster, stderr, superuser_base};

/// A cluster with the schema and some rows; backups not yet set up.
pub struct Production {
    pub cluster: LocalCluster,
    pub url: DatabaseUrl,
    pub config: PathBuf,
}

impl Production {
    pub async fn start(purpose: &str) -> Production {
        let cluster = start_local_cluster(purpose);
        let base = superuser_base(&cluster);
        exec(&format!("{base}/postgres"), "CREATE DATABASE cabinet").await;
        let url = DatabaseUrl::new(format!("{base}/cabinet"));
        runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
        exec(
            url.expose(),
            "INSERT INTO sites (site_id, domain, ai_prompt)
               SELECT 'site-' || n, 'site-' || n || '.example.com', 'Prompt ' || n FROM generate_series(1, 300) n;
             INSERT INTO users (user_id, email)
               SELECT 'user-' || n, 'user' || n || '@example.com' FROM generate_series(1, 500) n",
        )
        .await;
        let config = cluster.root.join("backup/pgbackrest.conf");
        Production { cluster, url, config }
    }

    pub fn options(&self) -> SetupOptions {
        SetupOptions::local(
            self.config.clone(),
            self.cluster.root.join("backup/state"),
            self.cluster.root.join("backup/repo"),
        )
    }

    /// `backup setup`, the restart it asks for, and `backup setup` again.
    pub async fn set_up_backups(&self) {
        self.set_up_backups_with(&self.options()).await;
    }

    pub async fn set_up_backups_with(&self, options: &SetupOptions) {
        let first = setup::setup(&self.url, options).await.unwrap();
        assert!(first.restart_needed && !first.checked, "archive_mode needs a restart: {first:?}");
        assert!(first.changed.iter().any(|c| c == "archive_mode = on"), "{first:?}");
        self.cluster.stop("fast").unwrap();
        self.cluster.start().unwrap();
        let second = setup::setup(&self.url, options).await.unwrap();
        assert!(second.checked && !second.restart_needed && second.changed.is_empty(), "{second:?}");
    }

    /// The first repository's directory.
    pub fn repo(&self) -> PathBuf {
        self.cluster.root.join("backup/repo")
    }

    /// Backup commands of the binary against this production.
    pub fn backup(&self, args: &[&str]) -> std::process::Output {
        binary()
            .env("DATABASE_URL", self.url.expose())
            .env("CABINET_BACKUP_CONFIG", &self.config)
            .arg("backup")
            .args(args)
            .output()
            .unwrap()
    }

    /// A scrape of `cabinet-db metrics` against this production (as the metrics unit runs it).
    pub fn metrics(&self) -> String {
        let out = binary()
            .env("DATABASE_URL", self.url.expose())
            .args(["metrics", "--backup-config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The `backup.*` checks of the audit that failed: (id, detail).
    pub fn backup_failures(&self) -> Vec<(String, String)> {
        let (_, failed) = audit(&self.url, &["--backup-config", self.config.to_str().unwrap()]);
        failed.into_iter().filter(|(id, _)| id.starts_with("backup.")).collect()
    }

    /// Every `backup.*` check of the audit: (id, verdict, detail).
    pub fn backup_checks(&self) -> Vec<(String, String, String)> {
        let out = binary()
            .env("DATABASE_URL", self.url.expose())
            .args(["audit", "--json", "--backup-config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("audit --json");
        report["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("audit: {report}"))
            .iter()
            .filter(|c| c["id"].as_str().unwrap().starts_with("backup."))
            .map(|c| {
                let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
                (text("id"), text("verdict"), text("detail"))
            })
            .collect()
    }

    pub fn server_major(&self) -> u32 {
        self.cluster.binaries.major()
    }

    /// On a server this machine's pgBackRest cannot read (PostgreSQL 16 and newer for Debian
    /// 12's 2.45), asserts that `backup setup` with `options` refuses before writing anything,
    /// naming the release it needs, and returns true: the test has nothing more to try there.
    pub async fn refuses_a_version_pgbackrest_cannot_read(&self, options: &SetupOptions) -> bool {
        let Some(needed) = pgbackrest_needed_for(self.server_major()) else { return false };
        let refused = setup::setup(&self.url, options).await.unwrap_err();
        assert!(
            matches!(&refused, BackupError::VersionUnsupported { server_major, needed: n, .. }
                if *server_major == self.server_major() && *n == needed),
            "{refused}"
        );
        assert!(refused.to_string().contains(&format!("needs pgBackRest {needed} or newer")), "{refused}");
        assert!(refused.to_string().contains("Nothing was changed"), "{refused}");
        assert!(!self.config.exists(), "no configuration written");
        true
    }
}

/// Stops and deletes a restored copy when the test ends, passed or failed.
pub struct Copy(LocalCluster);

impl Copy {
    pub fn of(production: &Production, data_dir: &Path) -> Copy {
        let root = data_dir.parent().unwrap().to_owned();
        Copy(LocalCluster { root, ..production.cluster.clone() })
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        restore::stop_and_remove(&self.0);
    }
}

pub use crate::harness::exec_at as exec;

/// T, a second after the last write, and `mistake` a second after T: returns what a restore to
/// T must give back (each table's fingerprint at T) and T.
pub async fn mistake_after_t(
    url: &DatabaseUrl,
    mistake: &str,
) -> (Vec<drill_api::Fingerprint>, DateTime<Utc>) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = fingerprint(url.expose()).await;
    let mut conn = PgConnection::connect(url.expose()).await.unwrap();
    let t: Checked = sqlx::query_scalar("SELECT now()").fetch_one(&mut conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::raw_sql(AssertSqlSafe(mistake.to_owned())).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    assert_ne!(fingerprint(url.expose()).await, before, "the mistake changed something");
    (before, t.0)
}

/// Runs `cabinet-db backup --config CONFIG <command> --state-dir STATE <case>` for each case
/// and asserts a refusal (exit 2) that says the expected words, with neither path created;
/// returns what each printed on stderr.
pub fn assert_refused_before_writing(
    command: &str,
    config: &Path,
    state: &Path,
    env: &[(&str, &str)],
    cases: Vec<(Vec<String>, &str)>,
) -> Vec<String> {
    let mut shown_all = Vec::new();
    for (args, expected) in cases {
        let out = binary()
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/cabinet")
            .envs(env.iter().copied())
            .args(["backup", "--config", config.to_str().unwrap(), command, "--state-dir"])
            .arg(state)
            .args(&args)
            .output()
            .unwrap();
        let shown = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {shown}");
        assert!(shown.contains(expected), "{args:?}: expected {expected:?} in {shown}");
        assert!(!config.exists() && !state.exists(), "{args:?}: something was written");
        shown_all.push(shown);
    }
    shown_all
}

/// Row count and an order-independent checksum of each of our tables.
pub async fn fingerprint(url: &str) -> Vec<drill_api::Fingerprint> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let prints = drill_api::fingerprint(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    prints
}

/// The names of the WAL files in the repository's archive.
pub fn archived_wal(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir(repo.join("archive"))
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.len() > 24 && !n.ends_with(".backup"))
        .collect();
    names.sort();
    names
}

pub fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        // pgBackRest's `latest` link would list the newest backup twice.
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() { out.extend(walkdir(path)) } else { out.push(path) }
    }
    out
}
