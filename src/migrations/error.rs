//! What can go wrong moving a database between versions: the runner's errors and the
//! baseline's, in one module that the runner, the lock and the baseline all use (so none of
//! them depends on another for its error type).

use std::time::Duration;

use super::{lock::LockHolder, plan::Problem, source::SourceError};
use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{}", describe_lock_timeout(*.waited, .holder.as_ref()))]
    LockTimeout { waited: Duration, holder: Option<LockHolder> },
    #[error("refusing to migrate:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Unsafe(Vec<Problem>),
    #[error(
        "there is no migration {version:04}; the known versions are 0001 to {head:04} (see cabinet-db migrate history), or 0 for an empty schema"
    )]
    UnknownTarget { version: i64, head: i64 },
    #[error("migration {file} failed{location}; the database stays at version {previous:04}{partial}")]
    ScriptFailed {
        file: String,
        /// ` at line L, column C` when PostgreSQL reported a position.
        location: String,
        previous: i64,
        /// A warning for no-transaction migrations, which may have partly run.
        partial: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "migration {file} could not get its table locks within lock_timeout after {attempts} attempts; other sessions hold them (see pg_locks / pg_stat_activity), retry when traffic is lower or raise --ddl-lock-timeout"
    )]
    LockRetriesExhausted {
        file: String,
        attempts: u32,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Baseline(Box<BaselineError>),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

fn describe_lock_timeout(waited: Duration, holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => format!(
            "another migration holds the migration lock ({h}); waited {}s. Wait for it to finish, or if it is stuck end it with SELECT pg_terminate_backend({}); a longer --lock-timeout waits longer",
            waited.as_secs(),
            h.pid
        ),
        None => format!(
            "could not take the migration lock within {}s, but no holder is visible (it was released just now, or this role cannot see other sessions); try again",
            waited.as_secs()
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(
        "this database is already managed by cabinet-db (at version {current:04}); baseline is for adopting a database, use cabinet-db migrate up / down to move it"
    )]
    AlreadyManaged { current: i64 },
    #[error("baseline needs a version of at least 0001")]
    NothingToRecord,
    #[error(
        "there is no alembic_version table: this database was not managed by Alembic; run baseline without --from-alembic"
    )]
    NotAlembic,
    #[error(
        "alembic_version holds {0} rows (several Alembic heads); merge the heads with alembic merge first"
    )]
    AlembicHeads(usize),
    #[error("cannot adopt: {}; create them with Alembic first, or start from an empty database with cabinet-db migrate up", .0.join(", "))]
    MissingTables(Vec<String>),
    #[error(
        "--assume-timezone {0:?} is not a time zone this server knows; use a name from pg_timezone_names, e.g. UTC or Europe/Berlin"
    )]
    BadTimezone(String),
    #[error(
        "cannot adopt without losing data; these differences would drop something:\n{}\nmove that data out (it belongs in another database) and drop it yourself, then rerun",
        .0.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    Destructive(Vec<String>),
    #[error(
        "the schema does not match the models, so it cannot be recorded as version {version:04}:\n{}\nfix it (cabinet-db migrate diff prints the SQL) or baseline an older --version",
        .differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    Drift { version: i64, differences: Vec<String> },
    #[error("converting the Alembic schema failed at: {statement}\n{meaning}nothing was changed")]
    Conversion {
        statement: String,
        meaning: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

impl From<BaselineError> for MigrateError {
    fn from(e: BaselineError) -> Self {
        match e {
            BaselineError::Migrate(m) => m,
            other => MigrateError::Baseline(Box::new(other)),
        }
    }
}
