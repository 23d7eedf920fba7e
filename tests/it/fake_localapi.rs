//! A stand-in for tailscaled's LocalAPI: recorded JSON of the documented shapes, served on a
//! unix socket of the test's own, with tailscaled's Host-header rule.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, SocketAddr},
    os::unix::net::UnixListener,
    path::{Path, PathBuf},
};

pub struct FakeLocalApi {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/localapi").join(name))
        .unwrap()
}

impl FakeLocalApi {
    /// Serves `status` and `serve-config` from the named fixtures until the test ends.
    pub fn start(status_fixture: &str, serve_fixture: &str) -> FakeLocalApi {
        Self::serve(fixture(status_fixture), fixture(serve_fixture), HashMap::new())
    }

    /// Also answers `whois?addr=IP:PORT` for each peer address given (JSON), 404 for others.
    pub fn with_whois(status_fixture: &str, peers: HashMap<IpAddr, String>) -> FakeLocalApi {
        Self::serve(fixture(status_fixture), "{}".to_owned(), peers)
    }

    fn serve(status: String, serve: String, peers: HashMap<IpAddr, String>) -> FakeLocalApi {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tailscaled.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut host_ok = false;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    host_ok |= lower.trim_end() == "host: local-tailscaled.sock";
                    if lower.starts_with("origin:") || lower.starts_with("referer:") {
                        host_ok = false;
                    }
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (code, body) = match path {
                    _ if !host_ok => ("403 Forbidden", "invalid localapi request\n".to_owned()),
                    p if p.starts_with("/localapi/v0/status") => ("200 OK", status.clone()),
                    "/localapi/v0/serve-config" => ("200 OK", serve.clone()),
                    p if p.starts_with("/localapi/v0/whois?addr=") => {
                        let addr = &p["/localapi/v0/whois?addr=".len()..];
                        match addr.parse::<SocketAddr>().ok().and_then(|a| peers.get(&a.ip())) {
                            Some(answer) => ("200 OK", answer.clone()),
                            None => ("404 Not Found", format!("no match for IP:port {addr}\n")),
                        }
                    }
                    _ => ("404 Not Found", "404 page not found\n".to_owned()),
                };
                // Chunked, as Go's net/http sends a streamed JSON body.
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
            }
        });
        FakeLocalApi { _dir: dir, socket }
    }
}
