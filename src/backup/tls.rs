//! A repository on a second tailnet host, reached through pgBackRest's TLS server: the
//! certificates both hosts present, and the rules that keep that port inside the tailnet.
//!
//! Each host runs `pgbackrest server` and is a client of the other's: the database host pushes
//! WAL to the repository host; the repository host takes backups from the database host. Both
//! sides check the other's certificate against one private CA, and each server admits only the
//! peer's certificate name for the `cabinet` stanza (`tls-server-auth`). The name in a
//! certificate is the host name (or tailnet address) by which the other host reaches it, so
//! one value — `--repo-host` on one side, `--db-host` on the other — says both whom to call
//! and whom to admit.

use std::{
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use serde::Serialize;

use super::{BackupError, secrets};
use crate::{atomic_file::AtomicFile, local_cluster::RunAs, tailnet::is_tailnet_address};

/// pgBackRest's TLS server port unless told otherwise.
pub(crate) const DEFAULT_TLS_PORT: u16 = 8432;
/// How long a host certificate is valid: about two years, then issue a new one.
pub(crate) const DEFAULT_CERT_DAYS: u32 = 825;
/// The CA's name in every certificate it signs.
const CA_NAME: &str = "cabinet-db backup CA";

/// The three files a host presents and checks with, as pgBackRest reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The longest certificate file read: one is a few kilobytes.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

impl TlsFiles {
    /// Where `backup setup` keeps this host's copies: next to the secrets, owned by the server's
    /// user (pgBackRest reads only `*.conf` from that directory as configuration).
    pub fn installed(config_path: &Path) -> TlsFiles {
        let dir = secrets::include_dir(config_path);
        TlsFiles { ca: dir.join("tls-ca.crt"), cert: dir.join("tls-host.crt"), key: dir.join("tls-host.key") }
    }

    /// Checks the given files before anything is written (each read at most once, bounded):
    /// paths that fit the configuration
    /// file, PEM certificates, a private key only its owner can read.
    pub(crate) fn check(&self) -> Result<(), BackupError> {
        for (option, path) in [("--tls-ca", &self.ca), ("--tls-cert", &self.cert), ("--tls-key", &self.key)] {
            super::repository::check_config_path(option, path)?;
        }
        for (option, path) in [("--tls-ca", &self.ca), ("--tls-cert", &self.cert)] {
            let text =
                crate::secret::read_regular(path, MAX_PEM_BYTES).map_err(|e| BackupError::BadSetting {
                    option: option.to_owned(),
                    value: path.display().to_string(),
                    why: e.to_string(),
                })?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return Err(BackupError::BadSetting {
                    option: option.to_owned(),
                    value: path.display().to_string(),
                    why: "not a PEM certificate; cabinet-db backup certs makes them".to_owned(),
                });
            }
        }
        let key = secrets::read_private_file(&self.key, "--tls-key")?;
        if !key.contains("PRIVATE KEY-----") {
            return Err(BackupError::BadSecret {
                origin: self.key.display().to_string(),
                why: "--tls-key: not a PEM private key".to_owned(),
            });
        }
        Ok(())
    }

    /// Copies the given files to `installed(config_path)`: the key 0600, the certificates
    /// 0644, all owned by `owner` (pgBackRest runs as it). Rewritten whole on every run.
    pub(crate) fn install(&self, config_path: &Path, owner: &RunAs) -> Result<TlsFiles, BackupError> {
        let target = TlsFiles::installed(config_path);
        for (from, to, mode) in [
            (&self.ca, &target.ca, 0o644),
            (&self.cert, &target.cert, 0o644),
            (&self.key, &target.key, 0o600),
        ] {
            let bytes = std::fs::read(from).map_err(BackupError::io(format!("read {}", from.display())))?;
            let io = || BackupError::io(format!("write {}", to.display()));
            let mut file = AtomicFile::create(to, mode).map_err(io())?;
            file.write_all(&bytes).map_err(io())?;
            file.commit().map_err(io())?;
            owner.hand_over(to)?;
        }
        Ok(target)
    }
}

/// This host's side of the link: its certificate, where its server listens, and the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsLink {
    pub(crate) files: TlsFiles,
    /// The tailnet address our `pgbackrest server` listens on.
    pub(crate) listen: String,
    /// Our server's port and the peer's.
    pub(crate) port: u16,
    /// The other host: whom we call, and the certificate name our server admits.
    pub(crate) peer: String,
}

/// The link as given on the command line: the files to install and where our server listens.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub files: TlsFiles,
    pub listen: String,
    pub port: u16,
}

impl TlsOptions {
    /// Everything checked before anything is written.
    pub(crate) fn check(&self) -> Result<(), BackupError> {
        check_listen(&self.listen)?;
        self.files.check()
    }

    /// The link as the configuration names it (the installed copies of the files).
    pub(crate) fn link(&self, config_path: &Path, peer: &str) -> TlsLink {
        TlsLink {
            files: TlsFiles::installed(config_path),
            listen: self.listen.clone(),
            port: self.port,
            peer: peer.to_owned(),
        }
    }
}

/// A host name or address as it may appear in `pgbackrest.conf` and a certificate: letters,
/// digits, `-`, `.`, or an IP address.
pub(crate) fn check_host(option: &str, host: &str) -> Result<(), BackupError> {
    let is_ip = host.parse::<IpAddr>().is_ok();
    let is_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if is_ip || is_name {
        Ok(())
    } else {
        Err(BackupError::BadSetting {
            option: option.to_owned(),
            value: host.to_owned(),
            why: "not a host name (letters, digits, '-' and '.') or an IP address".to_owned(),
        })
    }
}

