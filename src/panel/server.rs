//! Listening and serving: one listener per address (plain HTTP, or TLS with the certificate
//! `tailscale cert` issues for the node's MagicDNS name), the peer address of every connection
//! kept for whois, and a graceful shutdown that lets requests in flight finish.

use std::{
    io,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
    server::TlsStream,
};

use super::{PanelState, router::router};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (is this address up on this host? `tailscale ip` lists the node's own)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TLS file {}: {reason}", .path.display())]
    Tls { path: PathBuf, reason: String },
    #[error("serving on {addr} failed")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The certificate chain and key for TLS (e.g. from `tailscale cert db.tail1234.ts.net`).
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves the panel on every address until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    state: Arc<PanelState>,
    addrs: &[SocketAddr],
    tls: Option<&TlsPaths>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = tls.map(load_tls).transpose()?;
    let mut listeners = Vec::new();
    for &addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        listeners.push((addr, listener));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(state);
    let mut servers = tokio::task::JoinSet::new();
    for (addr, listener) in listeners {
        let mut stopped = stopped.clone();
        let until = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let service = app.clone().into_make_service_with_connect_info::<Peer>();
        match &acceptor {
            None => {
                servers.spawn(async move {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(until)
                        .await
                        .map_err(|source| ServeError::Serve { addr, source })
                });
            }
            Some(acceptor) => {
                let listener = TlsListener::start(listener, acceptor.clone());
                servers.spawn(async move {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(until)
                        .await
                        .map_err(|source| ServeError::Serve { addr, source })
                });
            }
        }
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    while let Some(result) = servers.join_next().await {
        result.map_err(|e| ServeError::Serve { addr: addrs[0], source: io::Error::other(e) })??;
    }
    Ok(())
}

fn load_tls(paths: &TlsPaths) -> Result<TlsAcceptor, ServeError> {
    let fail = |path: &Path, reason: String| ServeError::Tls { path: path.to_owned(), reason };
    let mode =
        std::fs::metadata(&paths.key).map_err(|e| fail(&paths.key, e.to_string()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(fail(
            &paths.key,
            format!("the private key is readable by others (mode {:o}); chmod 600 it", mode & 0o777),
        ));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| fail(&paths.cert, format!("not a PEM certificate chain ({e})")))?;
    if certs.is_empty() {
        return Err(fail(&paths.cert, "holds no certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| fail(&paths.key, format!("not a PEM private key ({e})")))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(&paths.cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| fail(&paths.cert, format!("the certificate and key do not go together ({e})")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The address a connection comes from, kept with every request (whois asks about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A listener whose connections arrive with their TLS handshake done. Handshakes run on tasks
/// of their own, so one slow or hostile client never holds up the others.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: io::Result<SocketAddr>,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor) -> TlsListener {
        let local = listener.local_addr();
        let (send, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if send.is_closed() {
                    return;
                }
                let (acceptor, send) = (acceptor.clone(), send.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = send.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task is gone: nothing will ever arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}
