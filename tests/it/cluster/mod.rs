//! High availability: `cluster render` checked by the engines themselves, and a live Patroni
//! cluster in network namespaces failing over under load.

/// The live cluster through a switchover, a killed leader, its return and a cut link.
mod failover;
/// A live cluster: two PostgreSQL + Patroni nodes, three etcd members, HAProxy on a client.
mod live;
/// A writer and a reader through HAProxy, counting what was acknowledged.
mod load;
/// `cluster render`: golden files, secrets, refusals, Patroni's, etcd's, HAProxy's and nft's checks.
mod render;

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
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
