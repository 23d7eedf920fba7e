//! What the database itself says, read as whichever role connects (`serve`'s `cabinet_admin`,
//! or an operator's): connections per role of ours against each role's limit (n8n's pool leak
//! shows before it locks n8n out), migrations applied against the binary's, the history's size
//! and newest prune, WAL archiving as the server counts it. Nothing per site or per user: a label per record would grow without bound,
//! and an erased user must not live on in Prometheus.

use sqlx::PgConnection;

use super::exposition::{Family, Kind};
use crate::{
    db::{self, DatabaseUrl},
    migrations::{MigrationSet, runner},
    roles::Roles,
};

/// What the database said: its families and, when this role may read it, the data directory
/// (whose filesystem's free space the scrape measures).
pub(super) struct DatabaseFacts {
    pub(super) families: Vec<Family>,
    pub(super) data_directory: Option<std::path::PathBuf>,
}

/// The families, or — when the database does not answer — `cabinet_database_up 0` alone (a
/// scrape that fails says less than one that says why).
pub(super) async fn families(url: &DatabaseUrl, roles: &Roles) -> DatabaseFacts {
    let up = |value| {
        Family::single(
            "cabinet_database_up",
            "1 when the database answered this scrape's queries, else 0.",
            Kind::Gauge,
            value,
        )
    };
    let read = async {
        let mut conn = db::connect(url, "cabinet-db metrics").await.map_err(|e| e.to_string())?;
        let mut families = connections(&mut conn, roles).await.map_err(|e| e.to_string())?;
        families.extend(history(&mut conn).await.map_err(|e| e.to_string())?);
        families.extend(archiver(&mut conn).await.map_err(|e| e.to_string())?);
        families.extend(drift(&mut conn).await);
        families.extend(waiting_wal(&mut conn).await);
        families.extend(replication(&mut conn).await);
        // Superusers and pg_read_all_settings only: others measure no data directory.
        let data_directory: Option<String> =
            sqlx::query_scalar("SELECT current_setting('data_directory')").fetch_one(&mut conn).await.ok();
        let _ = sqlx::Connection::close(conn).await;
        families.extend(migrations(url).await);
        Ok::<_, String>((families, data_directory.map(Into::into)))
    };
    match read.await {
        Ok((mut families, data_directory)) => {
            families.insert(0, up(1.0));
            DatabaseFacts { families, data_directory }
        }
        Err(reason) => {
            tracing::warn!(%reason, "the database did not answer the metrics' queries");
            DatabaseFacts { families: vec![up(0.0)], data_directory: None }
        }
    }
}

/// How the live schema differs from this binary's models (`migrate check`): tables, columns,
/// constraints, indexes, triggers, functions someone changed by hand. No sample when the
/// catalogs could not be read.
async fn drift(conn: &mut PgConnection) -> Vec<Family> {
    match crate::schema_diff::drift(conn).await {
        Ok(differences) => vec![Family::single(
            "cabinet_schema_differences",
            "Ways the live schema differs from this binary's models (cabinet-db migrate check); 0: no drift.",
            Kind::Gauge,
            differences.len() as f64,
        )],
        Err(e) => {
            tracing::warn!(error = %e, "the schema could not be compared with the models for the metrics");
            Vec::new()
        }
    }
}

/// WAL segments the server has finished and not yet archived (`.ready` in
/// pg_wal/archive_status), and since when the oldest waits: archiving that falls behind fills
/// the data directory. Superusers and pg_monitor only; others see no sample.
async fn waiting_wal(conn: &mut PgConnection) -> Vec<Family> {
    let waiting: Result<(i64, Option<f64>), _> = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM min(modification))::float8
           FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
    )
    .fetch_one(conn)
    .await;
    let Ok((count, oldest)) = waiting else { return Vec::new() };
    let mut families = vec![Family::single(
        "cabinet_wal_ready_segments",
        "Finished WAL segments waiting to be archived (pg_wal/archive_status/*.ready).",
        Kind::Gauge,
        count as f64,
    )];
    if let Some(at) = oldest {
        families.push(Family::single(
            "cabinet_wal_oldest_ready_timestamp_seconds",
            "Since when the oldest segment not yet archived has waited (Unix time); no sample when none waits.",
            Kind::Gauge,
            at,
        ));
    }
    families
}

/// On a primary, each standby's replay lag in time and bytes (pg_stat_replication, by its
/// application name — Patroni's member name). Rows whose columns this role may not read (they
/// need pg_read_all_stats) have no sample.
async fn replication(conn: &mut PgConnection) -> Vec<Family> {
    let standby: Result<bool, _> =
        sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut *conn).await;
    if standby.unwrap_or(true) {
        return Vec::new();
    }
    let rows: Vec<(String, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT application_name, extract(epoch FROM replay_lag)::float8,
                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8
           FROM pg_stat_replication ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap_or_default();
    let mut seconds = Family::new(
        "cabinet_replication_lag_seconds",
        "How long ago each standby last replayed what the primary had written (pg_stat_replication.replay_lag).",
        Kind::Gauge,
    );
    let mut bytes = Family::new(
        "cabinet_replication_lag_bytes",
        "WAL the primary has written that each standby has not replayed.",
        Kind::Gauge,
    );
    for (standby, lag, behind) in rows {
        // No replay_lag while nothing is written: the standby has replayed everything.
        if let Some(behind) = behind {
            seconds.push(&[("standby", &standby)], lag.unwrap_or(0.0));
            bytes.push(&[("standby", &standby)], behind);
        }
    }
    vec![seconds, bytes]
}

