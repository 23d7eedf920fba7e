//! Backups and restores, on a cluster of their own (archiving needs a restart and must not
//! slow the other scenarios), holding `--import-rows` users and `--sites` sites:
//!
//! - a full backup through cabinet-db (pgBackRest) against `pg_basebackup -Ft` of the same
//!   cluster;
//! - a restore to a point in time, to the first query on the promoted copy, against what an
//!   operator would do by hand: copy a `pg_basebackup` taken at the same moment, point
//!   `restore_command` at a directory holding the same WAL, set the same target, start, wait;
//! - the repository's size after one full backup against `pg_dump -Fc` of the database.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use cabinet_db::{
    backup::{
        catalog::Catalog,
        restore::{self, RestoreOptions, Target},
        run::{self, Kind, pgbackrest_for},
        setup::{self, SetupOptions},
    },
    compat,
    db::DatabaseUrl,
    local_cluster::{LocalCluster, ServerSettings},
    migrations::{MigrationSet, RunnerOptions, runner},
    models::timestamps::Checked,
};
use sqlx::{Connection, PgConnection};

use crate::{
    Bench, SUPERUSER,
    measure::timed,
    report::{Row, Stats, time_row},
};

pub async fn backup(bench: &Bench) -> Vec<Row> {
    let root = bench.work.path().join("backup");
    let port = free_port();
    let cluster = LocalCluster::new(root.join("cluster"), port).unwrap();
    if let Err(needed) =
        pgbackrest_version().and_then(|v| compat::pgbackrest_supports(v, cluster.binaries.major()))
    {
        eprintln!(
            "skipped: this pgBackRest cannot back up PostgreSQL {} (needs {needed})",
            cluster.binaries.major()
        );
        return Vec::new();
    }
    cluster.init(SUPERUSER, ServerSettings { port, durable: true }).unwrap();
    // pg_basebackup and pg_dump come in over the socket as the server's user, like pgBackRest.
    let hba = cluster.pgdata().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("local replication {SUPERUSER} peer map=server\n{rules}")).unwrap();
    cluster.start().unwrap();
    let source = Source::new(cluster, bench).await;
    let config = root.join("pgbackrest.conf");
    let options = SetupOptions::local(config.clone(), root.join("state"), root.join("repo"));
    setup::setup(&source.url, &options).await.unwrap();
    source.cluster.stop("fast").unwrap();
    source.cluster.start().unwrap();
    assert!(setup::setup(&source.url, &options).await.unwrap().checked);

    // Full backups, ours and the references alternating: a plain tar, and a gzipped one (the
    // repository is compressed too).
    let (mut ours, mut tar, mut gzipped) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..bench.repeat() {
        let started = Instant::now();
        run::run(&config, Kind::Full, None).unwrap();
        ours.push(started.elapsed().as_secs_f64());
        for (extra, times) in [(None, &mut tar), (Some("-z"), &mut gzipped)] {
            let dir = root.join(format!("basebackup-{i}"));
            let mut command = source.pg_basebackup(&dir, "t");
            command.args(extra);
            times.push(timed(&mut command).0);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    let work = format!("full backup of {} users + {} sites", source.users, source.sites);
    let ours = Stats::of(ours);
    let mut against_gzip = time_row(&work, ours, "pg_basebackup -Ft -z", Stats::of(gzipped), 1.5);
    against_gzip.goal = "reported".into();
    against_gzip.met = true;
    let mut rows = vec![time_row(&work, ours, "pg_basebackup -Ft", Stats::of(tar), 1.5), against_gzip];

    // The repository against a logical dump.
    let catalog = Catalog::from_info(&pgbackrest_for(&config).unwrap().info_json().unwrap());
    let repo_bytes = catalog.newest_full().and_then(|b| b.repository_size).unwrap_or(0) as f64;
    let dump = root.join("bench.dump");
    std::fs::File::create(&dump).unwrap();
    source.cluster.run_as.hand_over(&dump).unwrap();
    timed(source.tool("pg_dump").args(["-Fc", "-f"]).arg(&dump).arg("bench"));
    let dump_bytes = std::fs::metadata(&dump).unwrap().len() as f64;
    let mib =
        |bytes: f64| Stats { min: bytes / 1048576.0, median: bytes / 1048576.0, max: bytes / 1048576.0 };
    rows.push(Row {
        work: "repository after one full backup".into(),
        unit: "MiB".into(),
        ours: mib(repo_bytes),
        reference_name: "pg_dump -Fc".into(),
        reference: mib(dump_bytes),
        ratio: repo_bytes / dump_bytes,
        goal: "reported".into(),
        met: true,
    });

    // Point-in-time restores: a base copy taken beside the newest backup, then writes, T, more
    // writes; both restore to T from the same WAL.
    let base = root.join("base-plain");
    timed(&mut source.pg_basebackup(&base, "p"));
    source
        .exec("UPDATE users SET email = 'before-' || user_id || '@example.com' WHERE user_id LIKE '%1'")
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let target = source.now().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    source.exec("UPDATE users SET email = NULL WHERE user_id LIKE '%2'; DELETE FROM sites WHERE site_id LIKE '%3'").await;
    source.exec("SELECT pg_switch_wal()").await;
    let wal = root.join("wal-archive");
    source.copy_wal(&wal);
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    for i in 0..bench.repeat() {
        let report = restore::restore(&RestoreOptions {
            config_path: config.clone(),
            // Beside, not inside, the directory holding pgBackRest's configuration (restore refuses that).
            target_dir: bench.work.path().join(format!("restored-{i}")),
            port: None,
            target: Target::Time(target),
            repo: None,
            // The WAL reaching T is archived already, as it is in the reference's directory.
            live: None,
            database: "bench".into(),
        })
        .await
        .unwrap();
        ours.push(report.seconds_to_recovery);
        restore::stop_and_remove(&report.cluster);
        reference.push(source.restore_by_hand(&base, &wal, target, &root.join(format!("by-hand-{i}"))).await);
    }
    let (ours, reference) = (Stats::of(ours), Stats::of(reference));
    let mut row = time_row(
        "restore to a point in time, to first query",
        ours,
        "pg_basebackup copy + WAL replay by hand",
        reference,
        1.5,
    );
    row.goal = "≤ 1.5× and ≤ 30 s".into();
    row.met = row.ratio <= 1.5 && ours.median <= 30.0;
    rows.push(row);
    rows
}

/// The installed pgBackRest's version, or why there is none.
fn pgbackrest_version() -> Result<(u32, u32), String> {
    let out = Command::new("pgbackrest").arg("version").output().map_err(|_| "pgbackrest".to_owned())?;
    cabinet_db::backup::pgbackrest::parse_version(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "a pgbackrest that prints its version".to_owned())
}

/// The cluster being backed up.
struct Source {
    cluster: LocalCluster,
    url: DatabaseUrl,
    password: String,
    users: usize,
    sites: usize,
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.cluster.stop("immediate");
    }
}

