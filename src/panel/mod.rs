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
/// Starting the panel: addresses, identity source, TLS, pool; then serving.
pub mod start;
/// What every request handler shares, and the role check.
pub mod state;
