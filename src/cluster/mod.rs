//! High availability on the tailnet: a Patroni cluster (PostgreSQL on two or more nodes, etcd
//! on three or more) configured by cabinet-db, not failed over by it. `render` writes each
//! node's files and the client hosts' HAProxy; the engines do the rest.

/// etcd's members' health, as etcd itself reports it.
pub(crate) mod etcd;
/// Patroni's REST API: members, roles, lag; switchover.
pub mod patroni;
/// The files `cluster render` writes.
pub mod render;

use std::{
    collections::HashSet,
    net::IpAddr,
    path::{Path, PathBuf},
};

use crate::{roles::Roles, tailnet::is_tailnet_address};

/// Patroni refuses a leader key TTL below this.
pub(crate) const MIN_TTL_SECS: u32 = 20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("{what} {value:?}: {why}; nothing was written")]
    Invalid { what: String, value: String, why: String },
    #[error("cannot write {}: {reason}", .path.display())]
    Write { path: PathBuf, reason: String },
    #[error("Patroni's REST API at {address}: {reason}")]
    Api { address: String, reason: String },
    /// No member answered: each one's reason, already naming its address.
    #[error("no member's REST API answered: {}", .0.join("; "))]
    NoMemberAnswered(Vec<String>),
}

fn invalid(what: &str, value: impl ToString, why: impl Into<String>) -> ClusterError {
    ClusterError::Invalid { what: what.to_owned(), value: value.to_string(), why: why.into() }
}

/// One host of the cluster: its name (a DNS label, also Patroni's and etcd's member name) and
/// its Tailscale address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
}

impl Member {
    /// `NAME=TAILSCALE_IP`, as `--node` and `--witness` take it.
    pub fn parse(text: &str) -> Result<Member, ClusterError> {
        let (name, ip) = text
            .split_once('=')
            .ok_or_else(|| invalid("--node", text, "not NAME=TAILSCALE_IP, e.g. db1=100.64.0.1"))?;
        let ip: IpAddr =
            ip.parse().map_err(|_| invalid("--node", text, "the part after = is not an IP address"))?;
        Ok(Member { name: name.to_owned(), ip })
    }

    /// `host:port` with IPv6 in brackets.
    pub(crate) fn address(&self, port: u16) -> String {
        match self.ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        }
    }
}

/// Failure detection: how long the leader key lives, how often it is renewed, how long a
/// request to etcd or PostgreSQL may be retried. Patroni requires `loop_wait + 2 ×
/// retry_timeout ≤ ttl` and `ttl ≥ 20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub ttl: u32,
    pub loop_wait: u32,
    pub retry_timeout: u32,
}

impl Default for Timing {
    /// The shortest Patroni accepts, for a tailnet whose round trips are milliseconds: a dead
    /// leader is replaced in about 20 s (measured 19–21 s).
    fn default() -> Self {
        Timing { ttl: MIN_TTL_SECS, loop_wait: 2, retry_timeout: 3 }
    }
}

/// Ports each node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub(crate) postgres: u16,
    /// Patroni's REST API (health checks, switchover).
    pub(crate) patroni: u16,
    pub(crate) etcd_client: u16,
    pub(crate) etcd_peer: u16,
    /// On client hosts: HAProxy's frontend that reaches only the leader.
    pub(crate) leader_frontend: u16,
    /// On client hosts: HAProxy's frontend that reaches any healthy member (n8n's reads).
    pub(crate) any_frontend: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            postgres: 5432,
            patroni: 8008,
            etcd_client: 2379,
            etcd_peer: 2380,
            leader_frontend: 5432,
            any_frontend: 5433,
        }
    }
}

/// Everything `cluster render` needs.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The cluster's name in etcd (Patroni's `scope`).
    pub scope: String,
    /// Hosts running PostgreSQL, Patroni and etcd.
    pub nodes: Vec<Member>,
    /// A host running only etcd, so that two database nodes still have a three-member quorum.
    pub witness: Option<Member>,
    pub ports: Ports,
    pub timing: Timing,
    /// Where each node's PostgreSQL keeps its data, and its server binaries.
    pub data_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// Where Patroni is installed (a virtual environment).
    pub patroni_dir: PathBuf,
    /// The application database and the role names (for pg_hba).
    pub database: String,
    pub roles: Roles,
    /// pgBackRest's configuration on each node (`--backups`): every node archives to it once
    /// it leads, and fetches from it when it falls behind. `None`: no archiving.
    pub backup_config: Option<PathBuf>,
}

