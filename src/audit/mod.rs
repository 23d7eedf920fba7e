//! `cabinet-db audit`: is this database exposed, privileged and shaped as designed?
//!
//! Every check yields pass, warn or fail with a one-line remedy. The audit reads; it never
//! changes anything. Run it as a superuser: `pg_hba_file_rules`, `pg_file_settings` and
//! password hashes are visible to superusers only (other checks then warn that they could
//! not look).

/// Roles, the privilege matrix, PUBLIC.
mod access;
/// Migrations, drift, and tables that belong in other databases.
mod contents;
/// tailscaled's view and the sockets PostgreSQL listens on.
pub mod network;
/// Listen addresses, pg_hba rules, password hashing.
mod server;

use std::path::PathBuf;

use serde::Serialize;
use sqlx::Connection;

use crate::{
    db::{self, DatabaseUrl, DbError},
    migrations::MigrationSet,
    roles::Roles,
    tailnet::localapi::{LocalApi, LocalApiError, ServeConfig, Status},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `pg_hba.final_reject`.
    pub id: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it (empty when it passes).
    pub remedy: String,
}

impl Check {
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check { id, verdict: Verdict::Pass, detail: detail.into(), remedy: String::new() }
    }

    pub fn warn(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check { id, verdict: Verdict::Warn, detail: detail.into(), remedy: remedy.into() }
    }

    pub fn fail(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check { id, verdict: Verdict::Fail, detail: detail.into(), remedy: remedy.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed during the audit")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] crate::migrations::MigrateError),
}

#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub roles: Roles,
    /// tailscaled's socket, and whether the user named it (then its absence is a failure).
    pub socket: PathBuf,
    pub socket_explicit: bool,
    /// Where `net/tcp` and `net/tcp6` are read from (`/proc`).
    pub proc_root: PathBuf,
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
    checks.extend(contents::migrations(url, set).await?);
    checks.push(contents::drift(&mut conn).await?);
    checks.push(contents::foreign_objects(&mut conn).await?);
    checks.extend(server::listen_addresses(&mut conn, node_ips.as_deref()).await?);
    checks.extend(server::pg_hba(&mut conn).await?);
    checks.extend(server::passwords(&mut conn).await?);
    checks.extend(access::roles(&mut conn, &options.roles).await?);
    checks.extend(access::privileges(&mut conn, &options.roles).await?);
    checks.extend(access::public(&mut conn).await?);
    checks.extend(network::checks(&mut conn, tailscale, options).await?);
    conn.close().await?;
    Ok(checks)
}

async fn read_tailscale(options: &AuditOptions) -> Result<(Status, ServeConfig), LocalApiError> {
    let api = LocalApi::new(&options.socket);
    let status = api.status().await?;
    let serve = api.serve_config().await?;
    Ok((status, serve))
}

/// The worst verdict: fail if any check failed.
pub fn overall(checks: &[Check]) -> Verdict {
    checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Pass)
}

/// Whether an error means "you may not look" rather than "something broke".
fn is_permission_denied(error: &sqlx::Error) -> bool {
    db::sqlstate(error).as_deref() == Some("42501")
}

const NEEDS_SUPERUSER: &str = "run the audit as a superuser (e.g. sudo -u postgres cabinet-db audit …)";
