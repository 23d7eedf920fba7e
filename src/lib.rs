//! cabinet-db: AI Cabinet's main application database and the tool that owns it.
//!
//! The binary (`src/main.rs`) only parses arguments and maps outcomes to exit codes; all
//! logic lives here so the integration tests call it directly. See docs/ARCHITECTURE.md.

/// Files replaced whole (exports, secrets): a temporary name, then a rename.
pub(crate) mod atomic_file;
/// `cabinet-db audit`: exposure, privileges and contents, checked.
pub mod audit;
/// Backups and point-in-time recovery on pgBackRest: setup, runs, restores, drills.
pub mod backup;
/// The command line: subcommands, their arguments and their output.
pub mod cli;
/// High availability: the Patroni/etcd cluster's rendered configuration.
pub mod cluster;
/// What differs between PostgreSQL 14 and 18, in one place.
pub mod compat;
/// The host's configuration file: its settings become the options' defaults.
pub mod config;
/// What the data operations share: their error type, pages.
pub mod data;
/// Connections, the server version gate, identifier quoting, constraint messages.
pub mod db;
/// The development database: create, start, migrate, seed, back up, stop.
pub(crate) mod dev;
/// The change history: the actor of our writes, versions and changes read back.
pub mod history;
/// `host apply`: a Debian host brought to the designed state.
pub mod host;
/// hyper's HTTP/1.1 client, one request per connection, for tailscaled's LocalAPI, Patroni's
/// REST API and etcd's health.
pub(crate) mod http_client;
/// Private PostgreSQL clusters (`initdb`, `pg_ctl`): the development database, restored
/// copies and the test harness run on them.
pub mod local_cluster;
/// Metrics of what only cabinet-db knows, in Prometheus' text format.
pub(crate) mod metrics;
/// Versioned migrations and the runner.
pub mod migrations;
/// `Site`, `User` and the declarative schema: the source of truth.
pub mod models;
/// The admin panel (`cabinet-db serve`): tailnet identity, guards, pages.
pub mod panel;
/// Paths as they really are (symlinks resolved), for every guard that keeps data apart.
pub(crate) mod paths;
/// What scheduled commands record of their runs (the audit's verdicts), for the metrics.
pub(crate) mod records;
/// Least-privilege roles: the model, `roles apply`, `roles rotate`, SCRAM verifiers.
pub mod roles;
/// Live database vs models: drift and the SQL that removes it.
pub mod schema_diff;
/// Secrets we are given: their files private to their owner (the caller or root), their text
/// one line of printable ASCII.
pub(crate) mod secret;
/// Sites: get, list, create, update, delete.
pub mod sites;
/// Tailscale: the LocalAPI client and the rendered host configuration.
pub mod tailnet;
/// What only the integration tests and the benchmark use.
pub mod testing;
/// Bulk import and export through COPY.
pub(crate) mod transfer;
/// Users: get, list, delete, activity recording.
pub mod users;
