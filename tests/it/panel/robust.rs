//! The panel under a hostile tailnet peer and a dead database: `cabinet-db serve` in namespace
//! "r…s" on 100.101.102.103 (as `tailscale0`, with the 1,024 file descriptors of a unit without
//! `LimitNOFILE`), two peers in "r…c" — one flooding, one a person — and PostgreSQL behind a
//! forwarder that can be stopped.

use std::{
    collections::HashMap,
    io::{ErrorKind, Read},
    net::{IpAddr, SocketAddr},
    process::Command,
    time::{Duration, Instant},
};

use cabinet_db::{
    db::DatabaseUrl,
    panel::{
        readiness::READY_REUSE,
        server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS_PER_PEER},
    },
    roles::RoleKind,
};
use sqlx::Connection;

use super::{PanelProcess, Request, Response};
use crate::{
    fake_localapi::FakeLocalApi,
    harness::WithRoles,
    lab::{Cleanup, Forwarder, add_namespaces, in_netns, tailnet_cable},
};

const SERVER_IP: &str = "100.101.102.103";
const PORT: u16 = 8432;
const CAP: &str = "ai-cabinet.internal/cap/cabinet-db";
/// The peer that floods and the person who wants a page.
const FLOODER: &str = "100.101.102.20";
const PERSON: &str = "100.101.102.21";

/// The panel's host and its two peers, removed when the test ends.
struct Lab {
    ns_server: String,
    ns_client: String,
    addr: SocketAddr,
    tailscaled: FakeLocalApi,
    _cleanup: Cleanup,
}

impl Lab {
    /// `tag` (two letters) keeps each test's namespaces and links apart.
    fn new(test: &str, tag: &str) -> Lab {
        let [ns_server, ns_client] = add_namespaces(test, [&format!("{tag}s"), &format!("{tag}c")]);
        let cleanup = Cleanup(vec![ns_server.clone(), ns_client.clone()]);
        let client_link = format!("{tag}{}", std::process::id());
        tailnet_cable(&ns_server, SERVER_IP, &ns_client, &client_link, &[FLOODER, PERSON]);
        let mut whois = HashMap::new();
        for (ip, login) in [(FLOODER, "mallory@example.com"), (PERSON, "alice@example.com")] {
            whois.insert(
                ip.parse().unwrap(),
                format!(
                    r#"{{"Node":{{"Name":"laptop.tail1234.ts.net.","Tags":[]}},"UserProfile":{{"ID":1,"LoginName":"{login}","DisplayName":"{login}"}},"CapMap":{{"{CAP}":[{{"role":"viewer"}}]}}}}"#
                ),
            );
        }
        let tailscaled = FakeLocalApi::with_whois("status-running.json", whois);
        let addr = format!("{SERVER_IP}:{PORT}").parse().unwrap();
        Lab { ns_server, ns_client, addr, tailscaled, _cleanup: cleanup }
    }

    /// `cabinet-db serve` on the tailnet address, with a unit's default of 1,024 file
    /// descriptors, answering /healthz.
    async fn serve(&self, url: &DatabaseUrl, extra: &[&str]) -> PanelProcess {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns_server, "sh", "-c", "ulimit -n 1024 && exec \"$0\" \"$@\""])
            .args([env!("CARGO_BIN_EXE_cabinet-db"), "serve"])
            .args(["--socket", self.tailscaled.socket.to_str().unwrap(), "--listen", &self.addr.to_string()])
            .args(extra)
            .env("DATABASE_URL", url.expose())
            .env("CABINET_CONFIG", crate::harness::NO_CONFIG);
        PanelProcess::spawn(command, self.addr, Some(&self.ns_client)).await
    }

    /// Sends `request` from `from`; the answer and how long it took, or why there was none
    /// within `patience`.
    fn send(
        &self,
        from: &str,
        request: Request<'static>,
        patience: Duration,
    ) -> (Result<Response, String>, Duration) {
        let (addr, from) = (self.addr, from.parse::<IpAddr>().unwrap());
        in_netns(&self.ns_client, async move || {
            let started = Instant::now();
            let answer = match tokio::time::timeout(patience, request.from(from).send(addr)).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {patience:?}")),
            };
            (answer, started.elapsed())
        })
    }
}

