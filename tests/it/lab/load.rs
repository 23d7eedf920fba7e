//! The load a failover must survive, from the client host through HAProxy: a writer on the
//! leader frontend that records every acknowledged insert, and an n8n-like reader on the
//! any-member frontend that records its longest gap between two answered reads.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use sqlx::{ConnectOptions, postgres::PgConnectOptions};

use super::in_netns;

/// HAProxy's frontends on the client host (the rendered haproxy.cfg).
pub const LEADER_PORT: u16 = 5432;
pub const ANY_MEMBER_PORT: u16 = 5433;

pub fn options(port: u16, role: &str, password: &str) -> PgConnectOptions {
    PgConnectOptions::new().host("127.0.0.1").port(port).username(role).password(password).database("cabinet")
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    acked: Mutex<BTreeSet<u64>>,
    unknown: Mutex<BTreeSet<u64>>,
    /// When the fault was injected, and the first write begun after it that went through.
    fault_at: Mutex<Option<Instant>>,
    first_ack_after_fault: Mutex<Option<Instant>>,
    longest_read_gap: Mutex<Duration>,
}

pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What a finished load saw.
pub struct Seen {
    pub acked: BTreeSet<u64>,
    /// Writes whose acknowledgement was lost (the commit may or may not have happened).
    pub unknown: BTreeSet<u64>,
    pub longest_read_gap: Duration,
}

impl Load {
    /// Starts, from `namespace`, writing `sites` rows `<prefix><n>` through `writer` and, when
    /// given, reading `sites` through `reader`.
    pub fn start(
        namespace: &str,
        prefix: &str,
        writer: PgConnectOptions,
        reader: Option<PgConnectOptions>,
    ) -> Load {
        let shared = Arc::new(Shared::default());
        let mut threads = vec![];
        let (ns, shared_w, prefix_w) = (namespace.to_owned(), shared.clone(), prefix.to_owned());
        threads.push(std::thread::spawn(move || {
            in_netns(&ns, async move || write(&shared_w, &writer, &prefix_w).await)
        }));
        if let Some(reader) = reader {
            let (ns, shared_r) = (namespace.to_owned(), shared.clone());
            threads.push(std::thread::spawn(move || {
                in_netns(&ns, async move || read(&shared_r, &reader).await)
            }));
        }
        Load { shared, threads }
    }

    pub fn acked(&self) -> usize {
        self.shared.acked.lock().unwrap().len()
    }

    /// Waits until `more` further writes are acknowledged.
    pub async fn flows(&self, more: usize, limit: Duration, what: &str) {
        let target = self.acked() + more;
        let deadline = Instant::now() + limit;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {target} writes acknowledged in {limit:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// From now on, the first write begun after this instant that goes through is timed.
    pub fn fault(&self) -> Instant {
        let now = Instant::now();
        *self.shared.fault_at.lock().unwrap() = Some(now);
        now
    }

    /// The time from the fault to the first acknowledged write begun after it.
    pub async fn recovered(&self, limit: Duration, diagnose: impl AsyncFnOnce() -> String) -> Duration {
        let fault = self.shared.fault_at.lock().unwrap().expect("fault() first");
        let deadline = fault + limit;
        loop {
            if let Some(first) = *self.shared.first_ack_after_fault.lock().unwrap() {
                return first - fault;
            }
            if Instant::now() > deadline {
                panic!("no write went through within {limit:?} of the fault: {}", diagnose().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn finish(self) -> Seen {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        Seen {
            acked: self.shared.acked.lock().unwrap().clone(),
            unknown: self.shared.unknown.lock().unwrap().clone(),
            longest_read_gap: *self.shared.longest_read_gap.lock().unwrap(),
        }
    }
}

async fn write(shared: &Shared, options: &PgConnectOptions, prefix: &str) {
    let mut n = 0u64;
    let mut conn = None;
    while !shared.stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = options.connect().await.ok();
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        n += 1;
        let started = Instant::now();
        let result = sqlx::query("INSERT INTO sites (site_id, domain) VALUES ($1, $2)")
            .bind(format!("{prefix}{n}"))
            .bind(format!("{prefix}{n}.example.com"))
            .execute(conn.as_mut().unwrap())
            .await;
        match result {
            Ok(_) => {
                shared.acked.lock().unwrap().insert(n);
                if shared.fault_at.lock().unwrap().is_some_and(|fault| started > fault) {
                    shared.first_ack_after_fault.lock().unwrap().get_or_insert_with(Instant::now);
                }
            }
            // The acknowledgement may have been lost, not the commit: unknown.
            Err(_) => {
                shared.unknown.lock().unwrap().insert(n);
                conn = None;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn read(shared: &Shared, options: &PgConnectOptions) {
    let mut last_ok = Instant::now();
    let mut conn = None;
    while !shared.stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = options.connect().await.ok();
        }
        let ok = match conn.as_mut() {
            Some(c) => sqlx::query("SELECT site_id, domain FROM sites LIMIT 1").fetch_all(c).await.is_ok(),
            None => false,
        };
        if ok {
            let mut gap = shared.longest_read_gap.lock().unwrap();
            *gap = (*gap).max(last_ok.elapsed());
            last_ok = Instant::now();
        } else {
            conn = None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The numbers of the rows `<prefix><n>` present, read through `options`.
pub async fn present(options: &PgConnectOptions, prefix: &str) -> BTreeSet<u64> {
    let mut conn = options.connect().await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT site_id FROM sites WHERE starts_with(site_id, $1)")
        .bind(prefix)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    ids.iter().filter_map(|id| id[prefix.len()..].parse().ok()).collect()
}

/// Every acknowledged write is among `present`; unknown ones may be either way.
pub fn assert_nothing_acknowledged_lost(what: &str, seen: &Seen, present: &BTreeSet<u64>) {
    let lost: Vec<&u64> = seen.acked.difference(present).collect();
    assert!(lost.is_empty(), "{what}: {} acknowledged commits lost: {lost:?}", lost.len());
    eprintln!("{what}: {} acknowledged, {} unknown, 0 lost", seen.acked.len(), seen.unknown.len());
}
