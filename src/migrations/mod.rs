//! Versioned migrations: where they come from, what the database has applied, and the
//! runner that moves a database between versions safely.

/// Adopting an existing database (plain or Alembic-managed) without running migrations.
pub mod baseline;
/// The runner's and the baseline's errors.
pub(crate) mod error;
/// The `cabinet_migrations` bookkeeping table.
pub(crate) mod ledger;
/// squawk-linter over every migration, plus our own rules.
pub(crate) mod lint;
/// The session-level advisory lock that serialises deployers.
pub mod lock;
/// The SQL an upgrade or downgrade would run, rendered without a database.
pub(crate) mod offline;
/// Comparing the migrations with what a database has applied.
pub(crate) mod plan;
/// Applying and reverting migrations.
pub mod runner;
/// The dedicated connection that holds the lock while migrations run.
pub(crate) mod session;
/// Reading migrations: the embedded set or a directory, one parser for both.
pub(crate) mod source;

pub use error::MigrateError;
pub use plan::Problem;
pub use runner::RunnerOptions;
pub use source::MigrationSet;
