//! cabinet-db against the physical limit and against what a user would otherwise use.
//!
//! Starts its own PostgreSQL (the library's `LocalCluster`, with durable default settings),
//! loads data, runs each scenario and its reference against the same cluster in the same
//! run, and prints one Markdown table (min / median / max of `--repeat` runs) plus, with
//! `--json FILE`, the same as JSON. A benchmark is not a test: it never fails on a number.
//!
//! `cargo bench --bench cabinet -- --quick` runs everything once at a tiny size (CI does, so
//! it cannot rot); without `--quick` the defaults finish in a few minutes on 2 cores.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cabinet_db::{
    db::DatabaseUrl,
    local_cluster::{LocalCluster, RunAs, ServerSettings},
    migrations::{MigrationSet, RunnerOptions, runner},
    models::{Email, SiteId, UserId},
    sites, users,
};
use chrono::{TimeZone, Utc};
use clap::Parser;
use serde::Serialize;
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
    /// Run only these scenarios (lookups, activity, import, migrate, cold-start); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

/// min / median / max of repeated measurements.
#[derive(Debug, Clone, Copy, Serialize)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

impl Stats {
    fn of(mut values: Vec<f64>) -> Stats {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Stats { min: values[0], median: values[values.len() / 2], max: values[values.len() - 1] }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    work: String,
    unit: String,
    ours: Stats,
    reference_name: String,
    reference: Stats,
    /// How cabinet-db compares, in the "better" direction the goal states.
    ratio: f64,
    goal: String,
    met: bool,
}

/// Higher is better (throughput): ratio = ours / reference.
fn throughput_row(
    work: &str,
    unit: &str,
    ours: Stats,
    reference_name: &str,
    reference: Stats,
    goal: f64,
) -> Row {
    let ratio = ours.median / reference.median;
    Row {
        work: work.into(),
        unit: unit.into(),
        ours,
        reference_name: reference_name.into(),
        reference,
        ratio,
        goal: format!("≥ {goal}×"),
        met: ratio >= goal,
    }
}

/// Lower is better (time): ratio = ours / reference.
fn time_row(work: &str, ours: Stats, reference_name: &str, reference: Stats, goal: f64) -> Row {
    let ratio = ours.median / reference.median;
    Row {
        work: work.into(),
        unit: "s".into(),
        ours,
        reference_name: reference_name.into(),
        reference,
        ratio,
        goal: format!("≤ {goal}×"),
        met: ratio <= goal,
    }
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
        cabinet_db::db::pool(&self.url("bench"), "cabinet-db bench", size as u32).await.unwrap()
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
        rows.extend(lookups(&bench).await);
    }
    if wanted("activity") {
        eprintln!("== activity recording");
        rows.extend(activity(&bench).await);
    }
    if wanted("import") {
        eprintln!("== import / export");
        rows.extend(import_export(&bench).await);
    }
    if wanted("migrate") {
        eprintln!("== migrate status vs alembic current");
        rows.extend(migrate_status(&bench).await);
    }
    if wanted("cold-start") {
        eprintln!("== cold start");
        rows.extend(cold_start(&bench));
    }
    print_table(&rows, &bench.cluster.binaries.version);
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

/// Runs `tasks` clients calling `op` until the deadline; operations per second.
async fn throughput<F, Fut>(tasks: usize, seconds: f64, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let n = op(task, i).await;
                    done.fetch_add(n, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn pgbench(bench: &Bench, script: &str) -> f64 {
    let file = bench.work.path().join("pgbench.sql");
    std::fs::write(&file, script).unwrap();
    let n = bench.args.concurrency.to_string();
    let seconds = (bench.seconds().ceil() as u64).max(1).to_string();
    let out = Command::new(bench.pg_tool("pgbench"))
        .args(["-n", "-M", "prepared", "-c", &n, "-j", &n, "-T", &seconds, "-f"])
        .arg(&file)
        .args(["-h", "127.0.0.1", "-p", &bench.cluster.port.to_string(), "-U", SUPERUSER, "bench"])
        .env("PGPASSWORD", &bench.password)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| {
            panic!("pgbench printed no tps:\n{text}\n{}", String::from_utf8_lossy(&out.stderr))
        })
}

async fn lookups(bench: &Bench) -> Vec<Row> {
    let n = bench.args.sites;
    bench
        .exec(
            "bench",
            &format!(
                "INSERT INTO sites (site_id, domain, ai_prompt, brand_name, language)
                 SELECT i::text, 'site' || i || '.example.com', repeat('You are helpful. ', 40), 'Brand ' || i, 'en'
                   FROM generate_series(1, {n}) i;
                 ANALYZE sites"
            ),
        )
        .await;
    let pool = bench.pool(bench.args.concurrency).await;
    let (mut by_id, mut by_domain, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench.repeat() {
        let p = pool.clone();
        by_id.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let p = p.clone();
                async move {
                    let id = SiteId::parse(&(1 + (task as u64 * 7919 + i * 104_729) % n as u64).to_string())
                        .unwrap();
                    sites::get(&p, &id).await.unwrap().expect("site exists");
                    1
                }
            })
            .await,
        );
        let p = pool.clone();
        by_domain.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let p = p.clone();
                async move {
                    let domain =
                        format!("Site{}.Example.com", 1 + (task as u64 * 7919 + i * 104_729) % n as u64);
                    sites::get_by_domain(&p, &domain).await.unwrap().expect("site exists");
                    1
                }
            })
            .await,
        );
        reference.push(pgbench(
            bench,
            &format!(
                "\\set id random(1, {n})\nSELECT site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage, created_at FROM sites WHERE site_id = :id;\n"
            ),
        ));
    }
    let (by_id, by_domain, reference) = (Stats::of(by_id), Stats::of(by_domain), Stats::of(reference));
    vec![
        throughput_row(
            &format!("site by id, {} clients (n8n's lookup)", bench.args.concurrency),
            "lookups/s",
            by_id,
            "pgbench -M prepared, same query",
            reference,
            0.8,
        ),
        throughput_row(
            "site by domain, same clients",
            "lookups/s",
            by_domain,
            "cabinet-db by id (above)",
            by_id,
            0.8,
        ),
    ]
}

