//! Applying and reverting migrations.
//!
//! Everything happens on one dedicated connection that holds the migration lock (see
//! `lock`) and is closed at the end, whatever happened. Each migration runs in its own
//! transaction together with its bookkeeping row, so a failure or a killed process leaves
//! the previous version intact; `-- no-transaction` files are the exception and are limited
//! to one statement by the linter.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection, postgres::PgDatabaseError};

use super::{
    ledger,
    lock::{self, LockHolder},
    plan::{Assessment, Problem},
    source::{Migration, MigrationSet, Script, SourceError},
};
use crate::db::{self, DatabaseUrl, DbError, SQLSTATE_LOCK_NOT_AVAILABLE};

/// Default wait for another deployer's migration lock.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 30;
/// Default `lock_timeout` inside a migration: short, so a migration queued behind a long
/// transaction does not block every other query on the table while it waits.
pub const DEFAULT_DDL_LOCK_TIMEOUT_MS: u64 = 5_000;
/// Default `statement_timeout` inside a migration.
pub const DEFAULT_STATEMENT_TIMEOUT_SECS: u64 = 15 * 60;
/// Default number of retries of a migration that hit `lock_timeout`.
pub const DEFAULT_LOCK_RETRIES: u32 = 5;
/// First pause before retrying after a lock timeout; doubles each time.
const RETRY_BACKOFF_START_MS: u64 = 500;

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// How long to wait for the migration lock held by another deployer.
    pub lock_wait: Duration,
    /// `lock_timeout` for the statements of each migration.
    pub ddl_lock_timeout: Duration,
    /// `statement_timeout` for the statements of each migration (zero: none).
    pub statement_timeout: Duration,
    /// Retries of a migration that failed on `lock_timeout` (SQLSTATE 55P03).
    pub lock_retries: u32,
    /// The role that owns the schema: migrations `SET ROLE` to it when it exists and the
    /// connecting user is a member, so everything they create belongs to it.
    pub owner_role: Option<String>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            lock_wait: Duration::from_secs(DEFAULT_LOCK_WAIT_SECS),
            ddl_lock_timeout: Duration::from_millis(DEFAULT_DDL_LOCK_TIMEOUT_MS),
            statement_timeout: Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_SECS),
            lock_retries: DEFAULT_LOCK_RETRIES,
            owner_role: Some(crate::roles::Roles::default().name(crate::roles::RoleKind::Owner)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{}", describe_lock_timeout(*.waited, .holder.as_ref()))]
    LockTimeout { waited: Duration, holder: Option<LockHolder> },
    #[error("refusing to migrate:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Unsafe(Vec<Problem>),
    #[error(
        "there is no migration {version:04}; the known versions are 0001 to {head:04} (see cabinet-db migrate history), or 0 for an empty schema"
    )]
    UnknownTarget { version: i64, head: i64 },
    #[error("migration {file} failed{location}; the database stays at version {previous:04}{partial}")]
    ScriptFailed {
        file: String,
        /// ` at line L, column C` when PostgreSQL reported a position.
        location: String,
        previous: i64,
        /// A warning for no-transaction migrations, which may have partly run.
        partial: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "migration {file} could not get its table locks within lock_timeout after {attempts} attempts; other sessions hold them (see pg_locks / pg_stat_activity), retry when traffic is lower or raise --ddl-lock-timeout"
    )]
    LockRetriesExhausted {
        file: String,
        attempts: u32,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Baseline(Box<super::baseline::BaselineError>),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

fn describe_lock_timeout(waited: Duration, holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => format!(
            "another migration holds the migration lock ({h}); waited {}s. Wait for it to finish, or if it is stuck end it with SELECT pg_terminate_backend({}); a longer --lock-timeout waits longer",
            waited.as_secs(),
            h.pid
        ),
        None => format!(
            "could not take the migration lock within {}s, but no holder is visible (it was released just now, or this role cannot see other sessions); try again",
            waited.as_secs()
        ),
    }
}

/// One migration step that ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub version: i64,
    pub name: String,
    pub file: String,
    pub direction: Direction,
    pub execution_ms: i64,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// Where `down` goes.
#[derive(Debug, Clone, Copy)]
pub enum DownTarget {
    /// Keep this version applied, revert everything newer.
    To(i64),
    /// Revert the newest N.
    Steps(u32),
    /// Revert everything.
    All,
}

/// Reads the database's migration state; takes no lock and changes nothing.
pub async fn status(url: &DatabaseUrl, set: &MigrationSet) -> Result<Assessment, MigrateError> {
    let mut conn = db::connect(url, "cabinet-db migrate status").await?;
    let applied = ledger::applied(&mut conn).await;
    let _ = conn.close().await;
    Ok(Assessment::new(set, applied?))
}