async fn connections(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Family>, sqlx::Error> {
    let names = roles.all_names();
    let rows: Vec<(String, i64, i32)> = sqlx::query_as(
        "SELECT r.rolname::text, count(a.pid), r.rolconnlimit
           FROM pg_roles r LEFT JOIN pg_stat_activity a ON a.usename = r.rolname
          WHERE r.rolname = ANY($1)
          GROUP BY r.rolname, r.rolconnlimit
          ORDER BY r.rolname",
    )
    .bind(&names)
    .fetch_all(conn)
    .await?;
    let mut open = Family::new(
        "cabinet_role_connections",
        "Sessions open per role of ours (pg_stat_activity), all databases.",
        Kind::Gauge,
    );
    let mut limit = Family::new(
        "cabinet_role_connection_limit",
        "Each role's connection limit (rolconnlimit); roles without one have no sample.",
        Kind::Gauge,
    );
    for (role, count, connlimit) in rows {
        open.push(&[("role", &role)], count as f64);
        if connlimit >= 0 {
            limit.push(&[("role", &role)], f64::from(connlimit));
        }
    }
    Ok(vec![open, limit])
}

async fn history(conn: &mut PgConnection) -> Result<Vec<Family>, sqlx::Error> {
    // The planner's estimate: exact counts of a million rows would make every scrape a scan.
    let rows: Vec<(String, f64)> = sqlx::query_as(
        "SELECT c.relname::text, greatest(c.reltuples, 0)::float8
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relname IN ('sites_history', 'users_history')
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut size = Family::new(
        "cabinet_history_rows",
        "Rows of each history table, as the planner estimates them (pg_class.reltuples).",
        Kind::Gauge,
    );
    for (table, rows) in rows {
        size.push(&[("table", &table)], rows);
    }
    let newest_prune: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM max(pruned_at))::float8 FROM history_prunes WHERE pruned_at < 'infinity'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut families = vec![size];
    if let Some(at) = newest_prune {
        families.push(Family::single(
            "cabinet_history_newest_prune_timestamp_seconds",
            "When the history was last pruned (Unix time); no sample when it never was.",
            Kind::Gauge,
            at,
        ));
    }
    Ok(families)
}

/// WAL archiving as the server counts it (pg_stat_archiver, readable by every role): a rising
/// failure count while the newest archived segment grows old is the classic silent failure
/// (pgBackRest's `[082] … was not archived before the timeout`).
async fn archiver(conn: &mut PgConnection) -> Result<Vec<Family>, sqlx::Error> {
    let (archived, failed, last_archived, last_failed): (i64, i64, Option<f64>, Option<f64>) =
        sqlx::query_as(
            "SELECT archived_count, failed_count,
                extract(epoch FROM last_archived_time)::float8, extract(epoch FROM last_failed_time)::float8
           FROM pg_stat_archiver",
        )
        .fetch_one(conn)
        .await?;
    let mut families = vec![
        Family::single(
            "cabinet_wal_archived_total",
            "WAL segments the server archived since its statistics were reset (pg_stat_archiver).",
            Kind::Counter,
            archived as f64,
        ),
        Family::single(
            "cabinet_wal_archive_failures_total",
            "Failed attempts to archive a WAL segment (pg_stat_archiver.failed_count).",
            Kind::Counter,
            failed as f64,
        ),
    ];
    if let Some(at) = last_archived {
        families.push(Family::single(
            "cabinet_wal_last_archived_timestamp_seconds",
            "When the newest WAL segment was archived (Unix time); no sample before the first.",
            Kind::Gauge,
            at,
        ));
    }
    if let Some(at) = last_failed {
        families.push(Family::single(
            "cabinet_wal_last_archive_failure_timestamp_seconds",
            "When archiving last failed (Unix time); no sample when it never did.",
            Kind::Gauge,
            at,
        ));
    }
    Ok(families)
}

async fn migrations(url: &DatabaseUrl) -> Vec<Family> {
    let Ok(set) = MigrationSet::embedded() else { return Vec::new() };
    let known = Family::single(
        "cabinet_migrations_known_version",
        "The newest migration this binary carries.",
        Kind::Gauge,
        set.head() as f64,
    );
    match runner::status(url, &set).await {
        Ok(assessment) => vec![
            known,
            Family::single(
                "cabinet_migrations_applied_version",
                "The newest migration the database has applied (0: none).",
                Kind::Gauge,
                assessment.current.unwrap_or(0) as f64,
            ),
            Family::single(
                "cabinet_migrations_pending",
                "Migrations this binary carries that the database has not applied.",
                Kind::Gauge,
                assessment.pending.len() as f64,
            ),
            Family::single(
                "cabinet_migrations_problems",
                "Problems with the applied migrations (changed checksums, unknown or out-of-order versions).",
                Kind::Gauge,
                assessment.problems.len() as f64,
            ),
        ],
        Err(_) => vec![known],
    }
}
