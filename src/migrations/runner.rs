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
    error::MigrateError,
    ledger,
    plan::Assessment,
    session::with_lock,
    source::{Migration, MigrationSet, Script, format_version},
};
use crate::{
    db::{self, DatabaseUrl, SQLSTATE_LOCK_NOT_AVAILABLE},
    history::Actor,
};

/// Default wait for another deployer's migration lock.
pub(crate) const DEFAULT_LOCK_WAIT_SECS: u64 = 30;
/// Default `lock_timeout` inside a migration: short, so a migration queued behind a long
/// transaction does not block every other query on the table while it waits.
pub(crate) const DEFAULT_DDL_LOCK_TIMEOUT_MS: u64 = 5_000;
/// Default `statement_timeout` inside a migration.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT_SECS: u64 = 15 * 60;
/// Default number of retries of a migration that hit `lock_timeout`.
pub(crate) const DEFAULT_LOCK_RETRIES: u32 = 5;
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
    /// Who runs the migrations. Each migration's transaction sets `cabinet.actor` to
    /// `cabinet-db migrate up NNNN_name by <actor>`, so rows a data migration changes are
    /// attributed to that migration (and person) in the change history.
    pub actor: Option<Actor>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            lock_wait: Duration::from_secs(DEFAULT_LOCK_WAIT_SECS),
            ddl_lock_timeout: Duration::from_millis(DEFAULT_DDL_LOCK_TIMEOUT_MS),
            statement_timeout: Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_SECS),
            lock_retries: DEFAULT_LOCK_RETRIES,
            owner_role: Some(crate::roles::Roles::default().name(crate::roles::RoleKind::Owner)),
            actor: None,
        }
    }
}

/// One migration step that ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub version: i64,
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) direction: Direction,
    pub(crate) execution_ms: i64,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Up,
    Down,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// The actor the change history names for rows a migration step writes, e.g.
/// `cabinet-db migrate up 0005_backfill_brand by alice@host`.
pub(crate) fn migration_actor(migration: &Migration, direction: Direction, runner: Option<&Actor>) -> String {
    let step = format!(
        "cabinet-db migrate {} {}_{}",
        direction.as_str(),
        format_version(migration.version),
        migration.name
    );
    let full = match runner {
        Some(actor) => format!("{step} by {actor}"),
        None => step,
    };
    // The database holds actors to the CLI's 200 characters, the migration's too.
    if full.chars().count() <= crate::history::MAX_ACTOR_CHARS {
        full
    } else {
        full.chars().take(crate::history::MAX_ACTOR_CHARS - 1).chain(['…']).collect()
    }
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
pub(crate) async fn status(url: &DatabaseUrl, set: &MigrationSet) -> Result<Assessment, MigrateError> {
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
    with_lock(url, options.lock_wait, options.owner_role.as_deref(), async |conn| {
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
    with_lock(url, options.lock_wait, options.owner_role.as_deref(), async |conn| {
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

/// A step's timeouts and history actor: for its transaction (`local`), else for the session
/// until `RESET_STEP_SETTINGS`.
async fn set_step_settings(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    options: &RunnerOptions,
    local: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, $4), set_config('statement_timeout', $2, $4),
                set_config('cabinet.actor', $3, $4)",
    )
    .bind(format!("{}ms", options.ddl_lock_timeout.as_millis()))
    .bind(format!("{}ms", options.statement_timeout.as_millis()))
    .bind(migration_actor(migration, direction, options.actor.as_ref()))
    .bind(local)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const RESET_STEP_SETTINGS: &str = "RESET lock_timeout; RESET statement_timeout; RESET cabinet.actor";

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
    set_step_settings(&mut tx, migration, direction, options, true).await?;
    let migrating_as = if script.changes_history { become_history_keeper(&mut tx).await? } else { None };
    sqlx::raw_sql(AssertSqlSafe(script.sql.clone())).execute(&mut *tx).await?;
    if let Some(role) = migrating_as {
        // Back to who we were: the ledger is the owner's.
        sqlx::raw_sql(AssertSqlSafe(format!("SET LOCAL ROLE {}", db::quote_ident(&role))))
            .execute(&mut *tx)
            .await?;
    }
    let execution_ms = started.elapsed().as_millis() as i64;
    record_step(&mut tx, migration, direction, execution_ms).await?;
    tx.commit().await?;
    Ok(execution_ms)
}

/// For a migration that changes the history: `SET LOCAL ROLE` to whoever owns the history
/// (the historian once `roles apply` ran; before, whoever created it), when that is not us
/// and we may. Returns the role we were, to return to. When we may not, the migration runs as
/// we are and PostgreSQL refuses what we do not own ("must be owner").
async fn become_history_keeper(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    let keeper: Option<(String, String, bool)> = sqlx::query_as(
        "SELECT pg_get_userbyid(c.relowner)::text, current_user::text, pg_has_role(session_user, c.relowner, 'MEMBER')
           FROM pg_class c WHERE c.oid = to_regclass('public.sites_history')",
    )
    .fetch_optional(&mut *conn)
    .await?;
    match keeper {
        Some((keeper, current, true)) if keeper != current => {
            sqlx::raw_sql(AssertSqlSafe(format!("SET LOCAL ROLE {}", db::quote_ident(&keeper))))
                .execute(&mut *conn)
                .await?;
            tracing::debug!(role = %keeper, "migrating the history as its owner");
            Ok(Some(current))
        }
        _ => Ok(None),
    }
}

async fn run_without_transaction(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    script: &Script,
    options: &RunnerOptions,
    started: Instant,
) -> Result<i64, sqlx::Error> {
    set_step_settings(conn, migration, direction, options, false).await?;
    let result = sqlx::raw_sql(AssertSqlSafe(script.sql.clone())).execute(&mut *conn).await;
    let reset = sqlx::raw_sql(RESET_STEP_SETTINGS).execute(&mut *conn).await;
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
