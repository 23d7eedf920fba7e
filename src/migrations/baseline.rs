//! `migrate baseline`: adopt a database whose schema exists already (Alembic's `stamp`).
//!
//! Plain: record migrations up to a version as applied without running them; at the head
//! version the live schema must match the models, because we are about to vouch for it.
//!
//! `--from-alembic`: the database was built by SQLAlchemy/Alembic from the original
//! `models.py`. Read `alembic_version`, require our tables and columns, convert what
//! SQLAlchemy created (`character varying` → `text`, `timestamp without time zone` →
//! `timestamptz` in an explicit zone) and add our defaults, constraints and indexes, drop
//! `alembic_version`, then record the baseline: all in one transaction, so existing rows
//! that break a constraint leave the database exactly as it was.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    error::{BaselineError, MigrateError},
    ledger,
    runner::RunnerOptions,
    session::with_lock,
    source::MigrationSet,
};
use crate::{
    db::{self, DatabaseUrl},
    models::{
        history,
        schema::{self, TableKind},
    },
    schema_diff::{self, Difference},
};

/// The table Alembic keeps its revision in.
pub(crate) const ALEMBIC_VERSION_TABLE: &str = "alembic_version";

#[derive(Debug, Clone)]
pub struct BaselineOptions {
    /// Record migrations up to this version (default: the newest).
    pub version: Option<i64>,
    pub from_alembic: bool,
    /// The zone naive `timestamp` values were written in (`--assume-timezone`).
    pub assume_timezone: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub(crate) version: i64,
    /// The Alembic revision the database was at, with `--from-alembic`.
    pub alembic_revision: Option<String>,
    /// How the schema differed from the models before the conversion.
    pub differences: Vec<String>,
    /// The statements run to convert it.
    pub statements: Vec<String>,
}

pub async fn baseline(
    url: &DatabaseUrl,
    set: &MigrationSet,
    options: &BaselineOptions,
    runner_options: &RunnerOptions,
) -> Result<BaselineReport, MigrateError> {
    let version = options.version.unwrap_or(set.head());
    if version == 0 {
        return Err(BaselineError::NothingToRecord.into());
    }
    if set.get(version).is_none() {
        return Err(MigrateError::UnknownTarget { version, head: set.head() });
    }
    with_lock(url, runner_options.lock_wait, runner_options.owner_role.as_deref(), async |conn| {
        let mut tx = conn.begin().await?;
        let report = adopt(&mut tx, set, version, options).await.map_err(MigrateError::from)?;
        tx.commit().await?;
        Ok(report)
    })
    .await
}

async fn adopt(
    conn: &mut PgConnection,
    set: &MigrationSet,
    version: i64,
    options: &BaselineOptions,
) -> Result<BaselineReport, BaselineError> {
    if let Some(current) = ledger::applied(conn).await?.last() {
        return Err(BaselineError::AlreadyManaged { current: current.version });
    }
    let mut report =
        BaselineReport { version, alembic_revision: None, differences: vec![], statements: vec![] };
    let differences = schema_diff::drift(conn).await?;
    report.differences = differences.iter().map(ToString::to_string).collect();

    if options.from_alembic {
        report.alembic_revision = Some(alembic_revision(conn).await?);
        convert_alembic_schema(conn, &differences, options, &mut report).await?;
    }
    if version == set.head() {
        let remaining = schema_diff::drift(conn).await?;
        if !remaining.is_empty() {
            return Err(BaselineError::Drift {
                version,
                differences: remaining.iter().map(ToString::to_string).collect(),
            });
        }
    }
    ledger::ensure_table(conn).await?;
    for migration in set.iter().filter(|m| m.version <= version) {
        ledger::record(conn, migration.version, &migration.name, &migration.up, 0, true).await?;
    }
    Ok(report)
}

async fn alembic_revision(conn: &mut PgConnection) -> Result<String, BaselineError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(ALEMBIC_VERSION_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Err(BaselineError::NotAlembic);
    }
    let revisions: Vec<String> =
        sqlx::query_scalar("SELECT version_num::text FROM alembic_version").fetch_all(&mut *conn).await?;
    match revisions.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(BaselineError::AlembicHeads(other.len())),
    }
}

async fn convert_alembic_schema(
    conn: &mut PgConnection,
    differences: &[Difference],
    options: &BaselineOptions,
    report: &mut BaselineReport,
) -> Result<(), BaselineError> {
    // The history is ours to create (SQLAlchemy's models never had it); the records are not.
    let is_record = |table: &str| schema::table(table).is_none_or(|t| t.kind == TableKind::Record);
    let missing: Vec<String> = differences
        .iter()
        .filter(|d| match d {
            Difference::MissingTable { table } | Difference::MissingColumn { table, .. } => is_record(table),
            _ => true,
        })
        .filter_map(|d| match d {
            Difference::MissingTable { table } => Some(format!("table {table} is missing")),
            Difference::MissingColumn { table, column } => {
                Some(format!("column {table}.{column} is missing"))
            }
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        return Err(BaselineError::MissingTables(missing));
    }
    let known_zone: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(&options.assume_timezone)
            .fetch_one(&mut *conn)
            .await?;
    if !known_zone {
        return Err(BaselineError::BadTimezone(options.assume_timezone.clone()));
    }
    let destructive: Vec<String> = differences
        .iter()
        .filter(|d| match d {
            Difference::UnexpectedTable { table } => table != ALEMBIC_VERSION_TABLE,
            Difference::UnexpectedColumn { .. } => true,
            _ => false,
        })
        .map(ToString::to_string)
        .collect();
    if !destructive.is_empty() {
        return Err(BaselineError::Destructive(destructive));
    }
    let conversions: Vec<Difference> =
        differences.iter().filter(|d| !matches!(d, Difference::UnexpectedTable { .. })).cloned().collect();
    let mut statements: Vec<String> = schema_diff::to_steps(&conversions, &options.assume_timezone)
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if differences.iter().any(|d| matches!(d, Difference::MissingTable { table } if !is_record(table))) {
        statements.push(history::BACKFILL_SQL.to_owned());
    }
    statements.push(format!("DROP TABLE {ALEMBIC_VERSION_TABLE};"));
    for statement in &statements {
        if let Err(source) = sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(&mut *conn).await {
            let meaning = match (db::violation_message(&source), db::sqlstate(&source).as_deref()) {
                (Some(m), _) => {
                    format!("existing rows break a rule of the models: {m}; correct those rows, then rerun\n")
                }
                (None, Some(db::SQLSTATE_NOT_NULL_VIOLATION)) => {
                    "existing rows have NULL in a column the models require; fill it in, then rerun\n"
                        .to_owned()
                }
                _ => String::new(),
            };
            return Err(BaselineError::Conversion { statement: statement.clone(), meaning, source });
        }
        tracing::info!(statement = %statement, "converted");
    }
    report.statements = statements;
    Ok(())
}
