use std::{
    fmt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha384};

/// A migration file compiled into the binary by `build.rs`.
pub(crate) struct EmbeddedFile {
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

static EMBEDDED: &[EmbeddedFile] = include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// The first line that marks a migration to run outside a transaction (the same marker as
/// sqlx, so files stay portable).
pub(crate) const NO_TRANSACTION_MARKER: &str = "-- no-transaction";

/// A line (among the leading comments) that marks a migration which changes the history's own
/// objects: it runs as the role that owns the history (`<prefix>historian`), which the owner
/// role — what migrations otherwise run as — is not.
pub(crate) const CHANGES_HISTORY_MARKER: &str = "-- cabinet-db: changes the history";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the migrations directory {dir}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read migration {file}")]
    ReadFile {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}: the name must be NNNN_description.up.sql or NNNN_description.down.sql (digits, an underscore, lower-case letters, digits and underscores); rename it, e.g. 0002_add_site_notes.up.sql"
    )]
    BadName { file: String },
    #[error(
        "{file}: there is no matching {expected}; every migration needs an up and a down file (cabinet-db migrate new NAME creates both)"
    )]
    MissingPair { file: String, expected: String },
    #[error("{first} and {second} both claim version {version}; give one of them the next free number")]
    DuplicateVersion { version: i64, first: String, second: String },
}

/// One direction of a migration.
#[derive(Clone)]
pub(crate) struct Script {
    /// The file name, e.g. `0001_create_sites_and_users.up.sql`.
    pub(crate) file: String,
    pub(crate) sql: String,
    /// SHA-384 of `sql` (after CRLF → LF, so a Windows checkout cannot change it).
    pub(crate) checksum: Vec<u8>,
    pub(crate) no_transaction: bool,
    /// Runs as the history's owner ([`CHANGES_HISTORY_MARKER`]).
    pub(crate) changes_history: bool,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("file", &self.file)
            .field("no_transaction", &self.no_transaction)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    /// The description part of the file name, e.g. `create_sites_and_users`.
    pub(crate) name: String,
    pub(crate) up: Script,
    pub(crate) down: Script,
}

/// All known migrations, ordered by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
    /// Where they came from (`embedded` or a directory), for messages.
    origin: String,
}

impl MigrationSet {
    /// The migrations compiled into this binary.
    pub fn embedded() -> Result<Self, SourceError> {
        let files = EMBEDDED.iter().map(|f| (f.name.to_owned(), f.sql.to_owned())).collect();
        Self::from_files(files, "embedded".to_owned())
    }

    /// Migrations read from a directory at run time (`--migrations-dir`).
    pub fn from_dir(dir: &Path) -> Result<Self, SourceError> {
        let read_dir = |source| SourceError::ReadDir { dir: dir.to_owned(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let entry = entry.map_err(read_dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sql") {
                continue;
            }
            let sql = std::fs::read_to_string(entry.path())
                .map_err(|source| SourceError::ReadFile { file: name.clone(), source })?;
            files.push((name, sql));
        }
        Self::from_files(files, dir.display().to_string())
    }

    /// Either the directory given or the embedded set.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Self, SourceError> {
        match dir {
            Some(dir) => Self::from_dir(dir),
            None => Self::embedded(),
        }
    }

