//! The dedicated connection migrations and baselines run on: it takes the migration lock
//! (waiting at most `lock_wait`), becomes the owner role when it may, and is closed at the
//! end whatever happened — so the lock never outlives the run.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    error::MigrateError,
    lock::{acquire, release},
};
use crate::db::{self, DatabaseUrl};

/// Runs `body` on a dedicated connection holding the migration lock, then releases the lock
/// and closes the connection whether `body` succeeded or not.
pub(crate) async fn with_lock<T>(
    url: &DatabaseUrl,
    lock_wait: Duration,
    owner_role: Option<&str>,
    body: impl AsyncFnOnce(&mut PgConnection) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    let mut conn = db::connect(url, "cabinet-db migrate").await?;
    db::refuse_standby(&mut conn, &url.redacted(), "migrations").await?;
    // If this process dies mid-migration, the server notices the closed socket within a
    // second even while a statement runs, rolls back, and frees the lock for the next run.
    sqlx::query("SELECT set_config('client_connection_check_interval', '1s', false)")
        .execute(&mut conn)
        .await?;
    if let Some(owner) = owner_role {
        become_owner(&mut conn, owner).await?;
    }
    match acquire(&mut conn, lock_wait).await? {
        Ok(()) => {}
        Err(holder) => {
            let _ = conn.close().await;
            return Err(MigrateError::LockTimeout { waited: lock_wait, holder });
        }
    }
    tracing::debug!("took the migration lock");
    let result = body(&mut conn).await;
    if let Err(e) = release(&mut conn).await {
        // Closing the session below releases it anyway.
        tracing::warn!(error = %e, "could not release the migration lock explicitly");
    }
    let _ = conn.close().await;
    result
}

/// `SET ROLE owner` when that role exists, we are a member, and `roles apply` has prepared this
/// database for it (it may create in `public` and owns every table there but the history's,
/// which belong to the historian: otherwise a migration or a baseline could not alter or drop
/// them). Otherwise we stay who we
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
                                  AND c.relowner <> r.oid AND c.relname <> ALL ($2)))",
    )
    .bind(owner)
    .bind(crate::models::schema::history_table_names())
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
