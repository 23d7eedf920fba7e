//! The TLS link between a database host and its repository host, as `setup` and
//! `setup-repo-host` take it.

use std::path::PathBuf;

use clap::Args;

use crate::backup::tls::{DEFAULT_TLS_PORT, TlsFiles, TlsOptions};

/// The TLS link between a database host and its repository host (both sides run
/// `pgbackrest server`; each admits only the other's certificate).
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// The CA certificate both hosts trust (from `cabinet-db backup certs`).
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_CA")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This host's certificate, named as the other host reaches it.
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// This host's private key (chmod 600).
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// This host's tailnet address, where its pgBackRest server listens (`tailscale ip -4`).
    #[arg(long, value_name = "ADDRESS", env = "CABINET_BACKUP_TLS_LISTEN")]
    pub(crate) tls_listen: Option<String>,
    /// The pgBackRest servers' port, on both hosts.
    #[arg(long, value_parser = crate::cli::args::parse_port, value_name = "PORT", default_value_t = DEFAULT_TLS_PORT)]
    pub(crate) tls_port: u16,
}

impl TlsArgs {
    /// All four given, or none (`None`); some of them is an error naming the missing ones.
    pub(crate) fn options(&self) -> anyhow::Result<Option<TlsOptions>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key, &self.tls_listen) {
            (Some(ca), Some(cert), Some(key), Some(listen)) => Ok(Some(TlsOptions {
                files: TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() },
                listen: listen.clone(),
                port: self.tls_port,
            })),
            (None, None, None, None) => Ok(None),
            given => {
                let missing: Vec<&str> = [
                    ("--tls-ca", given.0.is_none()),
                    ("--tls-cert", given.1.is_none()),
                    ("--tls-key", given.2.is_none()),
                    ("--tls-listen", given.3.is_none()),
                ]
                .into_iter()
                .filter_map(|(name, missing)| missing.then_some(name))
                .collect();
                anyhow::bail!(
                    "the link to the other host also needs {}. Nothing was changed",
                    missing.join(", ")
                )
            }
        }
    }
}