async fn activity(bench: &Bench) -> Vec<Row> {
    const USERS: u64 = 100_000;
    bench
        .exec(
            "bench",
            &format!(
                "INSERT INTO users (user_id, email, first_seen, last_seen)
                 SELECT 'u' || i, 'user' || i || '@example.com', '2026-01-01Z', '2026-01-01Z' FROM generate_series(1, {USERS}) i
                 ON CONFLICT DO NOTHING; ANALYZE users"
            ),
        )
        .await;
    let pool = bench.pool(bench.args.concurrency).await;
    // Every event is newer than the last, so every event must be written (no debounce).
    let clock =
        Arc::new(AtomicI64::new(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap().timestamp_micros()));
    let batch = bench.args.batch;
    let (mut batched, mut single) = (Vec::new(), Vec::new());
    for _ in 0..bench.repeat() {
        let (p, c) = (pool.clone(), clock.clone());
        batched.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let (p, c) = (p.clone(), c.clone());
                async move {
                    let events: Vec<users::SeenEvent> = (0..batch as u64)
                        .map(|k| {
                            let user = 1 + (task as u64 * 1_000_003 + i * 7919 + k * 104_729) % USERS;
                            users::SeenEvent {
                                user_id: UserId::parse(&format!("u{user}")).unwrap(),
                                email: Some(Email::parse(&format!("user{user}@example.com")).unwrap()),
                                at: Utc.timestamp_micros(c.fetch_add(1, Ordering::Relaxed)).unwrap(),
                            }
                        })
                        .collect();
                    users::record_seen(&p, &events, Duration::ZERO).await.unwrap();
                    batch as u64
                }
            })
            .await,
        );
        let (p, c) = (pool.clone(), clock.clone());
        single.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let (p, c) = (p.clone(), c.clone());
                async move {
                    let user = 1 + (task as u64 * 1_000_003 + i * 104_729) % USERS;
                    let at = Utc.timestamp_micros(c.fetch_add(1, Ordering::Relaxed)).unwrap();
                    sqlx::query(
                        "INSERT INTO users (user_id, email, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                         ON CONFLICT (user_id) DO UPDATE SET
                             first_seen = LEAST(users.first_seen, EXCLUDED.first_seen),
                             last_seen = GREATEST(users.last_seen, EXCLUDED.last_seen),
                             email = coalesce(EXCLUDED.email, users.email)",
                    )
                    .bind(format!("u{user}"))
                    .bind(format!("user{user}@example.com"))
                    .bind(at)
                    .execute(&p)
                    .await
                    .unwrap();
                    1
                }
            })
            .await,
        );
    }
    let (batched, single) = (Stats::of(batched), Stats::of(single));

    // WAL per event when users come back within the debounce window, with and without it.
    let events_per_run = if bench.args.quick { 2_000 } else { 100_000 };
    let now = Utc::now();
    bench.exec("bench", &format!("UPDATE users SET last_seen = '{}'", now.to_rfc3339())).await;
    let mut wal = Vec::new();
    for debounce in [users::DEFAULT_DEBOUNCE, Duration::ZERO] {
        // No dead tuples to prune and a fresh checkpoint for both runs alike: the WAL measured
        // is what the events themselves cause.
        bench.exec("bench", "VACUUM users").await;
        bench.exec("bench", "CHECKPOINT").await;
        let mut conn = sqlx::PgConnection::connect(bench.url("bench").expose()).await.unwrap();
        let start: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let mut sent = 0u64;
        let mut k = 0u64;
        while sent < events_per_run {
            let events: Vec<users::SeenEvent> = (0..batch as u64)
                .map(|j| {
                    k += 1;
                    let user = 1 + (k * 104_729 + j) % USERS;
                    users::SeenEvent {
                        user_id: UserId::parse(&format!("u{user}")).unwrap(),
                        email: Some(Email::parse(&format!("user{user}@example.com")).unwrap()),
                        at: now + chrono::Duration::milliseconds((k % 30_000) as i64),
                    }
                })
                .collect();
            users::record_seen(&mut conn, &events, debounce).await.unwrap();
            sent += batch as u64;
        }
        let bytes: f64 =
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8")
                .bind(&start)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        wal.push(bytes / sent as f64);
    }
    let (debounced, undebounced) = (wal[0], wal[1]);
    let one = |v: f64| Stats { min: v, median: v, max: v };
    let mut rows = vec![
        throughput_row(
            &format!("record_seen, {batch}-event batches, {} clients", bench.args.concurrency),
            "events/s",
            batched,
            "one INSERT … ON CONFLICT per event",
            single,
            10.0,
        ),
        Row {
            work: "WAL bytes per repeat event inside the 60 s window".into(),
            unit: "B/event".into(),
            ours: one(debounced),
            reference_name: "same events, no debounce".into(),
            reference: one(undebounced),
            ratio: debounced / undebounced,
            goal: "≤ 0.1×".into(),
            met: debounced / undebounced <= 0.1,
        },
    ];
    rows[0].goal = format!("≥ 10× and ≥ 60k/s ({:.0}/s)", batched.median);
    rows[0].met = rows[0].ratio >= 10.0 && batched.median >= 60_000.0;
    rows
}

