//! `cabinet-db host apply`: a Debian host with postgresql-common brought to the designed state —
//! the tailnet-only server settings, client authentication, firewall table and systemd drop-in
//! installed (each shown as a diff, each checked before it is loaded), the schema, the roles,
//! backups proven by a drill, the package's timers and panel enabled, and the audit passing.
//! Idempotent: a second run changes nothing and restarts nothing.

/// The steps in order, the report, and stopping with what was done and how to resume.
pub(crate) mod apply;
/// pg_lsclusters, pg_ctlcluster, psql as the cluster's owner.
pub mod debian;
/// Where each rendered file goes, its diff, installing and restoring it.
pub mod files;

use std::path::PathBuf;

/// Why a step could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{why}")]
    NoCluster { why: String },
    #[error("`{command}` failed: {output}")]
    Program { command: String, output: String },
    #[error("cannot write {}: {source}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}
