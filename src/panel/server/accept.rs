//! The accept loop every listener runs, plain HTTP and TLS alike, and each connection's task:
//! the TLS handshake (bounded, on the connection's own task, so a slow client holds up nobody),
//! then hyper's HTTP/1.1 with a timer, so that a request header that never ends closes its
//! connection instead of holding a slot for ever.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use super::limits::{Limits, Slot};
use crate::panel::router::Peer;

/// Completes once the panel is told to stop (or whoever tells it is gone). Returns nothing, so
/// no borrow of the channel is held across a `select!`'s other branch.
pub(super) async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// How long a client may take to send a request's header, counted from the connection's start
/// or from the end of the previous response (so it also closes an idle kept-alive connection).
/// A browser sends a header at once; ten seconds is patient with a slow link and short enough
/// that a peer holding half-sent headers frees its slots quickly.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to finish its TLS handshake; the same reasoning.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed `accept` (out of file descriptors, most likely), how long to wait before the
/// next: retrying at once would spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// How often a failing `accept` is logged at most.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What every connection of every listener shares.
pub(crate) struct Shared {
    pub(crate) app: Router,
    /// `None`: plain HTTP.
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Arc<Limits>,
}

/// Accepts connections until `stop`, each admitted by the limits on a task of its own. A
/// connection over a limit is closed at once, before anything is read from it.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut error_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(&mut stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if error_logged.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_INTERVAL) {
                    tracing::warn!(%error, "accepting a connection failed; retrying (logged once a minute)");
                    error_logged = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let Some(slot) = shared.limits.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        tokio::spawn(connection(tcp, peer, shared.clone(), stop.clone(), slot));
    }
}

/// One connection from handshake to close. `_slot` is held until then.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _slot: Slot,
) {
    let Some(acceptor) = &shared.tls else {
        return http(tcp, peer, shared.app.clone(), stop).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        },
        // A handshake still under way when the panel stops has no request in flight.
        () = stopping(&mut stop) => return,
    };
    http(stream, peer, shared.app.clone(), stop).await
}

/// Serves HTTP/1.1 on `io` until the client closes, a timeout closes it, or `stop` — then the
/// request in flight is answered before the connection closes.
async fn http<I>(io: I, peer: SocketAddr, app: Router, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        // What the identity middleware asks whois about.
        request.extensions_mut().insert(ConnectInfo(Peer(peer)));
        // A Router is always ready: no poll_ready needed before call.
        app.clone().call(request)
    });
    let mut builder = http1::Builder::new();
    // Without a timer hyper's header-read timeout never fires (axum::serve gives it none).
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopping(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        // Timeouts, resets, malformed requests: the client's business, not the operator's.
        tracing::debug!(%peer, %error, "connection ended");
    }
}
