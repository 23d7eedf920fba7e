//! `cabinet_migrations`: one row per applied migration.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};

use super::source::Script;
use crate::models::{schema::MIGRATIONS_TABLE, timestamps};

/// The bookkeeping table; created by the runner under its lock, never by a migration.
pub(crate) const CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS cabinet_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    checksum bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    execution_ms bigint NOT NULL,
    baseline boolean NOT NULL DEFAULT false
);
";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AppliedMigration {
    pub(crate) version: i64,
    pub(crate) name: String,
    #[serde(serialize_with = "serialize_hex")]
    pub(crate) checksum: Vec<u8>,
    pub(crate) applied_at: DateTime<Utc>,
    pub(crate) applied_by: String,
    pub(crate) execution_ms: i64,
    /// Recorded by `migrate baseline` rather than run.
    pub(crate) baseline: bool,
}

fn serialize_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn ensure_table(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(CREATE_TABLE_SQL).execute(&mut *conn).await?;
    Ok(())
}

/// What the database has applied, oldest first; empty when the table does not exist yet.
pub(crate) async fn applied(conn: &mut PgConnection) -> Result<Vec<AppliedMigration>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT version, name, checksum, applied_at, applied_by, execution_ms, baseline
           FROM cabinet_migrations
          ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get("version")?;
            Ok(AppliedMigration {
                applied_at: timestamps::read(
                    row,
                    MIGRATIONS_TABLE,
                    "version",
                    &version.to_string(),
                    "applied_at",
                )?,
                version,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
                applied_by: row.try_get("applied_by")?,
                execution_ms: row.try_get("execution_ms")?,
                baseline: row.try_get("baseline")?,
            })
        })
        .collect()
}

pub(crate) async fn record(
    conn: &mut PgConnection,
    version: i64,
    name: &str,
    up: &Script,
    execution_ms: i64,
    baseline: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cabinet_migrations (version, name, checksum, execution_ms, baseline)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(version)
    .bind(name)
    .bind(&up.checksum)
    .bind(execution_ms)
    .bind(baseline)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn remove(conn: &mut PgConnection, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cabinet_migrations WHERE version = $1")
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
