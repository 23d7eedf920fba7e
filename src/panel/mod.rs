//! The admin panel (`cabinet-db serve`): server-rendered pages on the tailnet, signed in by
//! tailnet identity. Every request passes the `guard` (Host allowlist, cross-origin
//! protection, security headers), then `identity` (whois → role); every write runs as the
//! signed-in login, so the change history names the person.

/// Static files embedded in the binary (stylesheet, script, vendored htmx).
pub mod assets;
/// What a handler fails with and the page it shows.
pub mod error;
/// Host allowlist, cross-origin protection, security headers.
pub mod guard;
/// The page shell and shared pieces.
pub mod html;
/// Tailnet identity and roles.
pub mod identity;
/// Which addresses the panel may listen on.
pub mod listen;
/// The pages.
pub mod pages;
/// Whether the database answers: `/readyz`, and unreachable vs busy for pages.
pub mod readiness;
/// Routes and the middleware every request passes.
pub mod router;
/// Listening (plain or TLS, the certificate renewed in place), connection limits and
/// timeouts, serving, shutting down.
pub mod server;

use sqlx::PgPool;

use crate::db::DatabaseUrl;
use error::PanelError;
use identity::{Identity, IdentitySource, Role};

/// What every request handler shares.
#[derive(Debug)]
pub struct PanelState {
    /// Its acquire timeout is `readiness::PANEL_ACQUIRE_TIMEOUT`: a page says the database is
    /// unreachable within seconds instead of hanging.
    pub pool: PgPool,
    /// Unreachable vs busy, settled by a probe shared by every request.
    pub readiness: readiness::Readiness,
    /// For what needs a connection of its own (migration status).
    pub database_url: DatabaseUrl,
    pub identities: IdentitySource,
    /// `Host` values answered (see `listen::allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    pub tls: bool,
    /// One JSON object per request on stderr, else a line of text.
    pub json_logs: bool,
    /// What the dashboard's audit and backup status read.
    pub tailscaled_socket: std::path::PathBuf,
    pub backup_config: std::path::PathBuf,
    pub roles: crate::roles::Roles,
    /// The port the panel serves on (the audit checks what listens there).
    pub panel_port: u16,
}

/// Refuses what `me`'s role does not allow, saying which role it needs.
pub fn require(me: &Identity, role: Role, what: &str) -> Result<(), PanelError> {
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