/// Applies pending migrations up to `target` (default: the newest).
pub async fn up(
    url: &DatabaseUrl,
    set: &MigrationSet,
    target: Option<i64>,
    options: &RunnerOptions,
) -> Result<Vec<StepReport>, MigrateError> {
    let target = target.unwrap_or(set.head());
    check_target(set, target)?;
    with_lock(url, options, async |conn| {
        ledger::ensure_table(conn).await?;
        let assessment = Assessment::new(set, ledger::applied(conn).await?);
        if !assessment.problems.is_empty() {
            return Err(MigrateError::Unsafe(assessment.problems));
        }
        let mut current = assessment.current.unwrap_or(0);
        let mut reports = Vec::new();
        for version in assessment.pending.into_iter().filter(|&v| v <= target) {
            let migration = set.get(version).expect("pending versions come from the set");
            reports.push(run_step(conn, migration, Direction::Up, current, options).await?);
            current = version;
        }
        Ok(reports)
    })
    .await
}

/// Reverts applied migrations down to a target.
pub async fn down(
    url: &DatabaseUrl,
    set: &MigrationSet,
    target: DownTarget,
    options: &RunnerOptions,
) -> Result<Vec<StepReport>, MigrateError> {
    if let DownTarget::To(version) = target {
        check_target(set, version)?;
    }
    with_lock(url, options, async |conn| {
        let assessment = Assessment::new(set, ledger::applied(conn).await?);
        if !assessment.problems.is_empty() {
            return Err(MigrateError::Unsafe(assessment.problems));
        }
        let mut applied: Vec<i64> = assessment.applied.iter().map(|a| a.version).collect();
        applied.reverse();
        let to_revert: Vec<i64> = match target {
            DownTarget::To(version) => applied.iter().copied().filter(|&v| v > version).collect(),
            DownTarget::Steps(n) => applied.iter().copied().take(n as usize).collect(),
            DownTarget::All => applied.clone(),
        };
        let mut reports = Vec::new();
        for version in to_revert {
            let migration = set.get(version).expect("no unknown applied versions (checked above)");
            // A failed revert leaves this version applied, hence `previous = version`.
            reports.push(run_step(conn, migration, Direction::Down, version, options).await?);
        }
        Ok(reports)
    })
    .await
}

fn check_target(set: &MigrationSet, version: i64) -> Result<(), MigrateError> {
    if version == 0 || set.get(version).is_some() {
        Ok(())
    } else {
        Err(MigrateError::UnknownTarget { version, head: set.head() })
    }
}

/// Runs `body` on a dedicated connection holding the migration lock, then releases the lock
/// and closes the connection whether `body` succeeded or not.
pub async fn with_lock<T>(
    url: &DatabaseUrl,
    options: &RunnerOptions,
    body: impl AsyncFnOnce(&mut PgConnection) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    let mut conn = db::connect(url, "cabinet-db migrate").await?;
    // If this process dies mid-migration, the server notices the closed socket within a
    // second even while a statement runs, rolls back, and frees the lock for the next run.
    sqlx::query("SELECT set_config('client_connection_check_interval', '1s', false)")
        .execute(&mut conn)
        .await?;
    if let Some(owner) = &options.owner_role {
        become_owner(&mut conn, owner).await?;
    }
    match lock::acquire(&mut conn, options.lock_wait).await? {
        Ok(()) => {}
        Err(holder) => {
            let _ = conn.close().await;
            return Err(MigrateError::LockTimeout { waited: options.lock_wait, holder });
        }
    }
    tracing::debug!("took the migration lock");
    let result = body(&mut conn).await;
    if let Err(e) = lock::release(&mut conn).await {
        // Closing the session below releases it anyway.
        tracing::warn!(error = %e, "could not release the migration lock explicitly");
    }
    let _ = conn.close().await;
    result
}

/// `SET ROLE owner` when that role exists, we are a member, and `roles apply` has prepared this
/// database for it (it may create in `public` and owns every table there: otherwise a migration
/// or a baseline could not alter or drop them). Otherwise we stay who we
/// are: roles are cluster-wide, so a new database can meet an owner role that has no rights in
/// it yet; `roles apply` then hands it what the migrations created.
async fn become_owner(conn: &mut PgConnection, owner: &str) -> Result<(), sqlx::Error> {
    let member: bool = sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM pg_roles r
             WHERE r.rolname = $1
               AND pg_has_role(current_user, r.oid, 'MEMBER')
               AND has_schema_privilege(r.oid, 'public', 'CREATE')
               AND NOT EXISTS (SELECT 1 FROM pg_class c
                                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                                  AND c.relowner <> r.oid))",
    )
    .bind(owner)
    .fetch_one(&mut *conn)
    .await?;
    if member {
        sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {}", db::quote_ident(owner))))
            .execute(&mut *conn)
            .await?;
        tracing::debug!(role = owner, "migrating as the owner role");
    }
    Ok(())
}

