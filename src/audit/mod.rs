//! `cabinet-db audit`: is this database exposed, privileged and shaped as designed?
//!
//! Every check yields pass, warn or fail with a one-line remedy. The audit reads; it never
//! changes anything. It is written against the ways a role could reach beyond its grant —
//! memberships in predefined roles, functions that run as someone else, column grants, other
//! privileged logins, extensions and objects that open doors, client authentication beyond
//! the designed rules, settings a role changed on itself, large objects and other databases —
//! each seeded and caught in `tests/it/every_server/adversarial.rs`.
//!
//! Run it as a superuser: `pg_hba_file_rules`, `pg_file_settings`, password verifiers and the
//! file timestamps are visible to superusers only. As another role the other checks still
//! run, and those that could not are warnings marked `needs_superuser`.

/// WAL archiving, the newest full backup, the newest drill.
mod backups;
/// What every check is given and yields: the options, a verdict with its remedy.
mod check;
/// The Patroni cluster's health, when one is configured.
mod cluster;
/// Migrations, drift, and tables that belong in other databases.
mod contents;
/// Client authentication: every pg_hba rule, and whether the file is the one in force.
mod hba;
/// Whether the history tells the whole story: versions without gaps, records as recorded.
pub(crate) mod history;
/// tailscaled's view and the sockets PostgreSQL listens on.
pub mod network;
/// Extensions, foreign data, replication, event triggers, untrusted languages.
mod objects;
/// What our roles and PUBLIC may do: tables, columns, other relations, functions, large
/// objects, other databases.
mod privileges;
/// Our roles themselves (attributes, settings, memberships, passwords), and other privileged
/// logins in the cluster.
mod roles;
/// The server version, listen addresses, password hashing.
mod server;

use sqlx::Connection;

use check::or_needs_superuser;
pub use check::{AuditOptions, Verdict};
pub(crate) use check::{Check, overall};

use crate::{
    db::{self, DatabaseUrl, DbError},
    migrations::MigrationSet,
    tailnet::localapi::{LocalApi, LocalApiError, ServeConfig, Status},
};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed during the audit")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] crate::migrations::MigrateError),
}

/// Runs every check. An `Err` means the audit could not run at all.
pub async fn audit(
    url: &DatabaseUrl,
    set: &MigrationSet,
    options: &AuditOptions,
) -> Result<Vec<Check>, AuditError> {
    let mut conn = db::connect(url, "cabinet-db audit").await?;
    let mut checks = Vec::new();

    let tailscale = read_tailscale(options).await;
    let node_ips: Option<Vec<String>> = tailscale.as_ref().ok().map(|(status, _)| status.ips());

    checks.push(server::version(&mut conn).await?);
    if !options.cluster_members.is_empty() {
        checks.extend(cluster::checks(&options.cluster_members).await);
    }
    checks.extend(contents::migrations(url, set).await?);
    let drift = contents::drift(&mut conn).await?;
    // The history's checks read row data: only on a schema that is the models' (a column of a
    // type the owner made could carry the owner's cast into this session).
    let schema_matches = drift.verdict == Verdict::Pass;
    checks.push(drift);
    checks.push(contents::foreign_objects(&mut conn).await?);
    checks.extend(server::listen_addresses(&mut conn, node_ips.as_deref()).await?);
    checks.extend(hba::checks(&mut conn, &options.roles).await?);
    checks.extend(server::passwords(&mut conn).await?);
    checks.extend(roles::ours(&mut conn, &options.roles).await?);
    checks.extend(roles::password_files(&mut conn, &options.roles, options.secrets_dir.as_deref()).await?);
    checks.push(roles::privileged_logins(&mut conn, &options.roles).await?);
    checks.extend(privileges::tables(&mut conn, &options.roles).await?);
    checks.extend(privileges::beyond_tables(&mut conn, &options.roles).await?);
    checks.extend(privileges::public(&mut conn, &options.roles).await?);
    checks.extend(privileges::future(&mut conn).await?);
    checks.extend(objects::checks(&mut conn).await?);
    if schema_matches {
        checks.extend(or_needs_superuser(
            "history.versions",
            "the change history",
            history::checks(&mut conn).await,
        )?);
    } else {
        checks.push(Check::fail(
            "history.versions",
            "not read while the schema differs from the models (see schema.drift)",
            "fix the drift first; the history is judged on the models' schema only",
        ));
    }
    checks.extend(or_needs_superuser(
        "backup.archiving",
        "the archiving settings",
        backups::checks(&mut conn, &options.backup_config).await,
    )?);
    checks.extend(network::checks(&mut conn, tailscale, options).await?);
    checks.push(network::panel(options));
    conn.close().await?;
    Ok(checks)
}

async fn read_tailscale(options: &AuditOptions) -> Result<(Status, ServeConfig), LocalApiError> {
    let api = LocalApi::new(&options.socket);
    let status = api.status().await?;
    let serve = api.serve_config().await?;
    Ok((status, serve))
}
