//! The laboratory for tests and benchmarks that need several hosts: network namespaces joined
//! by cables, processes that die with the test, and a live Patroni cluster with its load.
//! Shared with `benches/cabinet` (included by path), so nothing here names the test binary's
//! other modules.

/// A live cluster from `cluster render`'s files: two PostgreSQL + Patroni nodes, three etcd
/// members, HAProxy on a client.
pub mod cluster;
/// A writer and a reader through HAProxy, counting what was acknowledged.
pub mod load;
/// A monitoring host: the real Prometheus and Alertmanager, and a webhook receiver.
pub mod monitoring;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The configuration file the tests' commands read: none (an empty file), so a host's
/// /etc/cabinet-db/cabinet-db.toml (the package test installs one) never changes what they do.
pub const NO_CONFIG: &str = "/dev/null";

/// Runs a command that must succeed.
pub fn sh(args: &[&str]) {
    let out =
        Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(out.status.success(), "{} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A cable: a veth pair with one end (`dev_a`) in namespace `ns_a`, the other in `ns_b`.
pub fn veth(ns_a: &str, dev_a: &str, ns_b: &str, dev_b: &str) {
    sh(&["ip", "link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b]);
}

/// A tailnet cable: the server's end is `tailscale0` with `server_ip`/24 (as tailscaled names
/// it), the clients' end `client_link` with each of `client_ips`/24; both up.
pub fn tailnet_cable(
    server_ns: &str,
    server_ip: &str,
    client_ns: &str,
    client_link: &str,
    client_ips: &[&str],
) {
    veth(server_ns, "tailscale0", client_ns, client_link);
    sh(&["ip", "-n", server_ns, "addr", "add", &format!("{server_ip}/24"), "dev", "tailscale0"]);
    sh(&["ip", "-n", server_ns, "link", "set", "tailscale0", "up"]);
    for ip in client_ips {
        sh(&["ip", "-n", client_ns, "addr", "add", &format!("{ip}/24"), "dev", client_link]);
    }
    sh(&["ip", "-n", client_ns, "link", "set", client_link, "up"]);
}

/// Network namespaces `cdb<pid>-<suffix>` with loopback up, after those of earlier runs that
/// died are swept; fails loudly (never skips) without root or iproute2.
pub fn add_namespaces<const N: usize>(test: &str, suffixes: [&str; N]) -> [String; N] {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{test} needs root for its network namespaces (CI runs as root); run scripts/test as root"
    );
    assert!(
        Command::new("ip").arg("-V").output().is_ok(),
        "`ip` (iproute2) is missing: apt-get install iproute2"
    );
    sweep_leftovers();
    let pid = std::process::id();
    suffixes.map(|suffix| {
        let name = format!("cdb{pid}-{suffix}");
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    })
}

/// Namespaces of earlier runs that died.
fn sweep_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) =
            name.strip_prefix("cdb").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Runs `body` on a thread that has entered network namespace `ns` (namespaces are per thread).
pub fn in_netns<T: Send + 'static>(ns: &str, body: impl AsyncFnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(body())
    })
    .join()
    .expect("the namespace thread panicked")
}

/// Makes `127.0.0.1:port` inside namespace `ns` reach the same port on the test's own
/// loopback (where the fake S3 service or the test PostgreSQL listens), as one service reachable from
/// every host.
pub fn forward_into(ns: &str, port: u16) {
    let listener = in_netns(ns, async move || std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    // Spawned from the test's thread, so connects go out on its loopback.
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { continue };
            splice(client, upstream);
        }
    });
}

/// The other way round: a port on the test's own loopback that reaches `127.0.0.1:port` inside
/// namespace `ns` (where a ChromeDriver on a lab host listens). Returns the local port.
pub fn reach_into(ns: &str, port: u16) -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let local = listener.local_addr().unwrap().port();
    let path = PathBuf::from("/var/run/netns").join(ns);
    // The listener belongs to this host's loopback; the thread that connects onward is in `ns`,
    // and so are the sockets it makes.
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        for client in listener.incoming().flatten() {
            let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { continue };
            splice(client, upstream);
        }
    });
    local
}

/// Copies both ways between two connections until each side is done.
fn splice(client: std::net::TcpStream, upstream: std::net::TcpStream) {
    // Small requests must not wait for delayed ACKs (40 ms each, thousands of them).
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (client_back, upstream_back) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut &client, &mut &upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut &upstream_back, &mut &client_back);
        let _ = client_back.shutdown(std::net::Shutdown::Write);
    });
}

/// Like [`forward_into`], but stoppable: [`Forwarder::stop`] closes the port in `ns` (connects
/// are refused) and cuts every connection it forwarded — the database is gone for whoever is
/// there — and starting one again on the same port brings it back.
pub struct Forwarder {
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    streams: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(ns: &str, port: u16) -> Forwarder {
        use std::sync::atomic::Ordering;
        let listener = in_netns(ns, async move || {
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            // Polled, so that `stop` ends the accepting thread (and closes the port) at once.
            listener.set_nonblocking(true).unwrap();
            listener
        });
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, held) = (stopped.clone(), streams.clone());
        // Spawned from the test's thread, so connects go out on its loopback.
        let accepting = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                };
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { continue };
                let _ = client.set_nonblocking(false);
                let mut held = held.lock().unwrap();
                held.extend([client.try_clone(), upstream.try_clone()].into_iter().flatten());
                splice(client, upstream);
            }
        });
        Forwarder { stopped, streams, accepting: Some(accepting) }
    }

    /// Closes the port and cuts every forwarded connection; returns once the port is closed.
    pub fn stop(&mut self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process killed (and reaped) when the test ends, also on failure.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes network namespaces when the test ends, also on failure.
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Where scripts/setup tests installs the tools the tests use (moto, Patroni's virtualenv).
pub fn tools_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/cache/cabinet-db")
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
            .join("cabinet-db")
    }
}

/// The command lines of running processes that name `path` (a test's directory), waiting up
/// to five seconds for killed ones to go: what a finished test left behind.
pub fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_owned())
            .filter(|command| command.contains(&needle))
            .collect();
        if found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
