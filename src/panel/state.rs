//! What every request handler shares (the pool, the identity source, the settings the pages
//! read), and the check that a signed-in person's role allows what they ask.

use sqlx::PgPool;

use super::{
    error::PanelError,
    identity::{Identity, IdentitySource, Role},
    readiness,
};
use crate::db::DatabaseUrl;

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct PanelState {
    /// Its acquire timeout is `readiness::PANEL_ACQUIRE_TIMEOUT`: a page says the database is
    /// unreachable within seconds instead of hanging.
    pub(crate) pool: PgPool,
    /// Unreachable vs busy, settled by a probe shared by every request.
    pub(crate) readiness: readiness::Readiness,
    /// For what needs a connection of its own (migration status).
    pub(crate) database_url: DatabaseUrl,
    pub(crate) identities: IdentitySource,
    /// `Host` values answered (see `listen::allowed_hosts`).
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) tls: bool,
    /// One JSON object per request on stderr, else a line of text.
    pub(crate) json_logs: bool,
    /// What the dashboard's audit and backup status read.
    pub(crate) tailscaled_socket: std::path::PathBuf,
    pub(crate) backup_config: std::path::PathBuf,
    /// The host's stored scrape, passed on at /metrics.
    pub(crate) metrics_file: std::path::PathBuf,
    /// Requests, latency, whois failures: what /metrics adds of the panel's own.
    pub(crate) counters: crate::metrics::panel::PanelCounters,
    pub(crate) roles: crate::roles::Roles,
    /// The port the panel serves on (the audit checks what listens there).
    pub(crate) panel_port: u16,
}

/// Refuses what `me`'s role does not allow, saying which role it needs.
pub(crate) fn require(me: &Identity, role: Role, what: &str) -> Result<(), PanelError> {
    if me.may(role) {
        Ok(())
    } else {
        let article = if me.role.to_string().starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        Err(PanelError::Forbidden(format!(
            "{} is {article} {}: {what} needs the {role} role (granted in the tailnet policy)",
            me.login, me.role
        )))
    }
}
