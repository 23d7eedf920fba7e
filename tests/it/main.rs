//! Integration tests: one binary, one PostgreSQL cluster per run (see `harness`), one fresh
//! database per test.

/// Escalation paths seeded on a cluster of their own: the audit names each, roles apply closes it.
mod adversarial;
/// One definition of valid: generated values judged by cabinet-db and by the constraints.
mod agreement;
/// `cabinet-db audit`: a clean setup passes, each misconfiguration fails.
mod audit;
/// Backups and restores with the real pgBackRest, on clusters of their own.
mod backup;
/// `migrate baseline`, plain and from an Alembic-built database.
mod baseline;
/// High availability: rendered configuration checked by the engines, a live cluster failing over.
mod cluster;
/// The configuration file read by the real binary: precedence, `config show`, bad files.
mod config;
/// The database rejects bad rows whoever writes them.
mod constraints;
/// A TCP proxy that cuts the connection right after a COMMIT.
mod cutting_proxy;
/// `sites …` and `users …` commands as an operator uses them.
mod data_cli;
/// `cabinet-db dev up / status / down`.
mod dev;
/// `migrate check` and `migrate diff` against seeded drift.
mod drift;
/// A stand-in tailscaled LocalAPI on a unix socket.
mod fake_localapi;
/// The shared test cluster and per-test databases.
mod harness;
/// The change history: every writer recorded, append-only, drift when disabled.
mod history;
/// Import and export: round trips and bad input.
mod import;
/// Imports into tables with rows: partial lines, database-found problems, concurrency, COMMIT.
mod import_merge;
/// Several hosts in network namespaces, processes, a live Patroni cluster (shared with the benchmarks).
mod lab;
/// The runner: up/down/targets, checksums, order, the lock, retries, crashes.
mod migrate;
/// Tailnet-only exposure proven in network namespaces (root).
mod netns;
/// Offline commands: `sql`, `history`, `new`, `lint`.
mod offline;
/// The Debian package (root): contents, lintian, install, remove, purge; completions and man pages.
mod packaging;
/// The admin panel over HTTP: identity, guards, pages.
mod panel;
/// The exported models.py with the real SQLAlchemy and Alembic: no difference, the ORM, constraint names.
mod python;
/// Hostile values and interruptions: infinite times, closed pipes, kill -9, escapes.
mod robustness;
/// The least-privilege roles, tried by connecting as each.
mod roles;
/// PostgreSQL older than 14 is refused.
mod server_version;
/// The sites library API.
mod sites;
/// `tailnet status` and `tailnet render`.
mod tailnet;
/// Users and activity recording.
mod users;
