//! The migration lock: a session-level advisory lock on one dedicated connection.
//!
//! Session-level (not transaction-level) because it must span several migration
//! transactions. It is taken with `pg_try_advisory_lock` in a loop so that waiting has a
//! deadline, and the connection that holds it is closed when the runner finishes, so even a
//! path that forgets to unlock (or a killed process) releases it: advisory locks die with
//! their session.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgConnection;

/// The lock key, "cabdmigr" in ASCII; advisory locks are per database, so one key suffices.
/// `pg_locks` shows it as classid 1667326564, objid 1835616114.
pub const MIGRATION_LOCK_KEY: i64 = 0x6361_6264_6d69_6772;

const POLL_INTERVAL_MS: u64 = 100;

/// pid, application_name, client address, backend start.
type HolderRow = (i32, Option<String>, Option<String>, Option<chrono::DateTime<chrono::Utc>>);

/// Who holds the lock, from `pg_stat_activity`.
#[derive(Debug, Clone, Serialize)]
pub struct LockHolder {
    pub(crate) pid: i32,
    pub(crate) application_name: String,
    pub(crate) client: String,
    pub(crate) since: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server pid {}", self.pid)?;
        if !self.application_name.is_empty() {
            write!(f, " ({})", self.application_name)?;
        }
        write!(f, " from {}", self.client)?;
        if let Some(since) = self.since {
            write!(f, ", connected since {}", since.format("%Y-%m-%d %H:%M:%S UTC"))?;
        }
        Ok(())
    }
}

/// Waits up to `timeout` for the lock. `Ok(None)` means it is held by us now;
/// `Ok(Some(holder))`, that the deadline passed while `holder` kept it.
pub(crate) async fn acquire(
    conn: &mut PgConnection,
    timeout: Duration,
) -> Result<Result<(), Option<LockHolder>>, sqlx::Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if locked {
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(holder(conn).await?));
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

pub(crate) async fn release(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK_KEY).execute(&mut *conn).await?;
    Ok(())
}

/// The session holding the migration lock in this database, if any.
pub(crate) async fn holder(conn: &mut PgConnection) -> Result<Option<LockHolder>, sqlx::Error> {
    let row: Option<HolderRow> = sqlx::query_as(
        "SELECT l.pid, a.application_name, coalesce(host(a.client_addr), 'the local socket'), a.backend_start
           FROM pg_locks l
           LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory'
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid::bigint = ($1 >> 32)
            AND l.objid::bigint = ($1 & 4294967295)
            AND l.objsubid = 1
            AND l.granted
          LIMIT 1",
    )
    .bind(MIGRATION_LOCK_KEY)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(pid, application_name, client, since)| LockHolder {
        pid,
        application_name: application_name.unwrap_or_default(),
        client: client.unwrap_or_else(|| "an unknown client".to_owned()),
        since,
    }))
}
