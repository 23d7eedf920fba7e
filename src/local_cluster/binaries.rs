//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::error::ClusterError;

const REQUIRED_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// Where Debian and Ubuntu install each server version.
const DEBIAN_PREFIX: &str = "/usr/lib/postgresql";
/// The oldest server major version cabinet-db supports.
pub(crate) const MIN_MAJOR_VERSION: u32 = 14;

#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
}

impl PgBinaries {
    /// Looks in `$PG_BINDIR`, then `pg_config --bindir`, then the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn locate() -> Result<Self, ClusterError> {
        let mut searched = Vec::new();
        if let Some(dir) = std::env::var_os("PG_BINDIR") {
            let dir = PathBuf::from(dir);
            return if has_tools(&dir) {
                Self::at(dir)
            } else {
                Err(ClusterError::BinariesNotFound {
                    searched: format!(
                        "PG_BINDIR={} (it lacks one of initdb, pg_ctl, postgres)",
                        dir.display()
                    ),
                })
            };
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_tools(&dir) {
                return Self::at(dir);
            }
            searched.push(format!("pg_config --bindir ({})", dir.display()));
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PREFIX)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse().ok()?;
                Some((major, e.path().join("bin")))
            })
            .filter(|(_, bin)| has_tools(bin))
            .collect();
        versions.sort();
        if let Some((_, dir)) = versions.pop() {
            return Self::at(dir);
        }
        searched.push(format!("{DEBIAN_PREFIX}/*/bin"));
        Err(ClusterError::BinariesNotFound { searched: searched.join(", ") })
    }

    /// Binaries of one major version (to start a restored copy of a cluster): `$PG_BINDIR` if
    /// it is that version, else Debian's `/usr/lib/postgresql/<major>/bin`.
    pub(crate) fn for_major(major: u32) -> Result<Self, ClusterError> {
        if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from)
            && has_tools(&dir)
            && let Ok(binaries) = Self::at(dir)
            && binaries.major() == major
        {
            return Ok(binaries);
        }
        let dir = Path::new(DEBIAN_PREFIX).join(major.to_string()).join("bin");
        if has_tools(&dir) {
            return Self::at(dir);
        }
        Err(ClusterError::BinariesNotFound {
            searched: format!(
                "PG_BINDIR and {} (PostgreSQL {major}, the version the backup was taken from; apt-get install postgresql-{major})",
                dir.display()
            ),
        })
    }

    /// The binaries in `bindir`, refused when they are older than PostgreSQL 14.
    pub(crate) fn at(bindir: PathBuf) -> Result<Self, ClusterError> {
        let postgres = bindir.join("postgres");
        let out = Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(|source| ClusterError::Spawn { program: postgres.display().to_string(), source })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match major_version(&version) {
            Some(major) if major >= MIN_MAJOR_VERSION => Ok(PgBinaries { version, bindir }),
            _ => Err(ClusterError::TooOld { bindir, version }),
        }
    }

    /// The major version, e.g. 15.
    pub fn major(&self) -> u32 {
        major_version(&self.version).unwrap_or(0)
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// `postgres (PostgreSQL) 15.18 (Debian …)` → 15.
fn major_version(version: &str) -> Option<u32> {
    let number = version.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    number.split(['.', 'b', 'r', 'd']).next()?.parse().ok()
}

fn has_tools(dir: &Path) -> bool {
    REQUIRED_TOOLS.iter().all(|t| dir.join(t).is_file())
}

#[cfg(test)]
mod tests {
    use super::major_version;

    #[test]
    fn major_versions_are_read_from_postgres_version_output() {
        assert_eq!(major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), Some(15));
        assert_eq!(major_version("postgres (PostgreSQL) 13.23"), Some(13));
        assert_eq!(major_version("postgres (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(major_version("garbage"), None);
    }
}