/// The address a `pgbackrest server` listens on must be this host's tailnet address: the port
/// is never open on another network (there is no "all interfaces" here).
pub(crate) fn check_listen(address: &str) -> Result<(), BackupError> {
    match address.parse::<IpAddr>() {
        Ok(ip) if is_tailnet_address(ip) => Ok(()),
        _ => Err(BackupError::BadSetting {
            option: "--tls-listen".to_owned(),
            value: address.to_owned(),
            why: "pgBackRest's TLS server listens only on this host's tailnet address (100.64.0.0/10 or fd7a:115c:a1e0::/48; `tailscale ip` shows it)".to_owned(),
        }),
    }
}

/// What `backup certs` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub ca: PathBuf,
    /// The CA was made by this run (else an existing one signed).
    pub(crate) new_ca: bool,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Issues a certificate for `host` from the CA in `dir` (made on first use: `ca.crt` and
/// `ca.key`, the key 0600): `<host>.crt` and `<host>.key` (0600), valid for `days`, usable as
/// both TLS server and client, named `host` (common name and subject alternative name).
/// An existing certificate for `host` is not replaced.
pub fn issue(dir: &Path, host: &str, days: u32) -> Result<Issued, BackupError> {
    check_host("--host", host)?;
    if days == 0 {
        return Err(BackupError::BadSetting {
            option: "--days".to_owned(),
            value: days.to_string(),
            why: "a certificate must be valid for at least a day".to_owned(),
        });
    }
    let (cert_path, key_path) = (dir.join(format!("{host}.crt")), dir.join(format!("{host}.key")));
    if cert_path.exists() || key_path.exists() {
        return Err(BackupError::Config(format!(
            "{} already exists: a host keeps its certificate until it is replaced on purpose; remove {} and {} to issue a new one. Nothing was changed",
            cert_path.display(),
            cert_path.display(),
            key_path.display()
        )));
    }
    if !dir.exists() {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .recursive(true)
            .create(dir)
            .map_err(BackupError::io(format!("create {}", dir.display())))?;
    }
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let new_ca = !ca_key.exists();
    let ca_key_pair = if new_ca {
        let key = KeyPair::generate().map_err(cert_error)?;
        let cert = ca_params(days.max(3650)).self_signed(&key).map_err(cert_error)?;
        write_file(&ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&ca_cert, cert.pem().as_bytes(), 0o644)?;
        key
    } else {
        let pem = secrets::read_private_file(&ca_key, "the CA key")?;
        KeyPair::from_pem(&pem).map_err(cert_error)?
    };
    // The same name and key as the CA certificate: what a leaf's issuer fields must match.
    let issuer = Issuer::new(ca_params(days), ca_key_pair);

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, host);
    params.subject_alt_names = vec![SanType::DnsName(host.try_into().map_err(cert_error)?)];
    if let Ok(ip) = host.parse::<IpAddr>() {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days.into());
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(cert_error)?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(Issued { ca: ca_cert, new_ca, cert: cert_path, key: key_path })
}

fn ca_params(days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days.into());
    params
}

fn cert_error(e: rcgen::Error) -> BackupError {
    BackupError::Config(format!("could not make the certificate: {e}"))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BackupError> {
    let io = || BackupError::io(format!("write {}", path.display()));
    let mut file = AtomicFile::create(path, mode).map_err(io())?;
    file.write_all(bytes).map_err(io())?;
    file.commit().map_err(io())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn hosts_and_listen_addresses_that_could_rewrite_the_configuration_are_refused() {
        for good in ["repo", "backup-1.tail0123.ts.net", "100.101.103.2", "fd7a:115c:a1e0::2"] {
            check_host("--repo-host", good).unwrap();
        }
        for bad in ["", "a b", "repo\nrepo1-path=/etc", "-x", "a..b", "x=y", "h[1]", "é.example"] {
            let message = check_host("--repo-host", bad).unwrap_err().to_string();
            assert!(message.contains("Nothing was changed"), "{message}");
        }
        check_listen("100.101.103.1").unwrap();
        for public in ["0.0.0.0", "*", "192.0.2.1", "::", "repo.example.com"] {
            assert!(check_listen(public).unwrap_err().to_string().contains("tailnet address"), "{public}");
        }
    }

    #[test]
    fn a_ca_signs_each_host_once_and_keys_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let first = issue(&pki, "100.101.103.1", 30).unwrap();
        assert!(first.new_ca);
        let second = issue(&pki, "repo.example", 30).unwrap();
        assert!(!second.new_ca, "the CA is reused");
        for key in [&first.key, &second.key, &pki.join("ca.key")] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        let again = issue(&pki, "repo.example", 30).unwrap_err().to_string();
        assert!(again.contains("already exists") && again.contains("Nothing was changed"), "{again}");
        assert!(issue(&pki, "bad\nname", 30).is_err());
        TlsFiles { ca: first.ca.clone(), cert: first.cert.clone(), key: first.key.clone() }.check().unwrap();
        std::fs::set_permissions(&first.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let leaked = TlsFiles { ca: first.ca, cert: first.cert, key: first.key }.check().unwrap_err();
        assert!(leaked.to_string().contains("readable by its group or others"), "{leaked}");
    }
}
