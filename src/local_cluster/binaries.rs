//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::ClusterError;

const REQUIRED_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// Where Debian and Ubuntu install each server version.
const DEBIAN_PREFIX: &str = "/usr/lib/postgresql";

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

    fn at(bindir: PathBuf) -> Result<Self, ClusterError> {
        let postgres = bindir.join("postgres");
        let out = Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(|source| ClusterError::Spawn { program: postgres.display().to_string(), source })?;
        Ok(PgBinaries { version: String::from_utf8_lossy(&out.stdout).trim().to_owned(), bindir })
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

fn has_tools(dir: &Path) -> bool {
    REQUIRED_TOOLS.iter().all(|t| dir.join(t).is_file())
}
