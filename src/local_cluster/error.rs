//! What a private cluster fails with: the step, and the tool's own words.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found; looked in {searched}. Install them (Debian/Ubuntu: sudo apt-get install postgresql) or set PG_BINDIR to their directory"
    )]
    BinariesNotFound { searched: String },
    #[error(
        "the PostgreSQL binaries in {} are {version}, but cabinet-db needs 14 or newer; install a newer server (apt-get install postgresql-16) or point PG_BINDIR at one", .bindir.display()
    )]
    TooOld { bindir: PathBuf, version: String },
    #[error(
        "running as root, PostgreSQL must run as an unprivileged user, but user {name:?} cannot be used ({reason}); create it (useradd --system --home-dir /var/lib/postgresql --shell /bin/bash {name}; installing the postgresql package does this) or set CABINET_PG_USER"
    )]
    NoServerUser { name: String, reason: String },
    #[error("could not run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} failed:\n{output}{hint}")]
    Tool { action: String, output: String, hint: String },
    #[error("could not {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}
