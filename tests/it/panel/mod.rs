//! The admin panel (`cabinet-db serve`), driven over HTTP as browsers and attackers would.

/// The panel in headless Chromium on loopback: pages, htmx, a phone, markup in the data.
mod browser;
/// Chromium and ChromeDriver, on this host or on a lab host.
mod chromium;
/// The panel as operators open it: by its MagicDNS name from a laptop namespace, plain HTTP and
/// HTTPS, in Chromium; forged forms from a third origin.
mod deployed;
/// No edit lost or rewritten: one-field saves, merges, deleted meanwhile, leaving unsaved.
mod edits;
/// Pages as an editor and a viewer use them (development identity, loopback).
mod pages;
/// A renewed TLS certificate served without a restart (development identity, loopback).
mod renewal;
/// A flooding peer and a dead or busy database: peers in namespaces, PostgreSQL behind a
/// forwarder that stops.
mod robust;
/// The security battery: peers on tailnet addresses in network namespaces, whois per peer.
mod security;

use std::{
    net::{IpAddr, SocketAddr},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cabinet_db::db::DatabaseUrl;

use crate::harness::binary;

/// A running `cabinet-db serve`, killed when dropped; its stderr (the request log) is kept.
pub struct PanelProcess {
    child: Child,
    pub addr: SocketAddr,
    pub log: tempfile::NamedTempFile,
}

impl Drop for PanelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PanelProcess {
    /// The panel on a free loopback port, trusting every request as `identity` (LOGIN=ROLE).
    pub async fn dev(url: &DatabaseUrl, identity: &str) -> PanelProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = binary();
        command.env("DATABASE_URL", url.expose()).args([
            "serve",
            "--dev-identity",
            identity,
            "--listen",
            &addr.to_string(),
        ]);
        Self::spawn(command, addr, None).await
    }

    /// Starts `command` (a `serve`) and waits until it answers /healthz, from namespace `ns`
    /// when given.
    pub async fn spawn(command: Command, addr: SocketAddr, ns: Option<&str>) -> PanelProcess {
        let ns = ns.map(str::to_owned);
        Self::spawn_until(command, addr, move || {
            let ready = match &ns {
                None => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(get(addr, "/healthz"))
                    .ok(),
                Some(ns) => crate::lab::in_netns(ns, async move || get(addr, "/healthz").await.ok()),
            };
            ready.is_some_and(|r| r.status == 200)
        })
        .await
    }

    /// Starts `command` (a `serve`) and waits until `ready` says so (e.g. a TLS port accepts).
    pub async fn spawn_until(
        mut command: Command,
        addr: SocketAddr,
        ready: impl Fn() -> bool + Send + Sync + 'static,
    ) -> PanelProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child =
            command.stdout(Stdio::null()).stderr(log.reopen().unwrap()).spawn().expect("cabinet-db serve");
        let mut panel = PanelProcess { child, addr, log };
        let ready = std::sync::Arc::new(ready);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = ready.clone();
            if tokio::task::spawn_blocking(move || probe()).await.unwrap() {
                return panel;
            }
            if let Some(status) = panel.child.try_wait().unwrap() {
                panic!("cabinet-db serve exited with {status}: {}", panel.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "cabinet-db serve did not answer in 20 s: {}",
                panel.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Stops it with SIGTERM and returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.child.wait().unwrap()
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request as a browser on the panel's own page would send it (same-origin).
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// `Host`; the panel's address when `None`.
    pub host: Option<&'a str>,
    pub headers: Vec<(&'a str, String)>,
    /// `application/x-www-form-urlencoded` pairs.
    pub form: Option<Vec<(&'a str, &'a str)>>,
    /// A body of another type: (content type, body).
    pub raw: Option<(String, String)>,
    /// Source address to connect from (a peer of the tailnet).
    pub from: Option<IpAddr>,
}

impl<'a> Request<'a> {
    pub fn get(path: &'a str) -> Self {
        Request { method: "GET", path, host: None, headers: vec![], form: None, raw: None, from: None }
    }

    /// A POST of a form from the panel's own page.
    pub fn post(path: &'a str, form: Vec<(&'a str, &'a str)>) -> Self {
        Request {
            method: "POST",
            path,
            host: None,
            headers: vec![("Sec-Fetch-Site", "same-origin".to_owned())],
            form: Some(form),
            raw: None,
            from: None,
        }
    }

    /// A same-origin request with a body of its own type (a multipart upload).
    pub fn raw(method: &'a str, path: &'a str, content_type: &str, body: String) -> Self {
        Request {
            method,
            path,
            host: None,
            headers: vec![("Sec-Fetch-Site", "same-origin".to_owned())],
            form: None,
            raw: Some((content_type.to_owned(), body)),
            from: None,
        }
    }

    pub fn header(mut self, name: &'a str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn from(mut self, ip: IpAddr) -> Self {
        self.from = Some(ip);
        self
    }

    pub fn host(mut self, host: &'a str) -> Self {
        self.host = Some(host);
        self
    }

    pub async fn send(&self, addr: SocketAddr) -> std::io::Result<Response> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket =
            if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        if let Some(ip) = self.from {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let mut stream = socket.connect(addr).await?;
        let body = match (&self.form, &self.raw) {
            (Some(pairs), _) => form_encode(pairs),
            (None, Some((_, body))) => body.clone(),
            (None, None) => String::new(),
        };
        let host = self.host.map(str::to_owned).unwrap_or_else(|| addr.to_string());
        let mut head =
            format!("{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.form.is_some() {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        if let Some((content_type, _)) = &self.raw {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
        Ok(parse_response(&raw))
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    Request::get(path).send(addr).await
}

pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}
