//! Objects that open doors out of this database or into every session: extensions (dblink
//! and the foreign-data wrappers reach other servers and files), foreign servers and user
//! mappings, publications and subscriptions (rows leave, or arrive, outside our writers),
//! event triggers (run on every DDL), and untrusted languages (functions that run programs).
//! This database needs none of them. Triggers, rules and row-level security on our tables are
//! drift (`schema.drift`).

use sqlx::PgConnection;

use super::check::{Check, or_needs_superuser};

/// Extensions that reach beyond the database: other servers, files, the operating system.
const DOOR_OPENERS: &[&str] =
    &["dblink", "postgres_fdw", "file_fdw", "adminpack", "plpython3u", "plperlu", "pltclu", "lo"];

pub(crate) async fn checks(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();

    let extensions: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
            .fetch_all(&mut *conn)
            .await?;
    let (doors, others): (Vec<&String>, Vec<&String>) =
        extensions.iter().partition(|e| DOOR_OPENERS.contains(&e.as_str()) || e.ends_with("_fdw"));
    let drop = "DROP EXTENSION <name> (this database needs none)";
    checks.push(if !doors.is_empty() {
        Check::fail(
            "objects.extensions",
            format!(
                "installed: {} (they reach other servers, files or the operating system)",
                doors.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
            ),
            drop,
        )
    } else if !others.is_empty() {
        Check::warn(
            "objects.extensions",
            format!(
                "installed: {} (not used by this database)",
                others.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
            ),
            drop,
        )
    } else {
        Check::pass("objects.extensions", "no extensions beyond plpgsql")
    });

    let foreign: Vec<String> = sqlx::query_scalar(
        "SELECT 'foreign-data wrapper ' || fdwname FROM pg_foreign_data_wrapper
         UNION ALL SELECT 'foreign server ' || srvname FROM pg_foreign_server
         UNION ALL SELECT format('user mapping for %s on server %s', usename, srvname) FROM pg_user_mappings
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    checks.push(Check::from_problems(
        "objects.foreign_data",
        foreign,
        "no foreign-data wrappers, servers or user mappings",
        "DROP USER MAPPING / SERVER / FOREIGN DATA WRAPPER (data reaches this database only through our writers)",
    ));

    checks.extend(or_needs_superuser("objects.replication", "pg_subscription", replication(conn).await)?);

    let event_triggers: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s on %s runs %s', evtname, evtevent, evtfoid::regproc) FROM pg_event_trigger ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    checks.push(Check::from_problems(
        "objects.event_triggers",
        event_triggers,
        "no event triggers",
        "DROP EVENT TRIGGER <name> (it runs with superuser rights on every DDL, migrations included)",
    ));

    let languages: Vec<String> = sqlx::query_scalar(
        "SELECT lanname::text FROM pg_language
          WHERE NOT lanpltrusted AND lanname NOT IN ('internal', 'c') ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    checks.push(if languages.is_empty() {
        Check::pass("objects.languages", "no untrusted procedural languages")
    } else {
        Check::fail(
            "objects.languages",
            format!(
                "untrusted languages installed: {} (their functions run programs as the server's OS user)",
                languages.join(", ")
            ),
            "DROP EXTENSION <language> (or DROP LANGUAGE)",
        )
    });
    Ok(checks)
}

async fn replication(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT 'publication ' || pubname FROM pg_publication
         UNION ALL
         SELECT 'subscription ' || subname FROM pg_subscription
          WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(vec![Check::from_problems(
        "objects.replication",
        found,
        "no publications or subscriptions",
        "DROP PUBLICATION / DROP SUBSCRIPTION (rows would leave or arrive outside our writers; backups and standbys are configured by cabinet-db)",
    )])
}
