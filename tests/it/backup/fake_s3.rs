//! A local S3 service: moto (PyPI, installed by scripts/setup tests) on plain HTTP on loopback, with
//! stunnel4 putting TLS in front of it — pgBackRest speaks only HTTPS to S3, and it verifies
//! the certificate here against a CA file made for the test, as it would in production.
//!
//! `cut` stops the TLS front (the service becomes unreachable, its contents stay, as when a
//! network or a provider fails); `resume` brings it back on the same port. The bucket's objects
//! are read with boto3 over moto's plain-HTTP port, bypassing pgBackRest, to see what anyone
//! with read access to the bucket would see.

use std::{
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct FakeS3 {
    dir: tempfile::TempDir,
    moto: Child,
    moto_bin: PathBuf,
    tls: Option<Child>,
    http_port: u16,
    pub https_port: u16,
    pub bucket: String,
}

/// moto's server, where scripts/setup tests installs it (or `CABINET_MOTO_SERVER`).
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("CABINET_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let path = crate::lab::tools_dir().join("moto/bin/moto_server");
    assert!(
        path.is_file(),
        "no {}: run scripts/setup tests (it installs moto[server] for these tests)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl FakeS3 {
    pub fn start(bucket: &str) -> FakeS3 {
        let dir = tempfile::tempdir().unwrap();
        // pgBackRest runs as the server's user and reads the CA file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("openssl makes the test certificate");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        std::fs::set_permissions(dir.path().join("cert.pem"), std::fs::Permissions::from_mode(0o644))
            .unwrap();

        let http_port = free_port();
        let moto_bin = moto_server();
        let moto = Command::new(&moto_bin)
            .args(["-H", "127.0.0.1", "-p", &http_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(http_port, "moto");
        let mut s3 = FakeS3 {
            dir,
            moto,
            moto_bin,
            tls: None,
            http_port,
            https_port: free_port(),
            bucket: bucket.to_owned(),
        };
        s3.boto(CREATE, Path::new("-"));
        s3.resume();
        s3
    }

    /// The endpoint pgBackRest is given.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.https_port)
    }

    /// The CA (the self-signed certificate) pgBackRest verifies the service with.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The service becomes unreachable (connections refused); its contents stay.
    pub fn cut(&mut self) {
        if let Some(mut tls) = self.tls.take() {
            let _ = tls.kill();
            let _ = tls.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.https_port)).is_ok() {
            assert!(Instant::now() < deadline, "the TLS front still answers");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The service answers again, on the same port.
    pub fn resume(&mut self) {
        let config = self.dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[s3]\naccept = 127.0.0.1:{}\nconnect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
                self.https_port,
                self.http_port,
                self.ca_file().display(),
                self.dir.path().join("key.pem").display()
            ),
        )
        .unwrap();
        let tls = Command::new("stunnel4")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel4 (Debian's stunnel4 package, installed by scripts/setup tests)");
        self.tls = Some(tls);
        wait_for_port(self.https_port, "stunnel");
    }

    /// Every object in the bucket: key and bytes, as stored — fetched with boto3 (moto's own
    /// dependency) over the plain port, as anyone holding the bucket's credentials would.
    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let out = tempfile::tempdir().unwrap();
        self.boto(DUMP, out.path());
        let mut objects = Vec::new();
        let mut pending = vec![out.path().to_owned()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let key = path.strip_prefix(out.path()).unwrap().to_string_lossy().into_owned();
                    objects.push((key, std::fs::read(&path).unwrap()));
                }
            }
        }
        objects.sort();
        objects
    }

    /// Runs a boto3 script with moto's Python: argv = endpoint, bucket, `arg`.
    fn boto(&self, script: &str, arg: &Path) {
        let python = self.moto_bin.with_file_name("python");
        let out = Command::new(python)
            .args(["-c", script, &format!("http://127.0.0.1:{}", self.http_port), &self.bucket])
            .arg(arg)
            .output()
            .unwrap();
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Creates the bucket.
const CREATE: &str = "
import sys, boto3
boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test',
             region_name='us-east-1').create_bucket(Bucket=sys.argv[2])
";

/// Writes every object of the bucket under the directory, by key.
const DUMP: &str = "
import os, sys, boto3
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test',
                  region_name='us-east-1')
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2]):
    for item in page.get('Contents', []):
        path = os.path.join(sys.argv[3], item['Key'])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(s3.get_object(Bucket=sys.argv[2], Key=item['Key'])['Body'].read())
";

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.cut();
        let _ = self.moto.kill();
        let _ = self.moto.wait();
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes a passphrase file as an operator would (0600).
pub fn passphrase_file(dir: &Path) -> PathBuf {
    let path = dir.join("offsite.pass");
    std::fs::write(&path, "Zq8vN3xK1pR7tL5wY2cB9mF4hJ6sD0gA\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