fn write_users_csv(path: &Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "user_id,email,first_seen,last_seen").unwrap();
    for i in 0..rows {
        writeln!(
            out,
            "{},user{i}@example.com,2026-01-01T00:00:00Z,2026-02-01T00:00:{:02}.{:06}Z",
            290_000_000_000_000_000u64 + i as u64,
            i % 60,
            i % 1_000_000
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Runs a command to completion: wall seconds and peak resident memory (KiB).
fn timed(command: &mut Command) -> (f64, i64) {
    let started = Instant::now();
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below, which also reports its peak memory")]
    let child = command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `usage` is a valid rusage to fill.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{:?} failed", command);
    (started.elapsed().as_secs_f64(), usage.ru_maxrss)
}

async fn import_export(bench: &Bench) -> Vec<Row> {
    let rows = bench.args.import_rows;
    let file = bench.work.path().join("users.csv");
    write_users_csv(&file, rows);
    let url = bench.url("bench");
    let psql = bench.pg_tool("psql");
    let psql_cmd = |command: &str| {
        let mut c = Command::new(&psql);
        c.args(["-X", "-q", url.expose(), "-c", command]);
        c
    };
    let columns = "user_id, email, first_seen, last_seen";
    let (mut ours_in, mut ref_in, mut ours_out, mut ref_out, mut rss) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..bench.repeat() {
        bench.exec("bench", "TRUNCATE users").await;
        let (secs, kib) = timed(
            Command::new(&bench.binary)
                .args(["users", "import", file.to_str().unwrap(), "--mode", "insert"])
                .env("DATABASE_URL", url.expose()),
        );
        ours_in.push(secs);
        rss.push(kib);
        let out = bench.work.path().join("export.csv");
        ours_out.push(
            timed(
                Command::new(&bench.binary)
                    .args(["users", "export", "--out", out.to_str().unwrap()])
                    .env("DATABASE_URL", url.expose()),
            )
            .0,
        );
        ref_out.push(
            timed(&mut psql_cmd(&format!(
                "\\copy users ({columns}) to '{}' with (format csv, header)",
                out.display()
            )))
            .0,
        );
        bench.exec("bench", "TRUNCATE users").await;
        ref_in.push(
            timed(&mut psql_cmd(&format!(
                "\\copy users ({columns}) from '{}' with (format csv, header)",
                file.display()
            )))
            .0,
        );
    }
    // Memory stays flat as the file grows: 4× the rows.
    let big = bench.work.path().join("users4.csv");
    write_users_csv(&big, rows * 4);
    bench.exec("bench", "TRUNCATE users").await;
    let (_, big_kib) = timed(
        Command::new(&bench.binary)
            .args(["users", "import", big.to_str().unwrap(), "--mode", "insert"])
            .env("DATABASE_URL", url.expose()),
    );
    let _ = std::fs::remove_file(&big);
    let small_kib = *rss.iter().max().unwrap() as f64;
    let one = |v: f64| Stats { min: v, median: v, max: v };
    vec![
        time_row(
            &format!("import {rows} users (CSV)"),
            Stats::of(ours_in),
            "psql \\copy from",
            Stats::of(ref_in),
            1.3,
        ),
        time_row(
            &format!("export {rows} users (CSV)"),
            Stats::of(ours_out),
            "psql \\copy to",
            Stats::of(ref_out),
            1.3,
        ),
        Row {
            work: format!("import peak memory, {} rows vs {rows}", rows * 4),
            unit: "MiB".into(),
            ours: one(big_kib as f64 / 1024.0),
            reference_name: format!("cabinet-db, {rows} rows"),
            reference: one(small_kib / 1024.0),
            ratio: big_kib as f64 / small_kib,
            goal: "flat (≤ 1.2×)".into(),
            met: big_kib as f64 / small_kib <= 1.2,
        },
    ]
}

const ALEMBIC_ENV: &str = r#"from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()

run_migrations_online()
"#;

const ALEMBIC_REVISION: &str = r#""""create sites and users

Revision ID: 3f2a9c1b7d4e
"""
from alembic import op
import sqlalchemy as sa

revision = "3f2a9c1b7d4e"
down_revision = None

def upgrade():
    op.create_table("sites",
        sa.Column("site_id", sa.String, primary_key=True), sa.Column("domain", sa.String),
        sa.Column("ai_script_id", sa.String), sa.Column("ai_prompt", sa.Text), sa.Column("brand_name", sa.String),
        sa.Column("language", sa.String), sa.Column("hubspot_pipeline", sa.String), sa.Column("hubspot_stage", sa.String),
        sa.Column("created_at", sa.DateTime))
    op.create_table("users",
        sa.Column("user_id", sa.String, primary_key=True), sa.Column("email", sa.String),
        sa.Column("first_seen", sa.DateTime), sa.Column("last_seen", sa.DateTime))

def downgrade():
    op.drop_table("users")
    op.drop_table("sites")
"#;

/// A virtualenv with Alembic, SQLAlchemy and psycopg from PyPI, kept in target/ between runs.
fn alembic_venv() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let alembic = venv.join("bin/alembic");
    if alembic.is_file() {
        return Ok(alembic);
    }
    let ok = |c: &mut Command| c.stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    if !ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)) {
        return Err("python3 -m venv failed (apt-get install python3-venv)".into());
    }
    if !ok(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "alembic",
        "SQLAlchemy",
        "psycopg[binary]",
    ])) {
        return Err("pip install alembic SQLAlchemy psycopg[binary] failed".into());
    }
    Ok(alembic)
}

async fn migrate_status(bench: &Bench) -> Vec<Row> {
    let alembic = match alembic_venv() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("skipping the Alembic comparison: {why}");
            return vec![];
        }
    };
    bench.exec("postgres", "CREATE DATABASE alembic_bench").await;
    let project = bench.work.path().join("alembic");
    std::fs::create_dir_all(project.join("versions")).unwrap();
    let url = format!(
        "postgresql+psycopg://{SUPERUSER}:{}@127.0.0.1:{}/alembic_bench",
        bench.password, bench.cluster.port
    );
    std::fs::write(
        project.join("alembic.ini"),
        format!("[alembic]\nscript_location = {}\nsqlalchemy.url = {url}\n", project.display()),
    )
    .unwrap();
    std::fs::write(project.join("env.py"), ALEMBIC_ENV).unwrap();
    std::fs::write(project.join("script.py.mako"), "").unwrap();
    std::fs::write(project.join("versions/3f2a9c1b7d4e_create.py"), ALEMBIC_REVISION).unwrap();
    let run_alembic = |command: &str| {
        let mut c = Command::new(&alembic);
        c.arg("-c").arg(project.join("alembic.ini")).arg(command);
        c
    };
    let mut upgrade = run_alembic("upgrade");
    upgrade.arg("head");
    timed(&mut upgrade);
    let times = if bench.args.quick { 1 } else { 7 };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..times {
        ours.push(
            timed(
                Command::new(&bench.binary)
                    .args(["migrate", "status"])
                    .env("DATABASE_URL", bench.url("bench").expose()),
            )
            .0,
        );
        theirs.push(timed(&mut run_alembic("current")).0);
    }
    let (ours, theirs) = (Stats::of(ours), Stats::of(theirs));
    let ratio = theirs.median / ours.median;
    vec![Row {
        work: "migrate status on an up-to-date database".into(),
        unit: "s".into(),
        ours,
        reference_name: "alembic current (equivalent project)".into(),
        reference: theirs,
        ratio,
        goal: "≥ 20× faster".into(),
        met: ratio >= 20.0,
    }]
}

fn cold_start(bench: &Bench) -> Vec<Row> {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    let run_as = RunAs::detect().unwrap();
    for round in 0..bench.repeat() {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let dir = bench.work.path().join(format!("dev{round}"));
        ours.push(
            timed(Command::new(&bench.binary).args(["dev", "up", "--port", &port, "--data-dir"]).arg(&dir)).0,
        );
        let _ = Command::new(&bench.binary).args(["dev", "down", "--data-dir"]).arg(&dir).output();

        // The bare pair: initdb with the same options, start, one query.
        let root = bench.work.path().join(format!("bare{round}"));
        std::fs::create_dir_all(&root).unwrap();
        run_as.hand_over(&root).unwrap();
        let pgdata = root.join("pgdata");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let started = Instant::now();
        let ok = |c: &mut Command| {
            assert!(c.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success(), "{c:?}")
        };
        ok(run_as.command(&bench.pg_tool("initdb")).arg("-D").arg(&pgdata).args([
            "-U",
            "bare",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        ]));
        let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {}", root.display());
        ok(run_as
            .command(&bench.pg_tool("pg_ctl"))
            .args(["start", "-w", "-D"])
            .arg(&pgdata)
            .args(["-o", &options, "-l"])
            .arg(root.join("log")));
        ok(Command::new(bench.pg_tool("psql")).args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "bare",
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ]));
        bare.push(started.elapsed().as_secs_f64());
        let _ = run_as
            .command(&bench.pg_tool("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&pgdata)
            .output();
    }
    let (ours, bare) = (Stats::of(ours), Stats::of(bare));
    let mut row =
        time_row("dev up on an empty dir, to first query", ours, "initdb + pg_ctl start + psql", bare, 2.0);
    row.goal = "≤ 3 s and ≤ 2×".into();
    row.met = ours.median <= 3.0 && row.ratio <= 2.0;
    vec![row]
}

fn print_table(rows: &[Row], server: &str) {
    let fmt = |s: &Stats, unit: &str| {
        let v = |x: f64| {
            if x >= 100.0 {
                format!("{x:.0}")
            } else if x >= 1.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.3}")
            }
        };
        format!("{} {unit} ({}–{})", v(s.median), v(s.min), v(s.max))
    };
    println!("\nServer: {server}. Figures: median (min–max).\n");
    println!("| work | cabinet-db | reference | ratio | goal | met |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {}: {} | {:.2}× | {} | {} |",
            r.work,
            fmt(&r.ours, &r.unit),
            r.reference_name,
            fmt(&r.reference, &r.unit),
            r.ratio,
            r.goal,
            if r.met { "yes" } else { "**no**" }
        );
    }
}
