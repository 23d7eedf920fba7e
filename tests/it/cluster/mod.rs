//! High availability: `cluster render` checked by the engines themselves, and a live Patroni
//! cluster in network namespaces failing over under load.

/// pgBackRest in the live cluster: archiving from the leader, backups from the standby.
mod backups;
/// The live cluster through a switchover, a killed leader, its return and a cut link.
mod failover;
/// `cluster render`: file snapshots, secrets, refusals, Patroni's, etcd's, HAProxy's and nft's checks.
mod render;
