//! How many connections the panel holds open, per peer address and in total, so that one
//! tailnet peer (a compromised laptop, a script gone wrong, a deliberate flood of half-open
//! connections) can never take the slots every other peer needs.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

/// Connections one peer address may hold at once, TLS handshakes included. A browser opens at
/// most six per origin (and a few more for a second tab or name); 64 leaves room for several
/// people behind one address (a subnet router) while a flood from one address stays small.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;

/// Connections in total. Each is one file descriptor: 512 stays far below the packaged unit's
/// `LimitNOFILE=8192` and below even the 1,024 a unit gets by default, leaving room for the
/// database pool, tailscaled's socket and the files the pages read. Eight flooding peers fill it
/// (then everyone waits for the header-read timeout to free slots); that is a tailnet with
/// bigger problems than the panel.
pub(crate) const MAX_CONNECTIONS: usize = 512;

/// A refusal is logged at most this often per peer (and for the total), with the number refused
/// since: a flood must not become a flood of log lines.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Past this many peers remembered for the log's interval, the stale ones are forgotten (the
/// memory a flood from many addresses can cost stays bounded).
const MAX_REMEMBERED_REFUSALS: usize = 1024;

/// The counts of open connections, shared by every listener.
#[derive(Debug)]
pub(crate) struct Limits {
    per_peer: usize,
    total: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    open: HashMap<IpAddr, usize>,
    total: usize,
    /// When a refusal was last logged and how many since, per peer or for the total.
    refusals: HashMap<Bucket, Refusals>,
}

/// Whose refusals one log line counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Peer(IpAddr),
    Total,
    /// Peers beyond [`MAX_REMEMBERED_REFUSALS`], counted together.
    OtherPeers,
}

#[derive(Debug)]
struct Refusals {
    logged_at: Instant,
    since: u64,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    pub(crate) fn new(per_peer: usize, total: usize) -> Arc<Limits> {
        Arc::new(Limits { per_peer, total, state: Mutex::new(State::default()) })
    }

    /// A slot for a new connection from `ip`, or `None` when that peer (or everyone together)
    /// holds the most allowed already: the caller closes the connection at once.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d; it is the same peer.
        let ip = ip.to_canonical();
        let mut state = self.lock();
        let open = state.open.get(&ip).copied().unwrap_or(0);
        let refused = if state.total >= self.total {
            Some(Bucket::Total)
        } else if open >= self.per_peer {
            Some(Bucket::Peer(ip))
        } else {
            None
        };
        match refused {
            None => {
                state.total += 1;
                *state.open.entry(ip).or_insert(0) += 1;
                Some(Slot { limits: self.clone(), ip })
            }
            Some(key) => {
                self.note_refusal(&mut state, key);
                None
            }
        }
    }

    fn note_refusal(&self, state: &mut State, mut key: Bucket) {
        let now = Instant::now();
        if !state.refusals.contains_key(&key) && state.refusals.len() >= MAX_REMEMBERED_REFUSALS {
            state.refusals.retain(|_, r| now.duration_since(r.logged_at) < REFUSAL_LOG_INTERVAL);
            if state.refusals.len() >= MAX_REMEMBERED_REFUSALS {
                key = Bucket::OtherPeers;
            }
        }
        let due = match state.refusals.get_mut(&key) {
            Some(refusals) if now.duration_since(refusals.logged_at) < REFUSAL_LOG_INTERVAL => {
                refusals.since += 1;
                None
            }
            Some(refusals) => {
                let since = refusals.since;
                *refusals = Refusals { logged_at: now, since: 0 };
                Some(since)
            }
            None => {
                state.refusals.insert(key, Refusals { logged_at: now, since: 0 });
                Some(0)
            }
        };
        // `refused` counts this connection and those refused since the previous line.
        let Some(earlier) = due else { return };
        match key {
            Bucket::Peer(peer) => tracing::warn!(
                %peer,
                limit = self.per_peer,
                refused = earlier + 1,
                "a peer holds the most connections one address may; closing its new ones (logged once a minute)"
            ),
            Bucket::OtherPeers => tracing::warn!(
                limit = self.per_peer,
                refused = earlier + 1,
                "many more peers hold the most connections one address may; closing their new ones (logged once a minute)"
            ),
            Bucket::Total => tracing::warn!(
                limit = self.total,
                refused = earlier + 1,
                "the panel holds the most connections it allows; closing new ones until some end (logged once a minute)"
            ),
        }
    }

    /// The counts stay usable even if a thread panicked while holding the lock: they are plain
    /// numbers, updated in one step each.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.limits.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(open) = state.open.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                state.open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_at_its_limit_is_refused_while_another_is_admitted() {
        let limits = Limits::new(2, 10);
        let held: Vec<Slot> = (0..2).map(|_| limits.admit(ip("100.64.0.1")).unwrap()).collect();
        assert!(limits.admit(ip("100.64.0.1")).is_none());
        // The same peer as an IPv4-mapped IPv6 address is the same peer.
        assert!(limits.admit(ip("::ffff:100.64.0.1")).is_none());
        assert!(limits.admit(ip("100.64.0.2")).is_some());
        drop(held);
        assert_eq!(limits.open(), 0, "every slot is freed when its connection ends");
        assert!(limits.admit(ip("100.64.0.1")).is_some());
    }

    #[test]
    fn the_total_limit_holds_across_peers() {
        let limits = Limits::new(5, 3);
        let _held: Vec<Slot> =
            ["100.64.0.1", "100.64.0.2", "100.64.0.3"].iter().map(|a| limits.admit(ip(a)).unwrap()).collect();
        assert!(limits.admit(ip("100.64.0.4")).is_none());
        assert_eq!(limits.open(), 3);
    }

    #[test]
    fn refusals_are_remembered_for_a_bounded_number_of_peers() {
        let limits = Limits::new(0, 10);
        for n in 0..(MAX_REMEMBERED_REFUSALS as u32 + 10) {
            assert!(limits.admit(IpAddr::from(n.to_be_bytes())).is_none());
        }
        let refusals = &limits.lock().refusals;
        assert!(refusals.len() <= MAX_REMEMBERED_REFUSALS + 1, "{}", refusals.len());
        assert_eq!(refusals[&Bucket::OtherPeers].since, 9, "the peers beyond the bound are counted together");
    }
}
