//! TLS with a certificate that renews. `tailscale cert` rewrites the certificate and key about
//! every 90 days (a timer or cron job runs it); a running panel picks the new pair up without a
//! restart, by looking at the two files' metadata every few seconds and on SIGHUP. A pair is
//! checked whole before it serves — the key private, certificate and key of one renewal, the
//! certificate valid now — and swapped in one step for every new handshake. A pair that does not
//! check out (a half-written file, a certificate whose key is not written yet, an expired one) is
//! never swapped in: the previous certificate keeps serving and a warning names the file and why.
//! A renewal that writes one file and then the other is taken once both agree.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::{Notify, watch};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        crypto::CryptoProvider,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::{ClientHello, ResolvesServerCert},
        sign::CertifiedKey,
    },
};

use super::accept::stopping;

/// The certificate chain and key for TLS (e.g. from `tailscale cert db.tail1234.ts.net`).
#[derive(Debug, Clone)]
pub(crate) struct TlsPaths {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The longest certificate chain read: a chain is a few kilobytes.
const MAX_CHAIN_BYTES: u64 = 1024 * 1024;

/// A certificate or key that cannot serve: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("TLS file {}: {reason}", .path.display())]
pub(crate) struct TlsError {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
}

/// How often the certificate's and key's metadata is looked at: two `stat` calls, so a few
/// seconds cost nothing, and a renewed certificate serves within that.
pub const CERT_POLL_INTERVAL: Duration = Duration::from_secs(3);

/// A certificate this close to its end is warned about: nothing renews it unless something runs
/// `tailscale cert` (Let's Encrypt's certificates last 90 days; it renews within the last 30).
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// How often that warning repeats.
const EXPIRY_WARNING_REPEAT: Duration = Duration::from_secs(24 * 3600);

/// The certificate in service, and where its renewals come from.
#[derive(Debug)]
pub(crate) struct Certificates {
    paths: TlsPaths,
    provider: Arc<CryptoProvider>,
    current: RwLock<Served>,
    /// The files as they were when the serving pair was first read.
    loaded_from: Stamps,
}

#[derive(Debug, Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    about: About,
}

/// What the log says about a certificate: its names and when it is valid (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct About {
    names: String,
    not_before: i64,
    not_after: i64,
}