async fn run_step(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    previous: i64,
    options: &RunnerOptions,
) -> Result<StepReport, MigrateError> {
    let script = match direction {
        Direction::Up => &migration.up,
        Direction::Down => &migration.down,
    };
    let mut attempt = 0;
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_START_MS);
    loop {
        attempt += 1;
        let started = Instant::now();
        let outcome = if script.no_transaction {
            run_without_transaction(conn, migration, direction, script, options, started).await
        } else {
            run_in_transaction(conn, migration, direction, script, options, started).await
        };
        match outcome {
            Ok(execution_ms) => {
                tracing::info!(migration.file = %script.file, migration.ms = execution_ms, "applied");
                return Ok(StepReport {
                    version: migration.version,
                    name: migration.name.clone(),
                    file: script.file.clone(),
                    direction,
                    execution_ms,
                    attempts: attempt,
                });
            }
            Err(e) if db::sqlstate(&e).as_deref() == Some(SQLSTATE_LOCK_NOT_AVAILABLE) => {
                if attempt > options.lock_retries {
                    return Err(MigrateError::LockRetriesExhausted {
                        file: script.file.clone(),
                        attempts: attempt,
                        source: e,
                    });
                }
                tracing::warn!(migration.file = %script.file, attempt, "lock_timeout hit, retrying in {}ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                return Err(MigrateError::ScriptFailed {
                    file: script.file.clone(),
                    location: error_location(&script.sql, &e),
                    previous,
                    partial: if script.no_transaction {
                        " (this migration runs outside a transaction: look for a half-built object, e.g. an INVALID index, before rerunning)"
                    } else {
                        ""
                    },
                    source: e,
                });
            }
        }
    }
}

async fn set_timeouts(
    conn: &mut PgConnection,
    options: &RunnerOptions,
    local: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('lock_timeout', $1, $3), set_config('statement_timeout', $2, $3)")
        .bind(format!("{}ms", options.ddl_lock_timeout.as_millis()))
        .bind(format!("{}ms", options.statement_timeout.as_millis()))
        .bind(local)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn record_step(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    execution_ms: i64,
) -> Result<(), sqlx::Error> {
    match direction {
        Direction::Up => {
            ledger::record(conn, migration.version, &migration.name, &migration.up, execution_ms, false).await
        }
        Direction::Down => ledger::remove(conn, migration.version).await,
    }
}

async fn run_in_transaction(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    script: &Script,
    options: &RunnerOptions,
    started: Instant,
) -> Result<i64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    set_timeouts(&mut tx, options, true).await?;
    sqlx::raw_sql(AssertSqlSafe(script.sql.clone())).execute(&mut *tx).await?;
    let execution_ms = started.elapsed().as_millis() as i64;
    record_step(&mut tx, migration, direction, execution_ms).await?;
    tx.commit().await?;
    Ok(execution_ms)
}

async fn run_without_transaction(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    script: &Script,
    options: &RunnerOptions,
    started: Instant,
) -> Result<i64, sqlx::Error> {
    set_timeouts(conn, options, false).await?;
    let result = sqlx::raw_sql(AssertSqlSafe(script.sql.clone())).execute(&mut *conn).await;
    let reset = sqlx::raw_sql("RESET lock_timeout; RESET statement_timeout").execute(&mut *conn).await;
    result?;
    reset?;
    let execution_ms = started.elapsed().as_millis() as i64;
    record_step(conn, migration, direction, execution_ms).await?;
    Ok(execution_ms)
}

/// ` at line L, column C` for a PostgreSQL error that carries a position into `sql`.
fn error_location(sql: &str, error: &sqlx::Error) -> String {
    let position =
        error.as_database_error().and_then(|e| e.try_downcast_ref::<PgDatabaseError>()).and_then(|e| match e
            .position()
        {
            Some(sqlx::postgres::PgErrorPosition::Original(p)) => Some(p),
            _ => None,
        });
    match position.and_then(|p| line_and_column(sql, p)) {
        Some((line, column)) => format!(" at line {line}, column {column}"),
        None => String::new(),
    }
}

/// PostgreSQL positions count characters from 1.
fn line_and_column(sql: &str, position: usize) -> Option<(usize, usize)> {
    let before: String = sql.chars().take(position.checked_sub(1)?).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::line_and_column;

    #[test]
    fn positions_become_lines_and_columns() {
        let sql = "SELECT 1;\nSELEC 2;\n";
        assert_eq!(line_and_column(sql, 1), Some((1, 1)));
        assert_eq!(line_and_column(sql, 11), Some((2, 1)));
        assert_eq!(line_and_column(sql, 13), Some((2, 3)));
    }
}
