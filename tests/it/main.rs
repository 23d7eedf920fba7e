//! Integration tests: one binary, one PostgreSQL cluster per run (see `harness`), one fresh
//! database per test.
//!
//! The version matrix: every test runs on the machine's PostgreSQL; the tests under
//! `every_server` — those whose outcome can depend on the server's version — run again on each
//! other supported major (`scripts/test-matrix` selects them by that module's name). Each module
//! outside it says in a `/// Once:` line why one server is enough; the `matrix` test fails for
//! any test whose module does not.

// A test binary has no public API: its modules' `pub` items are for each other.
#![allow(unreachable_pub)]

/// Tests whose outcome can depend on the server's version: its catalog and how it prints
/// definitions, PL/pgSQL and transition tables, privileges and roles, `COPY`, initdb, and
/// pgBackRest's support for the version.
mod every_server {
    /// Escalation paths seeded on a cluster of their own: the audit names each, roles apply closes it.
    pub mod adversarial;
    /// One definition of valid: generated values judged by cabinet-db and by the constraints.
    pub mod agreement;
    /// `cabinet-db audit`: a clean setup passes, each misconfiguration fails.
    pub mod audit;
    /// Restores with the real pgBackRest, on each server it can read (and its refusal on the others).
    pub mod backup;
    /// `migrate baseline`, plain and from an Alembic-built database.
    pub mod baseline;
    /// The database rejects bad rows whoever writes them.
    pub mod constraints;
    /// `sites …` and `users …` commands as an operator uses them.
    pub mod data_cli;
    /// `cabinet-db dev up / status / down`.
    pub mod dev;
    /// `migrate check` and `migrate diff` against seeded drift.
    pub mod drift;
    /// The change history: every writer recorded, append-only, drift when disabled.
    pub mod history;
    /// Import and export: round trips and bad input.
    pub mod import;
    /// Imports into tables with rows: partial lines, database-found problems, concurrency, COMMIT.
    pub mod import_merge;
    /// The runner: up/down/targets, checksums, order, the lock, retries, crashes.
    pub mod migrate;
    /// The exported models.py with the real SQLAlchemy and Alembic: no difference, the ORM, constraint names.
    pub mod python;
    /// Hostile values and interruptions: infinite times, closed pipes, kill -9, escapes.
    pub mod robustness;
    /// The least-privilege roles, tried by connecting as each.
    pub mod roles;
    /// The sites library API.
    pub mod sites;
    /// Users and activity recording.
    pub mod users;
}

/// The packaged alert rules, proven by promtool in simulated time.
/// Once: Prometheus' rules and tools; no server is involved.
mod alerts;
/// Backups with the real pgBackRest: the offsite repository, a repository host, the schedules.
/// Once: the S3 and TLS transports and the units are pgBackRest's and systemd's; restores run on every server.
mod backup;
/// High availability: rendered configuration checked by the engines, a live cluster failing over.
/// Once: Patroni runs Debian's PostgreSQL 15 (the packages a node installs).
mod cluster;
/// The configuration file read by the real binary: precedence, `config show`, bad files.
/// Once: the file is cabinet-db's; no answer of the server's depends on its version.
mod config;
/// A TCP proxy that cuts the connection right after a COMMIT.
/// Once: no tests of its own.
mod cutting_proxy;
/// A stand-in tailscaled LocalAPI on a unix socket.
/// Once: no tests of its own.
mod fake_localapi;
/// The shared test cluster and per-test databases.
/// Once: no tests of its own.
mod harness;
/// Several hosts in network namespaces, processes, a live Patroni cluster (shared with the benchmarks).
/// Once: no tests of its own.
mod lab;
/// The layer map in docs/ARCHITECTURE.md held against the imports in src/.
/// Once: it reads the source, not a server.
mod layers;
/// The version matrix's marker: every module outside `every_server` says why it runs once.
/// Once: it reads this binary's own source.
mod matrix;
/// `cabinet-db metrics`: the database's side, in Prometheus' text format.
/// Once: pg_stat_activity, pg_roles and pg_class read the same on every supported server.
mod metrics;
/// Paged through the real Prometheus and Alertmanager from a database host's faults (root).
/// Once: what the faults change (pg_stat_archiver, the drill, the audit) reads the same on every server.
mod monitoring;
/// Tailnet-only exposure proven in network namespaces (root).
/// Once: the firewall and the addresses decide; what the server's pg_hba admits is judged on every server by the audit.
mod netns;
/// Offline commands: `sql`, `history`, `new`, `lint`.
/// Once: no server is involved.
mod offline;
/// The Debian package (root): contents, lintian, install, remove, purge; completions and man pages.
/// Once: it installs onto a postgresql-common cluster, and Debian 12 packages only 15 (so host
/// apply's path for 14, which has no pg_ident_file_mappings to check with, is not run here).
mod packaging;
/// The admin panel over HTTP: identity, guards, pages.
/// Once: HTTP, identity and the browser; the library calls behind each page run on every server.
mod panel;
/// PostgreSQL older than 14 is refused.
/// Once: it brings its own PostgreSQL 13.
mod server_version;
/// `tailnet status` and `tailnet render`.
/// Once: the LocalAPI and rendered files; no server is involved.
mod tailnet;