impl Certificates {
    /// Reads the pair at start. Any problem with the files is an error (the panel does not
    /// start); a certificate outside its validity is only a warning, since there is nothing else
    /// to serve and the browser's refusal with this warning says why.
    pub(crate) fn load(paths: &TlsPaths) -> Result<Arc<Certificates>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded_from = Stamps::of(paths);
        let (key, about) = read_pair(paths, &provider)?;
        if let Err(reason) = about.valid_at(now_unix()) {
            tracing::warn!(
                "TLS file {}: {reason}; serving it anyway, as there is no other",
                paths.cert.display()
            );
        }
        Ok(Arc::new(Certificates {
            paths: paths.clone(),
            provider,
            current: RwLock::new(Served { key, about }),
            loaded_from,
        }))
    }

    /// The acceptor every TLS listener uses: its certificate is whichever serves at the time of
    /// each handshake.
    pub(crate) fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError { path: self.paths.cert.clone(), reason: e.to_string() })?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Looks for a renewed pair every [`CERT_POLL_INTERVAL`], and whenever `reload` is notified
    /// (SIGHUP), until `stop`.
    pub(crate) async fn watch(self: Arc<Self>, reload: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let mut seen = self.loaded_from;
        let mut tick = tokio::time::interval(CERT_POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut expiry_warned: Option<Instant> = None;
        loop {
            let asked = tokio::select! {
                _ = tick.tick() => false,
                () = reload.notified() => true,
                () = stopping(&mut stop) => return,
            };
            // Read before the files are: a write that lands while they are read changes what
            // the next look sees, so that look reads them again.
            let now = Stamps::of(&self.paths);
            if asked || now != seen {
                seen = now;
                self.renew(asked);
            }
            self.warn_if_expiring(&mut expiry_warned);
        }
    }

    /// Reads the pair and serves it when it checks out and differs from the one serving.
    fn renew(&self, asked: bool) {
        let serving = self.serving().about;
        let checked = read_pair(&self.paths, &self.provider).and_then(|(key, about)| {
            about.valid_at(now_unix()).map(|()| (key, about)).map_err(|reason| TlsError {
                path: self.paths.cert.clone(),
                reason: format!("{reason}, so it is not served"),
            })
        });
        match checked {
            Ok((key, about)) => {
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                if current.key.cert == key.cert {
                    if asked {
                        tracing::info!(
                            "SIGHUP: the TLS certificate {} is unchanged",
                            self.paths.cert.display()
                        );
                    }
                    return;
                }
                tracing::info!(
                    "TLS certificate renewed from {}: {}, valid until {}",
                    self.paths.cert.display(),
                    about.names,
                    date(about.not_after)
                );
                *current = Served { key, about };
            }
            Err(problem) => tracing::warn!(
                "{problem}; still serving the previous certificate ({}, valid until {}). If a renewal \
                 is still writing the files, the next look (every {} s) takes them once both are written",
                serving.names,
                date(serving.not_after),
                CERT_POLL_INTERVAL.as_secs()
            ),
        }
    }

    fn warn_if_expiring(&self, warned: &mut Option<Instant>) {
        if warned.is_some_and(|at| at.elapsed() < EXPIRY_WARNING_REPEAT) {
            return;
        }
        let about = self.serving().about;
        let left = about.not_after.saturating_sub(now_unix());
        if left > EXPIRY_WARNING.as_secs() as i64 {
            return;
        }
        let when = if left <= 0 { "expired on" } else { "expires on" };
        tracing::warn!(
            "the TLS certificate {} ({}) {when} {}: renew it (`tailscale cert …` writes both files; the \
             panel takes them without a restart)",
            self.paths.cert.display(),
            about.names,
            date(about.not_after)
        );
        *warned = Some(Instant::now());
    }

    fn serving(&self) -> Served {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.serving().key)
    }
}

/// The certificate chain and key as one checked pair: the key private (`secret::read_private`), both PEM,
/// the key the one the certificate names.
fn read_pair(paths: &TlsPaths, provider: &CryptoProvider) -> Result<(Arc<CertifiedKey>, About), TlsError> {
    let fail = |path: &Path, reason: String| TlsError { path: path.to_owned(), reason };
    let key_text = crate::secret::read_private(&paths.key).map_err(|e| fail(&paths.key, e.to_string()))?;
    let cert_text = crate::secret::read_regular(&paths.cert, MAX_CHAIN_BYTES)
        .map_err(|e| fail(&paths.cert, e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&paths.cert, format!("not a PEM certificate chain ({e})")))?;
    let Some(leaf) = certs.first() else {
        return Err(fail(&paths.cert, "holds no certificate".to_owned()));
    };
    let about = About::of(leaf).map_err(|reason| fail(&paths.cert, reason))?;
    let key = PrivateKeyDer::from_pem_slice(key_text.as_bytes())
        .map_err(|e| fail(&paths.key, format!("not a PEM private key ({e})")))?;
    let key = CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        fail(
            &paths.cert,
            format!(
                "the certificate and the private key {} do not go together ({e}); give the key written with it",
                paths.key.display()
            ),
        )
    })?;
    Ok((Arc::new(key), about))
}