/// This process may open the flood's sockets (a soft limit of 1,024 would not do).
fn raise_own_file_limit(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard).unwrap();
    }
}

/// Whether the server has closed `stream` (end of file or reset), without waiting.
fn closed_by_server(mut stream: &std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

#[tokio::test]
async fn half_open_connections_from_one_peer_neither_lock_out_another_nor_stay_open() {
    // Arrange: the panel, and 1,100 connections from one peer that send half a request header
    // and wait — more than the 1,024 descriptors the panel's process has.
    const FLOOD: usize = 1_100;
    raise_own_file_limit(4_096);
    let setup = WithRoles::new().await;
    let url = setup.url_as(RoleKind::Admin);
    let lab = Lab::new("the panel flood test", "ra");
    let _db = Forwarder::start(&lab.ns_server, url.connect_options().unwrap().get_port());
    let panel = lab.serve(&url, &[]).await;
    let (addr, flooder) = (lab.addr, FLOODER.parse::<IpAddr>().unwrap());
    let flood: Vec<std::net::TcpStream> = in_netns(&lab.ns_client, async move || {
        use tokio::io::AsyncWriteExt;
        let mut held = Vec::new();
        for _ in 0..FLOOD {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(flooder, 0)).unwrap();
            let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(1), socket.connect(addr)).await
            else {
                continue;
            };
            // A connection the server closed at once may refuse the write; it is kept all the
            // same (and counts as closed below).
            let _ = stream.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes()).await;
            held.push(stream.into_std().unwrap());
        }
        held
    });
    let flooded_at = Instant::now();
    assert!(flood.len() > MAX_CONNECTIONS_PER_PEER, "only {} connections were made", flood.len());

    // Act and assert: the other peer gets its page promptly …
    for path in ["/healthz", "/sites"] {
        let (answer, took) = lab.send(PERSON, Request::get(path), Duration::from_secs(5));
        let response =
            answer.unwrap_or_else(|e| panic!("{path} during the flood: {e}\n{}", panel.log_text()));
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert!(took < Duration::from_secs(2), "{path} took {took:?} during the flood");
    }

    // … because the flooder keeps no more than its share of connections.
    let deadline = Instant::now() + Duration::from_secs(3);
    let open = loop {
        let open = flood.iter().filter(|s| !closed_by_server(s)).count();
        if open <= MAX_CONNECTIONS_PER_PEER || Instant::now() > deadline {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(open, MAX_CONNECTIONS_PER_PEER, "the connections the flooding peer still holds");

    // After the header-read timeout, the server has closed every half-open connection.
    let deadline = flooded_at + HEADER_READ_TIMEOUT + Duration::from_secs(3);
    loop {
        let open = flood.iter().filter(|s| !closed_by_server(s)).count();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} half-open connections still open {:?} after the flood",
            flooded_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The refusals were logged once, not once per connection.
    let log = panel.log_text();
    let refusals = log.lines().filter(|l| l.contains("closing its new ones")).count();
    assert_eq!(refusals, 1, "{log}");
}

#[tokio::test]
async fn with_the_database_gone_readyz_and_pages_say_so_within_seconds() {
    // Arrange: the panel, its database behind a forwarder in the panel's namespace.
    let setup = WithRoles::new().await;
    let url = setup.url_as(RoleKind::Admin);
    let pg_port = url.connect_options().unwrap().get_port();
    let lab = Lab::new("the panel database test", "rb");
    let mut database = Forwarder::start(&lab.ns_server, pg_port);
    let panel = lab.serve(&url, &[]).await;
    let get = |path: &'static str| {
        let (answer, took) = lab.send(PERSON, Request::get(path), Duration::from_secs(15));
        (answer.unwrap_or_else(|e| panic!("{path}: {e}\n{}", panel.log_text())), took)
    };
    let (ready, _) = get("/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

    // Act: the database goes away (the port closed, every connection cut); the verdict from
    // before is no longer anyone's answer.
    database.stop();
    tokio::time::sleep(READY_REUSE).await;

    // Assert: /readyz says so within 2.5 s, /healthz still says the process is alive, and a
    // signed-in page says the database is unreachable within 3.5 s instead of hanging.
    let (ready, took) = get("/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (503, "the database is unreachable\n"));
    assert!(took < Duration::from_millis(2_500), "/readyz took {took:?}");
    let (health, _) = get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!(health.header("cache-control"), Some("no-store"));
    for path in ["/sites", "/"] {
        let (page, took) = get(path);
        assert_eq!(page.status, 503, "{path}: {}", page.body);
        assert!(page.body.contains("the database is unreachable"), "{path}: {}", page.body);
        assert!(took < Duration::from_millis(3_500), "{path} took {took:?}");
        assert!(!page.body.contains(url.expose()), "no URL with its password on the page");
    }

    // With the database back, /readyz and the pages answer again.
    let _database = Forwarder::start(&lab.ns_server, pg_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ready, _) = get("/readyz");
        if ready.status == 200 {
            assert_eq!(ready.body, "ready\n");
            break;
        }
        assert!(Instant::now() < deadline, "not ready 10 s after the database came back: {}", ready.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get("/sites").0.status, 200);
    let log = panel.log_text();
    assert!(!log.contains(url.expose()), "no URL with its password in the log");
    // Each change of state is logged once, whichever request saw it.
    let down = log.matches("the database is unreachable: pages answer 503").count();
    assert_eq!((down, log.matches("the database answers again").count()), (1, 1), "{log}");
}

#[tokio::test]
async fn a_pool_whose_connections_are_all_busy_is_called_busy_not_unreachable() {
    // Arrange: a panel with one pooled connection, held by a page that waits on a lock.
    let setup = WithRoles::new().await;
    let url = setup.url_as(RoleKind::Admin);
    let lab = Lab::new("the panel busy pool test", "rc");
    let _database = Forwarder::start(&lab.ns_server, url.connect_options().unwrap().get_port());
    let mut panel = lab.serve(&url, &["--pool-size", "1"]).await;
    let mut locker = setup.conn(RoleKind::Admin).await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE sites IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let (ns, addr, person) = (lab.ns_client.clone(), lab.addr, PERSON.parse::<IpAddr>().unwrap());
    let waiting = std::thread::spawn(move || {
        in_netns(&ns, async move || Request::get("/sites").from(person).send(addr).await.unwrap())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waits: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = 'cabinet-db serve' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut locker)
        .await
        .unwrap();
        if waits == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the page never waited on the lock: {}", panel.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Act and assert: /readyz and another page say the connections are busy — the database
    // itself answers.
    let (ready, took) = lab.send(FLOODER, Request::get("/readyz"), Duration::from_secs(15));
    let ready = ready.unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (503, "every database connection is busy\n"));
    assert!(took < Duration::from_millis(2_500), "/readyz took {took:?}");
    let (page, took) = lab.send(FLOODER, Request::get("/users"), Duration::from_secs(15));
    let page = page.unwrap();
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("every database connection is busy"), "{}", page.body);
    assert!(!page.body.contains("unreachable"), "{}", page.body);
    assert!(took < Duration::from_millis(3_500), "/users took {took:?}");

    // SIGTERM while that page still waits: the panel takes no new connection but lets the
    // request in flight finish once the lock is gone, then exits cleanly.
    let pid = nix::unistd::Pid::from_raw(panel.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(panel.child.try_wait().unwrap().is_none(), "it waits for the request in flight");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let served = waiting.join().unwrap();
    assert_eq!(served.status, 200, "{}", served.body);
    let status = panel.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", panel.log_text());
    locker.close().await.unwrap();
}
