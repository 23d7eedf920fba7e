//! `cluster render`: each node's Patroni and etcd configuration, systemd units and firewall
//! table, the client hosts' HAProxy, and one secrets file — deterministic text from a checked
//! `ClusterSpec` (the secrets file apart, which is generated once and never replaced).

use std::{fmt::Write as _, path::Path};

use super::{ClusterError, ClusterSpec, Member};
use crate::{
    roles::password::Password,
    tailnet::{
        TAILNET_V4, TAILNET_V6,
        render::{RenderedFile, SUPERUSER_PEER_MAP},
    },
};

/// Where the rendered files go on a node (INSTALL.md says so too).
pub(crate) const NODE_CONFIG_DIR: &str = "/etc/cabinet-db/cluster";
/// The systemd unit that runs Patroni on a node (remedies name it).
pub(crate) const PATRONI_UNIT: &str = "cabinet-db-patroni";
/// The secrets file's name in the output directory and on each node.
pub const SECRETS_FILE: &str = "patroni.env";

/// Every file but the secrets, in a fixed order.
pub fn render(spec: &ClusterSpec) -> Result<Vec<RenderedFile>, ClusterError> {
    spec.check()?;
    let file = |path: String, contents: String| RenderedFile { path: path.into(), contents };
    let mut files = Vec::new();
    for node in &spec.nodes {
        files.push(file(format!("{}/patroni.yml", node.name), patroni_yml(spec, node)));
        files.push(file(format!("{}/systemd/cabinet-db-patroni.service", node.name), patroni_unit(spec)));
    }
    for member in spec.etcd_members() {
        files.push(file(format!("{}/etcd.conf.yml", member.name), etcd_yml(spec, member)));
        files.push(file(format!("{}/systemd/cabinet-db-etcd.service", member.name), etcd_unit(spec)));
        files.push(file(format!("{}/nftables/cabinet-cluster.nft", member.name), nftables(spec, member)));
    }
    files.push(file("clients/haproxy.cfg".into(), haproxy_cfg(spec)));
    files.push(file("INSTALL.md".into(), install_notes(spec)));
    Ok(files)
}

/// Writes the files under `out`, and `patroni.env` with generated passwords unless it exists
/// (every node needs the same ones: a rerun must not change them). Nothing is written when the
/// spec is refused.
pub fn write(out: &Path, spec: &ClusterSpec) -> Result<Vec<RenderedFile>, ClusterError> {
    let files = render(spec)?;
    crate::tailnet::render::write(out, &files).map_err(|e| {
        let reason = std::error::Error::source(&e).map_or(String::new(), |cause| cause.to_string());
        ClusterError::Write { path: out.to_owned(), reason: format!("{e}: {reason}") }
    })?;
    let secrets = out.join(SECRETS_FILE);
    if !secrets.exists() {
        crate::atomic_file::write_private(&secrets, &secrets_env(spec))
            .map_err(|e| ClusterError::Write { path: secrets.clone(), reason: e.to_string() })?;
    }
    Ok(files)
}

fn secrets_env(spec: &ClusterSpec) -> String {
    let password = || Password::generate().expose().to_owned();
    format!(
        "# cabinet-db cluster {scope}: Patroni's passwords, the same on every node (mode 0600).
# Install as {NODE_CONFIG_DIR}/{SECRETS_FILE}; the Patroni unit reads it. Keep a copy in a
# password manager. `cabinet-db cluster status` and `switchover` read the REST API's.
PATRONI_SUPERUSER_USERNAME=postgres
PATRONI_SUPERUSER_PASSWORD={}
PATRONI_REPLICATION_USERNAME={}
PATRONI_REPLICATION_PASSWORD={}
PATRONI_REWIND_USERNAME={}
PATRONI_REWIND_PASSWORD={}
PATRONI_RESTAPI_USERNAME=cabinet-db
PATRONI_RESTAPI_PASSWORD={}
",
        password(),
        spec.roles.replication(),
        password(),
        spec.roles.rewind(),
        password(),
        password(),
        scope = spec.scope,
    )
}

fn header(spec: &ClusterSpec, what: &str, comment: &str) -> String {
    format!("{comment} cabinet-db cluster {}: {what}. Rendered by `cabinet-db cluster render`.\n", spec.scope)
}

