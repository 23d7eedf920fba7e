//! The admin panel (`cabinet-db serve`): server-rendered pages on the tailnet, signed in by
//! tailnet identity. Every request passes the `guard` (Host allowlist, cross-origin
//! protection, security headers), then `identity` (whois → role); every write runs as the
//! signed-in login, so the change history names the person.

/// Static files embedded in the binary (stylesheet, script, vendored htmx).
pub(crate) mod assets;
/// What a handler fails with and the page it shows.
pub(crate) mod error;
/// Host allowlist, cross-origin protection, security headers.
pub(crate) mod guard;
/// The page shell and shared pieces.
pub(crate) mod html;
/// Tailnet identity and roles.
pub(crate) mod identity;
/// Which addresses the panel may listen on.
pub(crate) mod listen;
/// The pages.
pub(crate) mod pages;
/// Whether the database answers: `/readyz`, and unreachable vs busy for pages.
pub mod readiness;
/// Routes and the middleware every request passes.
pub(crate) mod router;
/// Listening (plain or TLS, the certificate renewed in place), connection limits and
/// timeouts, serving, shutting down.
pub mod server;
/// Starting the panel: addresses, identity source, TLS, pool; then serving.
pub(crate) mod start;
/// What every request handler shares, and the role check.
pub(crate) mod state;