impl Source {
    /// Migrates and loads the rows.
    async fn new(cluster: LocalCluster, bench: &Bench) -> Source {
        let password = cluster.superuser_password().unwrap();
        let url = cluster.url(SUPERUSER, &password, "bench");
        let (users, sites) = (bench.args.import_rows, bench.args.sites);
        let source = Source { cluster, url, password, users, sites };
        let mut admin =
            PgConnection::connect(source.cluster.url(SUPERUSER, &source.password, "postgres").expose())
                .await
                .unwrap();
        sqlx::raw_sql("CREATE DATABASE bench").execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        runner::up(&source.url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default())
            .await
            .unwrap();
        source
            .exec(&format!(
                "INSERT INTO sites (site_id, domain, ai_prompt, brand_name, language)
                   SELECT 'site-' || n, 'site-' || n || '.example.com',
                          repeat('You answer questions about site ' || n || '. ', 20), 'Brand ' || n, 'en'
                     FROM generate_series(1, {sites}) n;
                 INSERT INTO users (user_id, email, first_seen, last_seen)
                   SELECT 'user-' || n, 'user' || n || '@example.com', now() - interval '1 day', now()
                     FROM generate_series(1, {users}) n;
                 CHECKPOINT"
            ))
            .await;
        source
    }

    async fn exec(&self, sql: &str) {
        let mut conn = PgConnection::connect(self.url.expose()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }

    async fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let mut conn = PgConnection::connect(self.url.expose()).await.unwrap();
        let now: Checked = sqlx::query_scalar("SELECT now()").fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        now.0
    }

