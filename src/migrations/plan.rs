//! What stands between a database and a target version, and what is wrong on the way.

use serde::Serialize;

use super::{ledger::AppliedMigration, source::MigrationSet};

/// Something that makes it unsafe to move the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// An applied migration's file changed since it ran.
    ChecksumMismatch { version: i64, file: String },
    /// The database applied a migration this set does not have.
    UnknownApplied { version: i64, name: String },
    /// A pending migration is numbered below the newest applied one.
    OutOfOrder { version: i64, file: String, newest_applied: i64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::ChecksumMismatch { file, .. } => write!(
                f,
                "migration {file} was edited after it was applied to this database (its checksum differs); applied migrations must not change: restore the file (git checkout -- migrations/{file}) and put the change in a new migration (cabinet-db migrate new NAME)"
            ),
            Problem::UnknownApplied { version, name } => write!(
                f,
                "the database has migration {version:04} ({name}) applied, which these migrations do not include; use the cabinet-db build (or --migrations-dir) that applied it"
            ),
            Problem::OutOfOrder { file, newest_applied, .. } => write!(
                f,
                "pending migration {file} is numbered below the newest applied migration {newest_applied:04}; renumber it after the newest one (git mv) so every database applies migrations in the same order"
            ),
        }
    }
}

/// The database's position relative to the known migrations.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Assessment {
    /// The newest applied version, or `None` for a fresh database.
    pub(crate) current: Option<i64>,
    pub(crate) head: i64,
    pub(crate) applied: Vec<AppliedMigration>,
    /// Known versions not yet applied, ascending.
    pub(crate) pending: Vec<i64>,
    pub(crate) problems: Vec<Problem>,
}

impl Assessment {
    pub(crate) fn new(set: &MigrationSet, applied: Vec<AppliedMigration>) -> Self {
        let mut problems = Vec::new();
        for row in &applied {
            match set.get(row.version) {
                Some(m) if m.up.checksum != row.checksum => {
                    problems.push(Problem::ChecksumMismatch { version: row.version, file: m.up.file.clone() })
                }
                Some(_) => {}
                None => {
                    problems.push(Problem::UnknownApplied { version: row.version, name: row.name.clone() })
                }
            }
        }
        let newest_applied = applied.iter().map(|r| r.version).max();
        let pending: Vec<i64> = set
            .iter()
            .filter(|m| !applied.iter().any(|r| r.version == m.version))
            .map(|m| m.version)
            .collect();
        if let Some(newest) = newest_applied {
            for &version in pending.iter().filter(|&&v| v < newest) {
                let file = set.get(version).map(|m| m.up.file.clone()).unwrap_or_default();
                problems.push(Problem::OutOfOrder { version, file, newest_applied: newest });
            }
        }
        Assessment { current: newest_applied, head: set.head(), applied, pending, problems }
    }
}
