//! Listening and serving: one accept loop per address, plain HTTP or TLS with the certificate
//! `tailscale cert` issues for the node's MagicDNS name (taken again when it is renewed), limits
//! that keep one peer from taking every connection, timeouts on handshakes and request headers,
//! the peer address of every connection kept for whois, and a graceful shutdown that lets
//! requests in flight finish.

/// The accept loop and each connection's task.
mod accept;
/// Connections per peer and in total.
mod limits;
/// The certificate, checked and swapped when renewed.
mod tls;

use std::{collections::HashMap, io, net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::Notify};

use super::{router::router, state::PanelState};
pub use accept::HEADER_READ_TIMEOUT;
pub(crate) use limits::MAX_CONNECTIONS;
pub use limits::MAX_CONNECTIONS_PER_PEER;
pub use tls::CERT_POLL_INTERVAL;
pub(crate) use tls::TlsPaths;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("cannot listen on {addr} ({})", bind_hint(source))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("serving on {addr} failed")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// What to look at when an address cannot be bound.
fn bind_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::AddrInUse => {
            "another process listens there — pgBackRest's TLS server takes 8432 by default too; `ss -ltnp` names it; choose another --port"
        }
        _ => "is this address up on this host? `tailscale ip` lists the node's own",
    }
}

/// Serves the panel on every address until `shutdown` completes, then lets requests in flight
/// finish. With TLS, a renewed certificate is taken when its files change, or when `reload` is
/// notified (the CLI does on SIGHUP).
pub(crate) async fn serve(
    state: Arc<PanelState>,
    addrs: &[SocketAddr],
    tls: Option<&TlsPaths>,
    reload: Arc<Notify>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let certificates = tls.map(tls::Certificates::load).transpose()?;
    let acceptor = certificates.as_ref().map(|c| c.acceptor()).transpose()?;
    let mut listeners = Vec::new();
    for &addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        listeners.push((addr, listener));
    }
    // Said once every address is bound and the certificate checked: not before.
    let scheme = if tls.is_some() { "https" } else { "http" };
    for (addr, _) in &listeners {
        eprintln!("cabinet-db serve: listening on {scheme}://{addr}/");
    }
    // Every accept loop and connection holds a receiver; once `stop` says true, each finishes
    // (a connection after its request in flight) and drops it, and `closed` tells when all have.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shared = Arc::new(accept::Shared {
        app: router(state),
        tls: acceptor,
        limits: limits::Limits::new(MAX_CONNECTIONS_PER_PEER, MAX_CONNECTIONS),
    });
    if let Some(certificates) = certificates {
        tokio::spawn(certificates.watch(reload, stopped.clone()));
    }
    let mut loops = tokio::task::JoinSet::new();
    let mut addr_of = HashMap::new();
    for (addr, listener) in listeners {
        let task = loops.spawn(accept::accept_loop(listener, shared.clone(), stopped.clone()));
        addr_of.insert(task.id(), addr);
    }
    drop(stopped);
    let failed = |error: tokio::task::JoinError| ServeError::Serve {
        addr: addr_of.get(&error.id()).copied().unwrap_or(addrs[0]),
        source: io::Error::other(error),
    };
    // An accept loop only ends on `stop`; one that ends before is a bug (a panic) worth
    // stopping for, as axum::serve's failure was.
    tokio::select! {
        () = shutdown => {}
        Some(ended) = loops.join_next() => {
            let _ = stop.send(true);
            return Err(match ended {
                Err(error) => failed(error),
                Ok(()) => ServeError::Serve { addr: addrs[0], source: io::Error::other("an accept loop ended") },
            });
        }
    }
    let _ = stop.send(true);
    while let Some(ended) = loops.join_next().await {
        ended.map_err(failed)?;
    }
    stop.closed().await;
    Ok(())
}
