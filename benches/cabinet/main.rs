//! cabinet-db against the physical limit and against what a user would otherwise use.
//!
//! Starts its own PostgreSQL (the library's `LocalCluster`, with durable default settings),
//! loads data, runs each scenario and its reference against the same cluster in the same
//! run, and prints one Markdown table (min / median / max of `--repeat` runs) plus, with
//! `--json FILE`, the same as JSON. A benchmark is not a test: it never fails on a number.
//!
//! `cargo bench --bench cabinet -- --quick` runs everything once at a tiny size (CI does, so
//! it cannot rot); without `--quick` the defaults finish in a few minutes on 2 cores.

// A test binary has no public API: its modules' `pub` items are for each other.
#![allow(unreachable_pub)]

/// Activity recording: batched `record_seen` against one upsert per event.
mod activity;
/// Backups: pgBackRest against pg_basebackup, restore time, repository size against pg_dump.
mod backup;
/// High availability: failover, read gap, switchover, the cost of a synchronous standby.
mod cluster;
/// `dev up` against a bare initdb.
mod cold_start;
/// The tests' stand-in tailscaled LocalAPI (whois for the lab's laptop), shared.
#[path = "../../tests/it/fake_localapi.rs"]
#[allow(dead_code, reason = "the benchmark answers whois only")]
mod fake_localapi;
/// What the change history costs: writes with its triggers against the same without.
mod history;
/// Several hosts in network namespaces and a live Patroni cluster: the tests' lab, shared.
#[path = "../../tests/it/lab/mod.rs"]
#[allow(dead_code, reason = "the tests use more of the lab than the benchmark")]
mod lab;
/// Lookups by id and by domain against pgbench.
mod lookups;
/// Client tasks against a deadline, pgbench, a command's wall time and peak memory.
mod measure;
/// A scrape of serve's /metrics against collecting one (`cabinet-db metrics`).
mod metrics;
/// `migrate status` against `alembic current`.
mod migrate_status;
/// The admin panel's sites list and users search pages against the library calls they wrap.
mod panel;
/// `record_seen`'s previous path (merge in Rust, one statement), the function's reference.
mod previous_seen;
/// The result rows and their table.
mod report;
/// Import and export against `psql \copy`.
mod transfer;

use std::path::PathBuf;

use cabinet_db::{
    db::DatabaseUrl,
    local_cluster::{LocalCluster, ServerSettings},
    migrations::{MigrationSet, RunnerOptions, runner},
};
use clap::Parser;
use sqlx::{Connection, PgPool};

#[derive(Debug, Parser)]
struct Args {
    /// Tiny sizes, one repetition: checks that every scenario still runs.
    #[arg(long)]
    quick: bool,
    /// Repetitions of each measurement.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients for lookups and activity recording.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Sites in the table for lookups.
    #[arg(long, default_value_t = 10_000)]
    sites: usize,
    /// Rows for the import/export scenario (and 4× that for the memory check).
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: usize,
    /// Events per record_seen batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Run only these scenarios (lookups, activity, history, import, panel, migrate, metrics,
    /// cold-start, backup, cluster); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Bench {
    args: Args,
    cluster: LocalCluster,
    base: String,
    password: String,
    binary: PathBuf,
    work: tempfile::TempDir,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.cluster.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.cluster.root);
    }
}

const SUPERUSER: &str = "bench";

impl Bench {
    fn url(&self, database: &str) -> DatabaseUrl {
        DatabaseUrl::new(format!("{}/{database}", self.base))
    }

    async fn exec(&self, database: &str, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(self.url(database).expose()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
    }

    async fn pool(&self, size: usize) -> PgPool {
        cabinet_db::db::pool(
            &self.url("bench"),
            "cabinet-db bench",
            size as u32,
            cabinet_db::db::Liveness::Trusted,
        )
        .await
        .unwrap()
    }

    fn repeat(&self) -> usize {
        if self.args.quick { 1 } else { self.args.repeat.max(1) }
    }

    fn seconds(&self) -> f64 {
        if self.args.quick { 0.5 } else { self.args.seconds }
    }

    fn pg_tool(&self, name: &str) -> PathBuf {
        self.cluster.binaries.tool(name)
    }
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(args));
}

async fn run(mut args: Args) {
    if args.quick {
        args.sites = 1_000;
        args.import_rows = 10_000;
        args.batch = 100;
    }
    let bench = start(args).await;
    let wanted = |name: &str| bench.args.only.is_empty() || bench.args.only.iter().any(|o| o == name);
    let mut rows = Vec::new();
    if wanted("lookups") {
        eprintln!("== lookups");
        rows.extend(lookups::lookups(&bench).await);
    }
    if wanted("activity") {
        eprintln!("== activity recording");
        rows.extend(activity::activity(&bench).await);
    }
    if wanted("history") {
        eprintln!("== the change history's cost");
        rows.extend(history::history_cost(&bench).await);
    }
    if wanted("import") {
        eprintln!("== import / export");
        rows.extend(transfer::import_export(&bench).await);
    }
    if wanted("panel") {
        eprintln!("== admin panel pages");
        rows.extend(panel::panel_pages(&bench).await);
    }
    if wanted("migrate") {
        eprintln!("== migrate status vs alembic current");
        rows.extend(migrate_status::migrate_status(&bench).await);
    }
    if wanted("metrics") {
        eprintln!("== a metrics scrape, cached and cold");
        rows.extend(metrics::scrape(&bench).await);
    }
    if wanted("cold-start") {
        eprintln!("== cold start");
        rows.extend(cold_start::cold_start(&bench));
    }
    if wanted("backup") {
        eprintln!("== backup and restore");
        rows.extend(backup::backup(&bench).await);
    }
    if wanted("cluster") {
        eprintln!("== high availability (a live Patroni cluster)");
        rows.extend(cluster::cluster(&bench).await);
    }
    report::print_table(&rows, &bench.cluster.binaries.version);
    if let Some(path) = &bench.args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

async fn start(args: Args) -> Bench {
    let work = tempfile::Builder::new()
        .prefix("cabinet-bench-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir_in("/tmp")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = LocalCluster::new(work.path().join("cluster"), port).expect("PostgreSQL server binaries");
    cluster.init(SUPERUSER, ServerSettings { port, durable: true }).unwrap();
    cluster.start().unwrap();
    let password = cluster.superuser_password().unwrap();
    let base = format!("postgres://{SUPERUSER}:{password}@127.0.0.1:{port}");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_cabinet-db"));
    let bench = Bench { args, cluster, base, password, binary, work };
    bench.exec("postgres", "CREATE DATABASE bench").await;
    runner::up(&bench.url("bench"), &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default())
        .await
        .unwrap();
    bench
}