    /// A PostgreSQL client tool against this cluster, as the server's user over its socket.
    fn tool(&self, name: &str) -> Command {
        let mut command = self.cluster.run_as.command(&self.cluster.binaries.tool(name));
        command.arg("-h").arg(self.cluster.socket_dir()).args([
            "-p",
            &self.cluster.port.to_string(),
            "-U",
            SUPERUSER,
        ]);
        command
    }

    /// `pg_basebackup -F<format>` (with its WAL, fast checkpoint) into a new directory.
    fn pg_basebackup(&self, dir: &Path, format: &str) -> Command {
        std::fs::create_dir_all(dir).unwrap();
        // A data directory PostgreSQL will start from (plain format) must be private.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        self.cluster.run_as.hand_over(dir).unwrap();
        let mut command = self.tool("pg_basebackup");
        command.arg("-D").arg(dir).args([&format!("-F{format}"), "-X", "stream", "-c", "fast"]);
        command
    }

    /// The WAL segments in pg_wal, into a directory a `restore_command` reads (untimed: the
    /// archive an operator would already have).
    fn copy_wal(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(self.cluster.pgdata().join("pg_wal")).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 24 || name.ends_with(".history") {
                std::fs::copy(entry.path(), dir.join(&name)).unwrap();
            }
        }
        let status = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status().unwrap();
        assert!(status.success());
    }

    /// The by-hand restore: copy the base backup, configure recovery to `target` from `wal`,
    /// start, wait until promoted and a query answers. Seconds.
    async fn restore_by_hand(
        &self,
        base: &Path,
        wal: &Path,
        target: chrono::DateTime<chrono::Utc>,
        root: &Path,
    ) -> f64 {
        let started = Instant::now();
        let copy = LocalCluster { root: root.to_owned(), port: free_port(), ..self.cluster.clone() };
        for dir in [root.to_owned(), root.join("log"), copy.socket_dir()] {
            std::fs::create_dir_all(&dir).unwrap();
            copy.run_as.hand_over(&dir).unwrap();
        }
        let status = Command::new("cp").arg("-a").arg(base).arg(copy.pgdata()).status().unwrap();
        assert!(status.success(), "cp -a");
        copy.write_settings(ServerSettings { port: copy.port, durable: true }).unwrap();
        let recovery = format!(
            "\narchive_mode = off\nrestore_command = 'cp {}/%f %p'\nrecovery_target_time = '{}'\nrecovery_target_action = 'promote'\n",
            wal.display(),
            target.format("%Y-%m-%d %H:%M:%S%.6f+00")
        );
        let auto = copy.pgdata().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text.push_str(&recovery);
        std::fs::write(&auto, text).unwrap();
        std::fs::write(copy.pgdata().join("recovery.signal"), "").unwrap();
        copy.run_as.hand_over(&copy.pgdata().join("recovery.signal")).unwrap();
        copy.start().unwrap();
        let url = copy.url(SUPERUSER, &self.password, "bench");
        loop {
            if let Ok(mut conn) = PgConnection::connect(url.expose()).await {
                let promoted: Result<bool, _> =
                    sqlx::query_scalar("SELECT NOT pg_is_in_recovery()").fetch_one(&mut conn).await;
                conn.close().await.ok();
                if promoted.unwrap_or(false) {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(300), "the by-hand copy did not promote");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        restore::stop_and_remove(&copy);
        seconds
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
