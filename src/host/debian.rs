//! postgresql-common, the way Debian runs PostgreSQL: `pg_lsclusters` finds the clusters,
//! `pg_ctlcluster` reloads, restarts and starts them (through systemd when it runs), and psql as
//! the cluster's owner asks it what only a superuser may see before cabinet-db's own
//! connection is allowed in.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde::Deserialize;

use super::HostError;

/// One cluster as `pg_lsclusters --json` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct PgCluster {
    pub(crate) version: u32,
    #[serde(rename = "cluster")]
    pub(crate) name: String,
    #[serde(deserialize_with = "port_from_text")]
    pub(crate) port: u16,
    #[serde(rename = "configdir")]
    pub(crate) config_dir: PathBuf,
    #[serde(rename = "socketdir")]
    pub(crate) socket_dir: PathBuf,
    #[serde(rename = "owneruid")]
    pub(crate) owner_uid: u32,
}

fn port_from_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Text(String),
        Number(u16),
    }
    match Port::deserialize(deserializer)? {
        Port::Number(port) => Ok(port),
        Port::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

/// Runs a program; its failure (or absence) is a [`HostError::Program`] with its output.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<Output, HostError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| HostError::Program { command: command_line(program, args), output: e.to_string() })?;
    if !output.status.success() {
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        return Err(HostError::Program {
            command: command_line(program, args),
            output: text.trim().to_owned(),
        });
    }
    Ok(output)
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

impl PgCluster {
    /// `15/main`.
    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.version, self.name)
    }

    pub(crate) fn list() -> Result<Vec<PgCluster>, HostError> {
        let output = run("pg_lsclusters", &["--json"])?;
        serde_json::from_slice(&output.stdout).map_err(|e| HostError::Program {
            command: "pg_lsclusters --json".to_owned(),
            output: format!("unreadable answer: {e}"),
        })
    }

    /// The cluster named `VERSION/NAME`, or the only one.
    pub fn find(wanted: Option<&str>) -> Result<PgCluster, HostError> {
        let clusters = Self::list()?;
        let names = || clusters.iter().map(PgCluster::id).collect::<Vec<_>>().join(", ");
        match wanted {
            Some(id) => clusters.iter().find(|c| c.id() == id).cloned().ok_or_else(|| HostError::NoCluster {
                why: format!(
                    "no cluster {id} (pg_lsclusters lists: {})",
                    if clusters.is_empty() { "none".to_owned() } else { names() }
                ),
            }),
            None => match clusters.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(HostError::NoCluster {
                    why:
                        "pg_lsclusters lists no cluster: create one with `pg_createcluster 15 main --start` \
                          (or install the postgresql package, which creates it)"
                            .to_owned(),
                }),
                _ => Err(HostError::NoCluster {
                    why: format!("several clusters ({}): name one with --cluster VERSION/NAME", names()),
                }),
            },
        }
    }

    /// `pg_ctlcluster VERSION NAME ACTION` (start, reload, restart).
    pub(crate) fn ctl(&self, action: &str) -> Result<(), HostError> {
        run("pg_ctlcluster", &[&self.version.to_string(), &self.name, action]).map(|_| ())
    }

    pub(crate) fn is_running(&self) -> bool {
        Command::new("pg_ctlcluster")
            .args([&self.version.to_string(), &self.name, "status"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The cluster's OS user (`postgres`).
    pub(crate) fn owner(&self) -> Result<String, HostError> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.owner_uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .ok_or_else(|| HostError::NoCluster {
                why: format!("the owner (uid {}) of {} has no name", self.owner_uid, self.id()),
            })
    }

    /// One SQL statement through psql as the owner over the socket; its rows, one per line,
    /// fields separated by `|`. Used before cabinet-db's own connection is allowed in (root
    /// becomes postgres only once pg_ident.conf says so).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, HostError> {
        let owner = self.owner()?;
        let (port, socket) = (self.port.to_string(), self.socket_dir.display().to_string());
        let output = run(
            "runuser",
            &[
                "-u",
                &owner,
                "--",
                "psql",
                "-X",
                "-At",
                "-h",
                &socket,
                "-p",
                &port,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_lsclusters_json_reads_with_the_port_as_text() {
        let json = r#"[{"socketdir":"/var/run/postgresql","logfile":"/var/log/postgresql/postgresql-15-main.log",
            "configdir":"/etc/postgresql/15/main","ownergid":104,"running":0,"owneruid":101,
            "pgdata":"/var/lib/postgresql/15/main","start":"auto","version":15,"port":"5432",
            "configuid":101,"cluster":"main","config":{"port":"5432"}}]"#;
        let clusters: Vec<PgCluster> = serde_json::from_str(json).unwrap();
        assert_eq!(clusters[0].id(), "15/main");
        assert_eq!(clusters[0].port, 5432);
        assert_eq!(clusters[0].config_dir, PathBuf::from("/etc/postgresql/15/main"));
    }
}