fn bits(ip: &std::net::IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// pg_hba, top to bottom: the superuser over the socket (Patroni itself), SCRAM for other local
/// connections, replication and pg_rewind only between the cluster's nodes, the login roles
/// from the tailnet, then reject everything else.
fn pg_hba(spec: &ClusterSpec) -> Vec<String> {
    let (logins, db) = (spec.roles.login_names(), &spec.database);
    let mut rules = vec![
        format!("local all postgres peer map={}", SUPERUSER_PEER_MAP.0),
        "local all all scram-sha-256".to_owned(),
        "host all all 127.0.0.1/32 scram-sha-256".to_owned(),
        "host all all ::1/128 scram-sha-256".to_owned(),
    ];
    // Patroni asks its own server for the timeline over a replication connection on loopback
    // when a node returns (to decide whether to rewind it).
    rules.push(format!("host replication {} 127.0.0.1/32 scram-sha-256", spec.roles.replication()));
    for node in &spec.nodes {
        rules.push(format!(
            "host replication {} {}/{} scram-sha-256",
            spec.roles.replication(),
            node.ip,
            bits(&node.ip)
        ));
    }
    for node in &spec.nodes {
        // pg_rewind reads the new leader through database postgres.
        rules.push(format!(
            "host postgres {} {}/{} scram-sha-256",
            spec.roles.rewind(),
            node.ip,
            bits(&node.ip)
        ));
    }
    for (net, prefix) in [TAILNET_V4, TAILNET_V6] {
        rules.push(format!("host {db} {logins} {net}/{prefix} scram-sha-256"));
    }
    rules.push("host all all 0.0.0.0/0 reject".to_owned());
    rules.push("host all all ::/0 reject".to_owned());
    rules
}

fn patroni_yml(spec: &ClusterSpec, node: &Member) -> String {
    let p = spec.ports;
    let etcd_hosts: Vec<String> = spec.etcd_members().iter().map(|m| m.address(p.etcd_client)).collect();
    let mut out = header(spec, &format!("Patroni on node {}", node.name), "#");
    let _ = write!(
        out,
        "# Install as {NODE_CONFIG_DIR}/patroni.yml; passwords come from {NODE_CONFIG_DIR}/{SECRETS_FILE}.
scope: {scope}
namespace: /cabinet-db/
name: {name}

# The REST API: health for HAProxy (/primary, /read-only), switchover for cabinet-db. Changing
# endpoints need the user and password of PATRONI_RESTAPI_USERNAME/PASSWORD.
restapi:
  listen: '{api}'
  connect_address: '{api}'

etcd3:
  hosts: '{etcd}'

bootstrap:
  dcs:
    # A tailnet round trip is milliseconds: the shortest timing Patroni accepts. A dead leader
    # is replaced once its key expires (ttl); loop_wait + 2 x retry_timeout <= ttl.
    ttl: {ttl}
    loop_wait: {loop_wait}
    retry_timeout: {retry}
    # Only a synchronous standby may be promoted, and every commit waits for one: a failover
    # loses no acknowledged commit. With no standby left, the leader keeps accepting writes
    # (not strict): availability over a second copy while a node is down.
    synchronous_mode: true
    synchronous_mode_strict: false
    failsafe_mode: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        password_encryption: scram-sha-256
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 512MB
        synchronous_commit: 'on'
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums

postgresql:
  # Loopback and this node's Tailscale address only, never '*'.
  listen: '127.0.0.1,{ip}:{pg_port}'
  connect_address: '{pg}'
  data_dir: {data_dir}
  bin_dir: {bin_dir}
  pgpass: {data_dir}.pgpass
  use_unix_socket: true
  use_unix_socket_repl: false
  authentication:
    superuser:
      username: postgres
    replication:
      username: {replicator}
    rewind:
      username: {rewinder}
  parameters:
    unix_socket_directories: /var/run/postgresql
{archiving}  # Who may be the postgres superuser over the socket: Patroni (postgres) and root's
  # cabinet-db commands (`peer map={map}` in pg_hba).
  pg_ident:
{ident}  pg_hba:
",
        scope = spec.scope,
        name = node.name,
        api = node.address(p.patroni),
        etcd = etcd_hosts.join(","),
        ttl = spec.timing.ttl,
        loop_wait = spec.timing.loop_wait,
        retry = spec.timing.retry_timeout,
        ip = node.ip,
        pg_port = p.postgres,
        pg = node.address(p.postgres),
        data_dir = spec.data_dir.display(),
        bin_dir = spec.bin_dir.display(),
        replicator = spec.roles.replication(),
        rewinder = spec.roles.rewind(),
        archiving = spec.backup_config.as_deref().map(archiving).unwrap_or_default(),
        map = SUPERUSER_PEER_MAP.0,
        ident = SUPERUSER_PEER_MAP
            .1
            .iter()
            .map(|user| format!("    - {} {user} postgres\n", SUPERUSER_PEER_MAP.0))
            .collect::<String>(),
    );
    for rule in pg_hba(spec) {
        let _ = writeln!(out, "    - {rule}");
    }
    out.push_str(
        "
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
",
    );
    out
}

fn etcd_yml(spec: &ClusterSpec, member: &Member) -> String {
    let p = spec.ports;
    let cluster: Vec<String> =
        spec.etcd_members().iter().map(|m| format!("{}=http://{}", m.name, m.address(p.etcd_peer))).collect();
    let mut out = header(spec, &format!("etcd member {}", member.name), "#");
    let _ = write!(
        out,
        "# Install as {NODE_CONFIG_DIR}/etcd.conf.yml. Plain HTTP on the Tailscale address only: the
# tailnet encrypts it, and the nftables table admits only the cluster's hosts.
name: {name}
data-dir: /var/lib/cabinet-db/etcd
listen-peer-urls: http://{peer}
listen-client-urls: http://{client}
initial-advertise-peer-urls: http://{peer}
advertise-client-urls: http://{client}
initial-cluster: {cluster}
initial-cluster-state: new
initial-cluster-token: cabinet-db-{scope}
# Patroni speaks etcd's v3 API as JSON through this gateway. etcd's flags default it to on,
# but in a configuration file an absent boolean is off (POST /v3/... then answers 404).
enable-grpc-gateway: true
# A member back from a partition asks before it campaigns (Raft pre-vote) instead of forcing an
# election with its higher term: that election would stall etcd, and a leader that cannot renew
# its key within retry_timeout steps down (seen in the live test, under load).
pre-vote: true
",
        name = member.name,
        peer = member.address(p.etcd_peer),
        client = member.address(p.etcd_client),
        cluster = cluster.join(","),
        scope = spec.scope,
    );
    out
}

fn etcd_unit(spec: &ClusterSpec) -> String {
    header(spec, "etcd", "#")
        + &format!(
            "# Install as /etc/systemd/system/cabinet-db-etcd.service; `systemctl enable --now cabinet-db-etcd`.
[Unit]
Description=etcd for the cabinet-db cluster {scope}
Wants=network-online.target tailscale-online.target
After=network-online.target tailscale-online.target

[Service]
Type=notify
User=etcd
ExecStart=/usr/bin/etcd --config-file {NODE_CONFIG_DIR}/etcd.conf.yml
StateDirectory=cabinet-db/etcd
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
",
            scope = spec.scope
        )
}

fn patroni_unit(spec: &ClusterSpec) -> String {
    header(spec, "Patroni", "#")
        + &format!(
            "# Install as /etc/systemd/system/cabinet-db-patroni.service; disable Debian's own unit for this
# data directory first (Patroni starts and stops PostgreSQL itself).
[Unit]
Description=Patroni for the cabinet-db cluster {scope}
Wants=tailscale-online.target
After=network-online.target tailscale-online.target cabinet-db-etcd.service

[Service]
Type=simple
User=postgres
Group=postgres
EnvironmentFile={NODE_CONFIG_DIR}/{SECRETS_FILE}
ExecStart={patroni}/bin/patroni {NODE_CONFIG_DIR}/patroni.yml
ExecReload=/bin/kill -s HUP $MAINPID
# Stop Patroni only: it stops PostgreSQL cleanly and hands the leader key over.
KillMode=process
TimeoutSec=30
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
",
            scope = spec.scope,
            patroni = spec.patroni_dir.display(),
        )
}

/// Cluster ports admit the cluster's hosts only (and the REST API's health checks from the
/// tailnet, for client hosts' HAProxy); PostgreSQL's own port is `tailnet render`'s table.
fn nftables(spec: &ClusterSpec, member: &Member) -> String {
    let p = spec.ports;
    let (v4, v6): (Vec<String>, Vec<String>) = {
        let hosts = spec.etcd_members();
        (
            hosts.iter().filter(|m| m.ip.is_ipv4()).map(|m| m.ip.to_string()).collect(),
            hosts.iter().filter(|m| m.ip.is_ipv6()).map(|m| m.ip.to_string()).collect(),
        )
    };
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    out += &header(spec, &format!("the cluster's ports on {}", member.name), "#");
    let _ = writeln!(
        out,
        "# Install as /etc/nftables.d/cabinet-cluster.nft or load with `nft -f`. etcd is unauthenticated:
# only the cluster's own hosts may reach it. Patroni's REST API answers health checks to the
# tailnet (HAProxy on client hosts); its changing endpoints need a password.
table inet cabinet_cluster {{
  chain input {{
    type filter hook input priority filter - 10; policy accept;"
    );
    let ports = format!("{{ {}, {} }}", p.etcd_client, p.etcd_peer);
    if !v4.is_empty() {
        let _ = writeln!(out, "    tcp dport {ports} ip saddr {{ {} }} accept", v4.join(", "));
    }
    if !v6.is_empty() {
        let _ = writeln!(out, "    tcp dport {ports} ip6 saddr {{ {} }} accept", v6.join(", "));
    }
    let _ = writeln!(out, "    tcp dport {ports} drop");
    let (net4, bits4) = TAILNET_V4;
    let (net6, bits6) = TAILNET_V6;
    let _ =
        writeln!(out, "    tcp dport {} ip saddr {net4}/{bits4} iifname \"tailscale0\" accept", p.patroni);
    let _ =
        writeln!(out, "    tcp dport {} ip6 saddr {net6}/{bits6} iifname \"tailscale0\" accept", p.patroni);
    let _ = writeln!(out, "    tcp dport {} drop\n  }}\n}}", p.patroni);
    out
}

/// The archive settings of a node whose WAL pgBackRest keeps (as `backup setup` would set
/// them on a lone server, which it cannot here: Patroni owns the settings).
fn archiving(config: &Path) -> String {
    format!(
        "    # WAL goes to pgBackRest (`cabinet-db backup setup --repo-host …` on each node): only
    # the leader archives; a replica that falls behind fetches from the archive.
    archive_mode: 'on'
    archive_command: {archive}
    archive_timeout: {timeout}
  recovery_conf:
    restore_command: {restore}
",
        archive = yaml_quote(&crate::backup::config::archive_command(config)),
        timeout = crate::backup::setup::ARCHIVE_TIMEOUT,
        restore = yaml_quote(&crate::backup::config::restore_command(config)),
    )
}

/// A YAML single-quoted scalar (a quote inside is doubled).
fn yaml_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn haproxy_cfg(spec: &ClusterSpec) -> String {
    let p = spec.ports;
    let mut out = header(spec, "HAProxy for a client host (n8n's, the admin panel's)", "#");
    let _ = write!(
        out,
        "# Install as /etc/haproxy/haproxy.cfg (or include it) on each client host; point clients at
# 127.0.0.1: port {leader} for writers (migrations, roles, the admin panel) reaches only the
# leader; port {any} for n8n reaches any healthy member, so reads go on during a failover.
# Health comes from each member's Patroni REST API (port {api}). A member whose API stops
# answering (a crash, a cut link) is marked down after two failed checks, the second 250 ms
# after the first, and its sessions are cut so clients reconnect to a healthy member. After
# HAProxy (re)starts, every server counts as up until its first checks fail: for about two
# seconds a writer may reach a standby (its writes fail read-only; nothing is written there).
global
    maxconn 500

defaults
    mode tcp
    timeout connect 4s
    timeout client 30m
    timeout server 30m
    timeout check 1s

listen cabinet_leader
    bind 127.0.0.1:{leader}
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fastinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
",
        leader = p.leader_frontend,
        any = p.any_frontend,
        api = p.patroni,
    );
    for node in &spec.nodes {
        let _ =
            writeln!(out, "    server {} {} check port {}", node.name, node.address(p.postgres), p.patroni);
    }
    let _ = write!(
        out,
        "
listen cabinet_any
    bind 127.0.0.1:{any}
    balance leastconn
    option httpchk GET /read-only
    http-check expect status 200
    default-server inter 1s fastinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
",
        any = p.any_frontend
    );
    for node in &spec.nodes {
        let _ =
            writeln!(out, "    server {} {} check port {}", node.name, node.address(p.postgres), p.patroni);
    }
    out
}

fn install_notes(spec: &ClusterSpec) -> String {
    let mut out =
        format!("# cabinet-db cluster {}\n\nRendered by `cabinet-db cluster render`.\n\n", spec.scope);
    out.push_str("| file | goes to | then |\n|---|---|---|\n");
    for node in &spec.nodes {
        let n = &node.name;
        let _ = writeln!(out, "| {n}/patroni.yml | {n}:{NODE_CONFIG_DIR}/patroni.yml | |");
        let _ = writeln!(
            out,
            "| {SECRETS_FILE} | {n}:{NODE_CONFIG_DIR}/{SECRETS_FILE} (0600, owner postgres) | |"
        );
        let _ = writeln!(
            out,
            "| {n}/systemd/cabinet-db-patroni.service | {n}:/etc/systemd/system/ | after etcd: `systemctl enable --now cabinet-db-patroni` |"
        );
    }
    for member in spec.etcd_members() {
        let n = &member.name;
        let _ = writeln!(out, "| {n}/etcd.conf.yml | {n}:{NODE_CONFIG_DIR}/etcd.conf.yml | |");
        let _ = writeln!(
            out,
            "| {n}/systemd/cabinet-db-etcd.service | {n}:/etc/systemd/system/ | on all members together: `systemctl enable --now cabinet-db-etcd` |"
        );
        let _ = writeln!(out, "| {n}/nftables/cabinet-cluster.nft | {n}:/etc/nftables.d/ | `nft -f` |");
    }
    out.push_str(
        "| clients/haproxy.cfg | each client host: /etc/haproxy/haproxy.cfg | `systemctl reload haproxy` |\n",
    );
    let _ = write!(
        out,
        "\nStart etcd on every member first, then Patroni on one node (it initialises the database and\ntakes the leader key), then on the others (they clone it and follow). Then, through HAProxy's\nleader port: `cabinet-db migrate up`, `cabinet-db roles apply`.\n",
    );
    if let Some(config) = &spec.backup_config {
        let nodes: Vec<String> = spec.nodes.iter().map(|n| format!("--db-host {}", n.ip)).collect();
        let _ = write!(
            out,
            "\nEvery node archives WAL with pgBackRest ({config}) once it leads. On the repository host:\n`cabinet-db backup setup-repo-host {nodes} --tls-…`, then on each node\n`cabinet-db backup --config {config} setup --repo-host <repository host> --tls-…`, start each\nhost's pgBackRest server, and run `setup-repo-host` again: it checks the chain. Backups run\non the repository host and read a streaming standby's files when there is one.\n",
            config = config.display(),
            nodes = nodes.join(" "),
        );
    }
    out
}

/// The REST API's user and password from a `patroni.env` written by `write`.
pub(crate) fn read_restapi_auth(path: &Path) -> Result<(String, String), ClusterError> {
    let text = crate::secret::read_private(path)
        .map_err(|e| ClusterError::Write { path: path.to_owned(), reason: e.to_string() })?;
    let value = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)).map(str::to_owned).ok_or_else(|| {
            ClusterError::Invalid {
                what: "secrets file".into(),
                value: path.display().to_string(),
                why: format!("has no {key}… line (is it the patroni.env `cluster render` wrote?)"),
            }
        })
    };
    Ok((value("PATRONI_RESTAPI_USERNAME=")?, value("PATRONI_RESTAPI_PASSWORD=")?))
}