impl About {
    fn of(leaf: &CertificateDer<'_>) -> Result<About, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("its first certificate is not X.509 ({e})"))?;
        let names: Vec<String> = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let names = if names.is_empty() { cert.subject().to_string() } else { names.join(", ") };
        let validity = cert.validity();
        Ok(About {
            names,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    fn valid_at(&self, now: i64) -> Result<(), String> {
        if now < self.not_before {
            Err(format!("the certificate is not valid before {}", date(self.not_before)))
        } else if now > self.not_after {
            Err(format!("the certificate expired on {}", date(self.not_after)))
        } else {
            Ok(())
        }
    }
}

/// What tells a rewritten or replaced file from the one read before: device and inode (a rename
/// over it), size and change times (a rewrite in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamps([Option<Stamp>; 2]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamps {
    fn of(paths: &TlsPaths) -> Stamps {
        let stamp = |path: &Path| {
            std::fs::metadata(path).ok().map(|m| Stamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })
        };
        Stamps([stamp(&paths.cert), stamp(&paths.key)])
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn date(unix: i64) -> String {
    match chrono::DateTime::from_timestamp(unix, 0) {
        Some(at) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => format!("{unix} (Unix time)"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn issue(names: &[&str], days: (i64, i64)) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let key = rcgen::KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (cert, key): &(String, String)) -> TlsPaths {
        let paths = TlsPaths { cert: dir.join("panel.crt"), key: dir.join("panel.key") };
        std::fs::write(&paths.cert, cert).unwrap();
        std::fs::write(&paths.key, key).unwrap();
        std::fs::set_permissions(&paths.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        paths
    }

    #[test]
    fn a_pair_is_read_with_its_names_and_validity() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(dir.path(), &issue(&["db.tail1234.ts.net"], (-1, 89)));
        let certificates = Certificates::load(&paths).unwrap();
        let about = certificates.serving().about;
        assert_eq!(about.names, "db.tail1234.ts.net");
        assert!(about.valid_at(now_unix()).is_ok());
    }

    #[test]
    fn a_renewal_is_served_only_once_it_checks_out() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(dir.path(), &issue(&["a.example"], (-1, 89)));
        let certificates = Certificates::load(&paths).unwrap();
        let first = certificates.serving().key.cert.clone();

        // The certificate of a renewal, its key not written yet: not served.
        let renewal = issue(&["b.example"], (-1, 89));
        std::fs::write(&paths.cert, &renewal.0).unwrap();
        certificates.renew(false);
        assert_eq!(certificates.serving().key.cert, first, "a certificate without its key is not served");
        let problem = read_pair(&paths, &certificates.provider).unwrap_err().to_string();
        assert!(problem.contains("panel.crt") && problem.contains("do not go together"), "{problem}");

        // Half a key: not served either, and the message names the key file.
        std::fs::write(&paths.key, &renewal.1[..renewal.1.len() / 2]).unwrap();
        certificates.renew(false);
        assert_eq!(certificates.serving().key.cert, first);
        let problem = read_pair(&paths, &certificates.provider).unwrap_err().to_string();
        assert!(problem.contains("panel.key") && problem.contains("not a PEM private key"), "{problem}");

        // Both written: served.
        std::fs::write(&paths.key, &renewal.1).unwrap();
        certificates.renew(false);
        assert_eq!(certificates.serving().about.names, "b.example");
    }

    #[test]
    fn an_expired_or_future_certificate_is_not_swapped_in() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(dir.path(), &issue(&["a.example"], (-1, 89)));
        let certificates = Certificates::load(&paths).unwrap();
        for (days, says) in [((-90, -1), "expired on"), ((2, 90), "not valid before")] {
            write(dir.path(), &issue(&["b.example"], days));
            certificates.renew(false);
            assert_eq!(certificates.serving().about.names, "a.example", "{says}");
            let (_, about) = read_pair(&paths, &certificates.provider).unwrap();
            assert!(about.valid_at(now_unix()).unwrap_err().contains(says));
        }
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(dir.path(), &issue(&["a.example"], (-1, 89)));
        std::fs::set_permissions(&paths.key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let problem = Certificates::load(&paths).unwrap_err().to_string();
        assert!(problem.contains("readable by its group or others (mode 640)"), "{problem}");
    }
}