    pub(crate) fn from_files(mut files: Vec<(String, String)>, origin: String) -> Result<Self, SourceError> {
        files.sort();
        let mut ups: Vec<(i64, String, Script)> = Vec::new();
        let mut downs: Vec<(i64, String, Script)> = Vec::new();
        for (file, sql) in files {
            let (version, name, is_up) =
                parse_file_name(&file).ok_or_else(|| SourceError::BadName { file: file.clone() })?;
            let sql = sql.replace("\r\n", "\n");
            let script = Script {
                checksum: Sha384::digest(sql.as_bytes()).to_vec(),
                no_transaction: sql.lines().next().is_some_and(|l| l.trim_end() == NO_TRANSACTION_MARKER),
                changes_history: sql
                    .lines()
                    .take_while(|l| l.starts_with("--"))
                    .any(|l| l.trim_end() == CHANGES_HISTORY_MARKER),
                file,
                sql,
            };
            let list = if is_up { &mut ups } else { &mut downs };
            if let Some((_, _, other)) = list.iter().find(|(v, _, _)| *v == version) {
                return Err(SourceError::DuplicateVersion {
                    version,
                    first: other.file.clone(),
                    second: script.file,
                });
            }
            list.push((version, name, script));
        }

        let mut migrations = Vec::with_capacity(ups.len());
        for (version, name, up) in ups {
            let position = downs.iter().position(|(v, n, _)| *v == version && *n == name);
            let Some(position) = position else {
                return Err(SourceError::MissingPair {
                    expected: format!("{}_{name}.down.sql", format_version(version)),
                    file: up.file,
                });
            };
            let (_, _, down) = downs.swap_remove(position);
            migrations.push(Migration { version, name, up, down });
        }
        if let Some((version, name, down)) = downs.into_iter().next() {
            return Err(SourceError::MissingPair {
                expected: format!("{}_{name}.up.sql", format_version(version)),
                file: down.file,
            });
        }
        migrations.sort_by_key(|m| m.version);
        Ok(MigrationSet { migrations, origin })
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    pub(crate) fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    /// The newest version, or 0 when there are none.
    pub fn head(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }
}

/// Versions print with at least four digits, as in the file names.
pub(crate) fn format_version(version: i64) -> String {
    format!("{version:04}")
}

/// `0003_add_x.up.sql` → `(3, "add_x", true)`.
fn parse_file_name(file: &str) -> Option<(i64, String, bool)> {
    let (stem, is_up) = if let Some(stem) = file.strip_suffix(".up.sql") {
        (stem, true)
    } else {
        (file.strip_suffix(".down.sql")?, false)
    };
    let (digits, name) = stem.split_once('_')?;
    let valid_digits = digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit());
    let valid_name = is_valid_name(name);
    if !valid_digits || !valid_name {
        return None;
    }
    Some((digits.parse().ok()?, name.to_owned(), is_up))
}

/// A migration's description: lower-case ASCII letters, digits and underscores.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
    }

    #[test]
    fn embedded_migrations_parse_and_start_at_one() {
        let set = MigrationSet::embedded().expect("embedded migrations are well-formed");
        assert_eq!(set.iter().next().map(|m| m.version), Some(1));
        let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=set.head()).collect();
        assert_eq!(versions, expected, "migration numbers have no gaps");
    }

    #[test]
    fn a_crlf_checkout_has_the_same_checksum_as_lf() {
        let lf = MigrationSet::from_files(
            files(&[("0001_a.up.sql", "SELECT 1;\nSELECT 2;\n"), ("0001_a.down.sql", "")]),
            "t".into(),
        )
        .unwrap();
        let crlf = MigrationSet::from_files(
            files(&[("0001_a.up.sql", "SELECT 1;\r\nSELECT 2;\r\n"), ("0001_a.down.sql", "")]),
            "t".into(),
        )
        .unwrap();
        assert_eq!(lf.get(1).unwrap().up.checksum, crlf.get(1).unwrap().up.checksum);
    }

    #[test]
    fn a_badly_named_file_is_refused_naming_it() {
        let err = MigrationSet::from_files(files(&[("1_Add Thing.up.sql", "")]), "t".into()).unwrap_err();
        assert!(err.to_string().contains("1_Add Thing.up.sql"), "{err}");
    }

    #[test]
    fn an_up_without_a_down_is_refused() {
        let err = MigrationSet::from_files(files(&[("0001_a.up.sql", "")]), "t".into()).unwrap_err();
        assert!(err.to_string().contains("0001_a.down.sql"), "{err}");
    }

    #[test]
    fn two_files_with_one_version_are_refused() {
        let err = MigrationSet::from_files(
            files(&[
                ("0001_a.up.sql", ""),
                ("0001_a.down.sql", ""),
                ("0001_b.up.sql", ""),
                ("0001_b.down.sql", ""),
            ]),
            "t".into(),
        )
        .unwrap_err();
        assert!(matches!(err, SourceError::DuplicateVersion { version: 1, .. }), "{err}");
    }

    #[test]
    fn the_no_transaction_marker_is_read_from_the_first_line() {
        let set = MigrationSet::from_files(
            files(&[
                ("0001_a.up.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY x ON t (a);\n"),
                ("0001_a.down.sql", "DROP INDEX x;\n"),
            ]),
            "t".into(),
        )
        .unwrap();
        assert!(set.get(1).unwrap().up.no_transaction);
        assert!(!set.get(1).unwrap().down.no_transaction);
    }
}
