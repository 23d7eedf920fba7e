//! `cabinet-db serve`: the admin panel.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::Args as ClapArgs;

use crate::{
    cli::outcome::Outcome,
    db::DatabaseUrl,
    panel::{identity, listen, server::TlsPaths, start},
    tailnet::{
        localapi::DEFAULT_SOCKET,
        panel::{DEFAULT_CAPABILITY, DEFAULT_PORT, check_capability},
    },
};

/// Serve the admin panel on this node's tailnet addresses, signed in by tailnet identity.
///
/// Who you are comes from tailscaled (LocalAPI whois of the connection's address); what you
/// may do comes from the tailnet policy's app capability (viewer reads, editor changes sites,
/// admin also manages users and imports). Nothing is reachable from outside the tailnet, and
/// every change is recorded in the history under your tailnet login.
///
/// Examples:
///   cabinet-db serve --database-url postgres://cabinet_admin:…@localhost/cabinet
///   cabinet-db serve --tls-cert /etc/cabinet-db/db.tail1234.ts.net.crt --tls-key /etc/cabinet-db/db.tail1234.ts.net.key
///   # development, on loopback only, as a fixed identity:
///   cabinet-db serve --dev-identity dev@example.com=admin --database-url "$(cabinet-db dev url --role cabinet_admin)"
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// PostgreSQL URL (the cabinet_admin role).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<DatabaseUrl>,
    /// Address to listen on, ADDR:PORT or ADDR (port 8432); repeatable. Default: every
    /// Tailscale address of this node. Wildcard and non-tailnet addresses are refused.
    #[arg(long, value_name = "ADDR:PORT", env = "CABINET_PANEL_LISTEN", value_delimiter = ',')]
    pub(crate) listen: Vec<String>,
    /// The port when --listen is not given.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = DEFAULT_PORT)]
    pub(crate) port: u16,
    /// tailscaled's LocalAPI socket.
    #[arg(long, env = "TAILSCALE_SOCKET", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
    /// The app capability the tailnet policy grants roles with.
    #[arg(long, default_value = DEFAULT_CAPABILITY)]
    pub(crate) capability: String,
    /// Another name browsers may use for this node (MagicDNS names are added from tailscaled).
    #[arg(long = "host-name", value_name = "NAME")]
    pub(crate) host_names: Vec<String>,
    /// TLS certificate chain (PEM), e.g. from `tailscale cert`. A renewed pair is taken
    /// without a restart (the files are looked at every few seconds, and on SIGHUP) once it
    /// checks out; until then the previous one serves.
    #[arg(long, env = "CABINET_PANEL_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "CABINET_PANEL_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// DEVELOPMENT ONLY: trust every request as LOGIN with ROLE (viewer, editor, admin), e.g.
    /// dev@example.com=admin. The panel then listens on loopback only (127.0.0.1:8432 unless
    /// --listen says otherwise) and never asks tailscaled.
    #[arg(long, value_name = "LOGIN=ROLE")]
    pub(crate) dev_identity: Option<String>,
    /// pgBackRest's configuration, for the dashboard's backup status.
    #[arg(long, env = "CABINET_BACKUP_CONFIG", default_value = crate::backup::config::DEFAULT_CONFIG)]
    pub(crate) backup_config: PathBuf,
    /// The host's stored scrape (`cabinet-db metrics --out`, written each minute by the
    /// package's cabinet-db-metrics.timer), passed on at /metrics with the panel's own counters.
    #[arg(long, value_name = "FILE", default_value = crate::records::STORED_SCRAPE)]
    pub(crate) metrics_file: PathBuf,
    /// Database connections the panel keeps at most. A page waits 2 s for one, then says
    /// whether the database is unreachable or every connection busy (so does /readyz).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) pool_size: u32,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let database_url = args
        .database_url
        .clone()
        .context("no database given: set DATABASE_URL or pass --database-url (the cabinet_admin role)")?;
    check_capability(&args.capability).map_err(|e| anyhow::anyhow!("--capability: {e}"))?;
    let listen = args.listen.iter().map(|l| listen::parse_listen(l)).collect::<Result<_, _>>()?;
    let dev_identity = args
        .dev_identity
        .as_deref()
        .map(|text| identity::parse_dev_identity(text).map_err(|e| anyhow::anyhow!("--dev-identity: {e}")))
        .transpose()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsPaths { cert: cert.clone(), key: key.clone() }),
        (None, None) => None,
        // Whichever way each half came (flag, environment, the configuration file), one alone is
        // refused: serving plain HTTP because the other is missing would be a silent downgrade.
        _ => anyhow::bail!(
            "a TLS certificate needs its key and a key its certificate: give both --tls-cert and --tls-key \
             (or panel.tls_cert and panel.tls_key in the configuration file), or neither"
        ),
    };
    let reload = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(forward_hangups(reload.clone(), tls.is_some()));
    let options = start::Options {
        database_url,
        listen,
        port: args.port,
        socket: args.socket,
        capability: args.capability,
        host_names: args.host_names,
        tls,
        dev_identity,
        backup_config: args.backup_config,
        metrics_file: args.metrics_file,
        pool_size: args.pool_size,
        json_logs: json,
    };
    start::serve(options, reload, shutdown_signal()).await?;
    eprintln!("cabinet-db serve: stopped");
    Ok(Outcome::Success)
}

/// SIGHUP (`systemctl reload`): read the TLS certificate and key again now rather than at the
/// next look. Handled without TLS too, where it changes nothing: by default it would end the
/// process, and systemd would not restart one that ended on SIGHUP.
async fn forward_hangups(reload: Arc<tokio::sync::Notify>, tls: bool) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        if tls {
            reload.notify_one();
        } else {
            eprintln!("cabinet-db serve: SIGHUP: nothing to reload (no --tls-cert)");
        }
    }
}

/// SIGINT or SIGTERM (systemd's stop).
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