impl ClusterSpec {
    /// Every member of etcd: the nodes, then the witness.
    pub(crate) fn etcd_members(&self) -> Vec<&Member> {
        self.nodes.iter().chain(self.witness.iter()).collect()
    }

    /// Refuses anything that would make a broken or unsafe cluster, or that must not reach a
    /// configuration file, before anything is written.
    pub(crate) fn check(&self) -> Result<(), ClusterError> {
        check_label("--scope", &self.scope)?;
        crate::db::check_identifier("--database", &self.database)
            .map_err(|why| invalid("--database", &self.database, why))?;
        self.roles.check().map_err(|why| invalid("--role-prefix", &self.roles.prefix, why))?;
        if self.nodes.len() < 2 {
            return Err(invalid(
                "--node",
                self.nodes.len(),
                "a cluster needs at least two database nodes (one to take over); give --node twice or more",
            ));
        }
        let etcd = self.etcd_members();
        if etcd.len() < 3 || etcd.len().is_multiple_of(2) {
            return Err(invalid(
                "etcd members",
                etcd.len(),
                "etcd needs an odd number of members, at least three, to keep a majority when one host dies; add a node or a --witness",
            ));
        }
        let (mut names, mut ips) = (HashSet::new(), HashSet::new());
        for member in etcd {
            check_label("member name", &member.name)?;
            if !is_tailnet_address(member.ip) {
                return Err(invalid(
                    "member address",
                    format!("{}={}", member.name, member.ip),
                    "not a Tailscale address (100.64.0.0/10 or fd7a:115c:a1e0::/48): cluster traffic stays on the tailnet",
                ));
            }
            if !names.insert(member.name.as_str()) {
                return Err(invalid("member name", &member.name, "given twice"));
            }
            if !ips.insert(member.ip) {
                return Err(invalid("member address", member.ip, "given twice"));
            }
        }
        let Timing { ttl, loop_wait, retry_timeout } = self.timing;
        if ttl < MIN_TTL_SECS {
            return Err(invalid(
                "--ttl",
                ttl,
                format!("Patroni refuses a leader key TTL below {MIN_TTL_SECS} s"),
            ));
        }
        if loop_wait == 0 || retry_timeout == 0 || loop_wait + 2 * retry_timeout > ttl {
            return Err(invalid(
                "--loop-wait/--retry-timeout",
                format!("{loop_wait}/{retry_timeout}"),
                format!("Patroni needs loop_wait + 2 × retry_timeout ≤ ttl ({ttl}), both at least 1"),
            ));
        }
        let p = self.ports;
        let node_ports = [p.postgres, p.patroni, p.etcd_client, p.etcd_peer];
        if node_ports.contains(&0) || node_ports.iter().collect::<HashSet<_>>().len() != node_ports.len() {
            return Err(invalid(
                "ports",
                format!("{node_ports:?}"),
                "each service on a node needs a port of its own",
            ));
        }
        if p.leader_frontend == p.any_frontend || p.leader_frontend == 0 || p.any_frontend == 0 {
            return Err(invalid(
                "HAProxy ports",
                format!("{}/{}", p.leader_frontend, p.any_frontend),
                "the leader and any-member frontends need two different ports",
            ));
        }
        let mut paths = vec![
            ("--data-dir", self.data_dir.as_path()),
            ("--bin-dir", self.bin_dir.as_path()),
            ("--patroni-dir", self.patroni_dir.as_path()),
        ];
        paths.extend(self.backup_config.as_deref().map(|config| ("--backup-config", config)));
        for (what, path) in paths {
            check_path(what, path)?;
        }
        Ok(())
    }
}

/// A DNS label: lower-case letters, digits and inner hyphens, 1–63 characters. Names reach
/// YAML, systemd units and etcd URLs: nothing else may.
fn check_label(what: &str, name: &str) -> Result<(), ClusterError> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(what, name, "use 1-63 lower-case letters, digits and inner hyphens (a DNS label)"))
    }
}

/// An absolute path of plain characters (it is written into YAML and unit files unquoted).
fn check_path(what: &str, path: &Path) -> Result<(), ClusterError> {
    let text = path.to_string_lossy();
    let ok = path.is_absolute()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !text.split('/').any(|part| part == "..");
    if ok {
        Ok(())
    } else {
        Err(invalid(what, text, "use an absolute path of letters, digits, / . _ - (no ..)"))
    }
}
