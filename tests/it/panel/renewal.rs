//! A renewed certificate is served without a restart: `cabinet-db serve --tls-cert --tls-key` on
//! loopback while the test rewrites the two files the way `tailscale cert` and people do, and a
//! TLS client reads which certificate each new connection gets.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use cabinet_db::panel::server::CERT_POLL_INTERVAL;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::{harness::TestDb, lab::Killed};

/// A certificate for `localhost` with a key of its own, as PEM.
struct Issued {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn issue() -> Issued {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Issued {
        cert: issued.cert.pem(),
        key: issued.signing_key.serialize_pem(),
        der: issued.cert.der().to_vec(),
    }
}

/// Writes `text` to `path` in place (same file, truncated and rewritten), as an editor or
/// `cat > file` does.
fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Writes `text` next to `path` and renames it over `path`, as `tailscale cert` does.
fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).unwrap();
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// The leaf certificate a new TLS connection to `port` gets (the client trusts every one issued
/// here), or why there was none.
async fn served(port: u16, trusted: &[&Issued]) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for issued in trusted {
        roots.add(issued.der.clone().into()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).ok_or("no certificate")?;
    Ok(leaf.to_vec())
}

/// Waits until new connections get `wanted`; fails after a few looks at the files.
async fn until_served(port: u16, trusted: &[&Issued], wanted: &Issued, log: &Path, what: &str) {
    let deadline = Instant::now() + CERT_POLL_INTERVAL * 3 + Duration::from_secs(2);
    loop {
        let got = served(port, trusted).await;
        if got.as_ref().is_ok_and(|der| *der == wanted.der) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not served within {:?} ({:?})\n{}",
            CERT_POLL_INTERVAL * 3,
            got.map(|der| der.len()),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_bad_pair_never() {
    // Arrange: the panel over TLS with certificate A.
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key): (PathBuf, PathBuf) = (dir.path().join("panel.crt"), dir.path().join("panel.key"));
    let [a, b, c, d] = [issue(), issue(), issue(), issue()];
    let trusted = [&a, &b, &c, &d];
    replace(&cert, &a.cert);
    replace(&key, &a.key);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = crate::harness::binary();
    command
        .env("DATABASE_URL", db.url.expose())
        .args(["serve", "--dev-identity", "tls@example.com=viewer", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap());
    let mut panel = Killed(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while served(port, &trusted).await.is_err() {
        assert!(Instant::now() < deadline, "no TLS answer: {}", std::fs::read_to_string(log.path()).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served(port, &trusted).await.unwrap(), a.der, "certificate A at start");

    // Act and assert: renewed by renaming new files over the old (key first, as a careful
    // writer does), B is served; rewritten in place, C.
    replace(&key, &b.key);
    replace(&cert, &b.cert);
    until_served(port, &trusted, &b, log.path(), "B, renamed over A").await;
    rewrite(&key, &c.key);
    rewrite(&cert, &c.cert);
    until_served(port, &trusted, &c, log.path(), "C, rewritten in place").await;

    // A renewal written in two steps: D's certificate first. Until its key follows, C keeps
    // serving and the log says which file does not fit and why.
    rewrite(&cert, &d.cert);
    tokio::time::sleep(CERT_POLL_INTERVAL * 2 + Duration::from_millis(500)).await;
    assert_eq!(served(port, &trusted).await.unwrap(), c.der, "a certificate without its key is never served");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let warning = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("do not go together"))
        .unwrap_or_else(|| panic!("no warning about the mismatched pair:\n{text}"));
    assert!(warning.contains(cert.to_str().unwrap()) && warning.contains(key.to_str().unwrap()), "{warning}");
    assert!(warning.contains("still serving the previous certificate"), "{warning}");
    rewrite(&key, &d.key);
    until_served(port, &trusted, &d, log.path(), "D, once its key is written").await;

    // SIGHUP (`systemctl reload`) reads the pair again and ends nothing.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(panel.0.id() as i32), nix::sys::signal::Signal::SIGHUP)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(port, &trusted).await.unwrap(), d.der);

    // Never restarted: the same process served every certificate.
    assert!(panel.0.try_wait().unwrap().is_none(), "{}", std::fs::read_to_string(log.path()).unwrap());
    assert!(!std::fs::read_to_string(log.path()).unwrap().contains("BEGIN PRIVATE KEY"), "no key in the log");
}
