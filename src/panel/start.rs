//! Starting the panel: where it listens (the node's tailnet addresses unless told), who signs
//! in (tailscaled's whois, or a development identity on loopback only), the names browsers may
//! use, the TLS pair, a pool that waits seconds rather than minutes, and a refusal to serve
//! from a standby. `cabinet-db serve` parses its options into [`Options`] and calls [`serve`].

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use tokio::sync::Notify;

use super::{
    identity::{Identity, IdentitySource},
    listen::{self, ListenError},
    readiness::{self, Readiness},
    server::{self, ServeError, TlsPaths},
    state::PanelState,
};
use crate::{
    db::{self, DatabaseUrl, DbError},
    tailnet::localapi::{LocalApi, LocalApiError},
};

/// What the panel is started with (the CLI's `serve` options, checked).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The `cabinet_admin` role's URL.
    pub(crate) database_url: DatabaseUrl,
    /// Addresses asked for; empty: every tailnet address of this node (or loopback with a
    /// development identity), on `port`.
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) port: u16,
    /// tailscaled's LocalAPI socket.
    pub(crate) socket: PathBuf,
    /// The app capability the tailnet policy grants roles with (checked by the caller).
    pub(crate) capability: String,
    /// Names browsers may use besides the addresses and tailscaled's MagicDNS name.
    pub(crate) host_names: Vec<String>,
    pub(crate) tls: Option<TlsPaths>,
    /// Trust every request as this identity (development only: loopback only).
    pub(crate) dev_identity: Option<Identity>,
    /// pgBackRest's configuration, for the dashboard's backup status.
    pub(crate) backup_config: PathBuf,
    /// The host's stored scrape, passed on at /metrics.
    pub(crate) metrics_file: PathBuf,
    pub(crate) pool_size: u32,
    /// One JSON object per request on stderr, else a line of text.
    pub(crate) json_logs: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Tailscale(#[from] LocalApiError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("could not take a connection from the panel's pool")]
    Pool(#[from] sqlx::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Serves the panel until `shutdown` completes (requests in flight finish). With TLS, a renewed
/// pair is taken when its files change or when `reload` is notified.
pub(crate) async fn serve(
    options: Options,
    reload: Arc<Notify>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (identities, addrs, mut names) = match options.dev_identity {
        Some(identity) => {
            let addrs = if options.listen.is_empty() {
                vec![SocketAddr::from(([127, 0, 0, 1], options.port))]
            } else {
                options.listen.clone()
            };
            listen::check_listen(&addrs, true)?;
            (IdentitySource::Development(identity), addrs, Vec::new())
        }
        None => {
            listen::check_listen(&options.listen, false)?;
            let api = LocalApi::new(&options.socket);
            let status = api.status().await?;
            let addrs = if options.listen.is_empty() {
                listen::tailnet_listen_addresses(&status, options.port)?
            } else {
                listen::check_own(&options.listen, &status)?;
                options.listen.clone()
            };
            let mut names = Vec::new();
            if let Some(name) = status.dns_name() {
                if let Some(short) = name.split('.').next() {
                    names.push(short.to_owned());
                }
                names.push(name);
            }
            (IdentitySource::tailnet(api, options.capability.clone()), addrs, names)
        }
    };
    names.extend(options.host_names.iter().cloned());
    let tls = options.tls.is_some();
    // A short wait for a pooled connection: with the database gone a page says so within
    // seconds (other commands keep the long connect timeout).
    let pool = db::pool_waiting(
        &options.database_url,
        "cabinet-db serve",
        options.pool_size,
        db::Liveness::CheckedBeforeUse,
        readiness::PANEL_ACQUIRE_TIMEOUT,
    )
    .await?;
    // In a cluster the panel writes through the leader (HAProxy's leader port), never a standby.
    db::refuse_standby(&mut *pool.acquire().await?, &options.database_url.redacted(), "the admin panel")
        .await?;
    let development = match &identities {
        IdentitySource::Development(identity) => Some(format!("{}={}", identity.login, identity.role)),
        _ => None,
    };
    let state = Arc::new(PanelState {
        pool,
        readiness: Readiness::default(),
        database_url: options.database_url,
        allowed_hosts: listen::allowed_hosts(&addrs, &names, tls),
        identities,
        tls,
        json_logs: options.json_logs,
        tailscaled_socket: options.socket,
        backup_config: options.backup_config,
        metrics_file: options.metrics_file,
        counters: crate::metrics::panel::PanelCounters::default(),
        roles: crate::roles::Roles::default(),
        panel_port: addrs[0].port(),
    });
    if let Some(given) = development {
        eprintln!("cabinet-db serve: DEVELOPMENT identity {given:?}: every request is trusted as it");
    }
    server::serve(state, &addrs, options.tls.as_ref(), reload, shutdown).await?;
    Ok(())
}
