//! `tailnet render`: the host configuration that exposes PostgreSQL to the tailnet and to
//! nothing else. Pure text from the inputs: the same inputs give byte-identical files.

use std::{
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde_json::json;

use super::{TAILNET_V4, TAILNET_V6, is_tailnet_address};
use crate::roles::{RoleKind, Roles};

/// The query the rendered n8n workflow runs at its start.
pub(crate) const N8N_SITE_QUERY: &str = "SELECT site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage FROM sites WHERE site_id = $1";
/// Ids in the rendered n8n files, fixed so that output is deterministic and the workflow
/// finds its credential after import.
const N8N_CREDENTIAL_ID: &str = "cabinetDbReadOnly";
const N8N_CREDENTIAL_NAME: &str = "cabinet-db (read-only, tailnet)";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{ip} is not a Tailscale address (100.64.0.0/10 or fd7a:115c:a1e0::/48); {what}")]
    NotTailnet { ip: IpAddr, what: String },
    #[error(
        "no Tailscale address: give --ip ADDR (see `tailscale ip`) or let --socket read them from tailscaled"
    )]
    NoAddress,
    #[error("{0:?} is not a MagicDNS name like cabinet-db.tail1234.ts.net")]
    BadDnsName(String),
    #[error("{0}; nothing was written")]
    BadName(String),
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A client host allowed in: which login role it uses, and its tailnet address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub role: RoleKind,
    pub ip: IpAddr,
}

#[derive(Debug, Clone)]
pub struct RenderInput {
    /// This node's Tailscale addresses.
    pub ips: Vec<IpAddr>,
    /// Its MagicDNS name, without the trailing dot.
    pub dns_name: String,
    /// Known clients; none means "any tailnet address" (the tailnet policy narrows it).
    pub clients: Vec<Client>,
    pub port: u16,
    pub database: String,
    pub roles: Roles,
    /// The admin panel's port and the app capability its roles are granted with.
    pub panel: PanelGrant,
    /// The OS user the packaged admin panel runs as on this host (`cabinet-db`), let in over the
    /// socket as the admin role by peer; `None` renders no such rule.
    pub panel_os_user: Option<String>,
}

/// What the policy grants for the admin panel (`cabinet-db serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelGrant {
    pub(crate) port: u16,
    pub capability: String,
}

impl Default for PanelGrant {
    fn default() -> Self {
        PanelGrant {
            port: crate::tailnet::panel::DEFAULT_PORT,
            capability: crate::tailnet::panel::DEFAULT_CAPABILITY.to_owned(),
        }
    }
}

/// One rendered file: a path relative to the output directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

pub fn render(input: &RenderInput) -> Result<Vec<RenderedFile>, RenderError> {
    // Every name that reaches a file: pg_hba.conf is whitespace-separated, so a name holding
    // a space, a newline or a keyword would be a rule of its own.
    crate::db::check_identifier("--database", &input.database).map_err(RenderError::BadName)?;
    input.roles.check().map_err(RenderError::BadName)?;
    crate::tailnet::panel::check_capability(&input.panel.capability).map_err(RenderError::BadName)?;
    if input.ips.is_empty() {
        return Err(RenderError::NoAddress);
    }
    for ip in &input.ips {
        if !is_tailnet_address(*ip) {
            return Err(RenderError::NotTailnet {
                ip: *ip,
                what: "PostgreSQL must listen on tailnet addresses only".into(),
            });
        }
    }
    for client in &input.clients {
        if !is_tailnet_address(client.ip) {
            return Err(RenderError::NotTailnet {
                ip: client.ip,
                what: "clients must reach the database over the tailnet".into(),
            });
        }
    }
    let valid_name = input.dns_name.contains('.')
        && input
            .dns_name
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid_name {
        return Err(RenderError::BadDnsName(input.dns_name.clone()));
    }
    let file = |path: &str, contents: String| RenderedFile { path: PathBuf::from(path), contents };
    Ok(vec![
        file("postgresql/conf.d/cabinet-db.conf", postgresql_conf(input)),
        file("postgresql/pg_hba.conf", pg_hba(input)),
        file("postgresql/pg_ident.conf", pg_ident(input)),
        file("nftables/cabinet-pg.nft", nftables(input)),
        file("systemd/postgresql@.service.d/cabinet-db.conf", systemd_dropin()),
        file("tailscale/policy.hujson", policy(input)),
        file("n8n/credentials.json", n8n_credentials(input)),
        file("n8n/workflow.json", n8n_workflow()),
        file("INSTALL.md", install_notes(input)),
    ])
}

/// Writes the files under `out`, creating directories as needed.
pub fn write(out: &Path, files: &[RenderedFile]) -> Result<(), RenderError> {
    for f in files {
        let path = out.join(&f.path);
        let err = |source| RenderError::Write { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&path, &f.contents).map_err(err)?;
    }
    Ok(())
}

fn postgresql_conf(input: &RenderInput) -> String {
    let addresses: Vec<String> =
        std::iter::once("localhost".to_owned()).chain(input.ips.iter().map(ToString::to_string)).collect();
    format!(
        "# cabinet-db: PostgreSQL settings for a tailnet-only server. Rendered by `cabinet-db tailnet render`.
# Install as /etc/postgresql/<version>/main/conf.d/cabinet-db.conf, then restart PostgreSQL.

# Listen on loopback and this node's Tailscale addresses only — never '*' or a LAN/public
# address: a socket that is not bound cannot be reached, whatever the firewall does.
listen_addresses = '{}'
port = {}

# Only SCRAM verifiers are stored; md5 hashes are replayable and refused by pg_hba anyway.
password_encryption = 'scram-sha-256'
",
        addresses.join(","),
        input.port
    )
}

fn pg_hba(input: &RenderInput) -> String {
    let panel_rule = match &input.panel_os_user {
        Some(os_user) => format!(
            "# The admin panel on this host (cabinet-db-serve.service, OS user {os_user}) as {admin}, by peer:
# no password in any file (pg_ident.conf, map {PANEL_PEER_MAP}).
local   {db:<9} {admin:<10}                  peer map={PANEL_PEER_MAP}
",
            admin = input.roles.name(RoleKind::Admin),
            db = input.database,
        ),
        None => String::new(),
    };
    let logins = input.roles.login_names();
    let db = &input.database;
    let mut out = format!(
        "# cabinet-db: client authentication for a tailnet-only server. Rendered by `cabinet-db tailnet render`.
# Install as the file named by `SHOW hba_file` (Debian: /etc/postgresql/<version>/main/pg_hba.conf),
# then `SELECT pg_reload_conf()`. Rules are read top to bottom; the first match decides.
#
# TYPE  DATABASE  USER  ADDRESS  METHOD

# The DBA on this host, over the unix socket: the OS users postgres and root may be the
# postgres superuser without a password (pg_ident.conf, map dba). cabinet-db's backup and
# migration commands, run as root, connect this way; so does pgBackRest, as postgres.
local   all       postgres                          peer map=dba
{panel}# Other local connections (cabinet-db run on this host, migrations) need a SCRAM password.
local   all       all                               scram-sha-256
host    all       all        127.0.0.1/32           scram-sha-256
host    all       all        ::1/128                scram-sha-256

",
        panel = panel_rule
    );
    if input.clients.is_empty() {
        let _ = writeln!(
            out,
            "# Tailnet clients: any tailnet address may try, as one of the login roles, with a password.
# The tailnet policy (tailscale/policy.hujson) decides which nodes can reach port {} at all.",
            input.port
        );
        for (net, bits) in [TAILNET_V4, TAILNET_V6] {
            let _ = writeln!(out, "host    {db:<9} {logins}  {net}/{bits}  scram-sha-256");
        }
    } else {
        let _ = writeln!(out, "# Tailnet clients, each from its own address and only as its own role.");
        for client in &input.clients {
            let bits = if client.ip.is_ipv4() { 32 } else { 128 };
            let role = input.roles.name(client.role);
            let _ = writeln!(out, "host    {db:<9} {role:<10} {}/{bits}  scram-sha-256", client.ip);
        }
    }
    out.push_str(
        "
# Everything else is refused outright, whatever the address: the audit requires this last rule.
host    all       all        0.0.0.0/0              reject
host    all       all        ::/0                   reject
",
    );
    out
}

/// The peer map that lets the packaged panel's OS user be the admin role over the socket.
pub(crate) const PANEL_PEER_MAP: &str = "panel";

/// The peer map that lets these OS users be the `postgres` superuser over the socket: the
/// server's own user, and root (which can become postgres anyway; naming it lets root's own
/// tools — cabinet-db's admin commands — in). `cluster render` writes the same for Patroni.
pub(crate) const SUPERUSER_PEER_MAP: (&str, [&str; 2]) = ("dba", ["postgres", "root"]);

fn pg_ident(input: &RenderInput) -> String {
    let mut out = String::from(
        "# cabinet-db: who may be the postgres superuser over the unix socket (pg_hba.conf's
# `peer map=dba`). Rendered by `cabinet-db tailnet render`. Install as the file named by
# `SHOW ident_file` (Debian: /etc/postgresql/<version>/main/pg_ident.conf), then reload.
# Root can become postgres anyway (sudo -u postgres); naming it here lets root's own tools in.
# MAPNAME  SYSTEM-USERNAME  PG-USERNAME
",
    );
    let (map, users) = SUPERUSER_PEER_MAP;
    for user in users {
        let _ = writeln!(out, "{map:<10} {user:<16} postgres");
    }
    if let Some(os_user) = &input.panel_os_user {
        let _ = writeln!(out, "{PANEL_PEER_MAP:<10} {os_user:<16} {}", input.roles.name(RoleKind::Admin));
    }
    out
}

fn nftables(input: &RenderInput) -> String {
    format!(
        "#!/usr/sbin/nft -f
# cabinet-db: drop PostgreSQL traffic that does not arrive over loopback or the tailnet.
# Rendered by `cabinet-db tailnet render`. Install as /etc/nftables.d/cabinet-pg.nft (included
# from /etc/nftables.conf) or load with `nft -f`.
#
# A table of its own, so it coexists with ufw and tailscaled's rules: in nftables a drop is
# final across tables, so this holds even if another table accepts the packet. It is a second
# line behind listen_addresses and pg_hba, for the day one of those is changed by mistake.
# Loading it again replaces the table (declare, delete, define: one transaction), never
# doubles its rules.
table inet cabinet_pg
delete table inet cabinet_pg
table inet cabinet_pg {{
  chain input {{
    type filter hook input priority filter - 10; policy accept;
    tcp dport {port} iifname {{ \"lo\", \"tailscale0\" }} accept
    tcp dport {port} drop
  }}
}}
",
        port = input.port
    )
}

fn systemd_dropin() -> String {
    "# cabinet-db: start PostgreSQL only once Tailscale has its address.
# Rendered by `cabinet-db tailnet render`. Install as
# /etc/systemd/system/postgresql@.service.d/cabinet-db.conf, then `systemctl daemon-reload`.
#
# Without this, PostgreSQL may start before tailscale0 has its 100.x address and then either
# fails to bind it or comes up on localhost only. tailscale-online.target (Tailscale >= 1.96)
# is reached when the node is connected.
[Unit]
Wants=tailscale-online.target
After=tailscale-online.target
"
    .to_owned()
}

fn policy(input: &RenderInput) -> String {
    format!(
        "// cabinet-db: tailnet policy snippet (HuJSON). Rendered by `cabinet-db tailnet render`.
// Merge into the tailnet policy file (admin console > Access controls). Deny by default:
// only n8n (tag:n8n), the main application (tag:app) and the admins (group:admins, the admin
// panel's operators) may open TCP {port} on the database node (tag:cabinet-db), and nothing else on it; the admin panel
// (TCP {panel_port}) is for people only, each with the role its grant names, but for its
// /metrics, which the monitoring node (tag:monitoring, Prometheus) reads with the metrics role.
{{
  \"tagOwners\": {{
    \"tag:cabinet-db\": [\"autogroup:admin\"],
    \"tag:n8n\": [\"autogroup:admin\"],
    \"tag:app\": [\"autogroup:admin\"],
    \"tag:monitoring\": [\"autogroup:admin\"],
  }},
  \"grants\": [
    {{
      \"src\": [\"tag:n8n\", \"tag:app\", \"group:admins\"],
      \"dst\": [\"tag:cabinet-db\"],
      \"ip\": [\"tcp:{port}\"],
    }},
    // The admin panel: the network path, and the role (viewer reads; editor changes sites;
    // admin also forgets users and imports). The highest role granted wins; no grant, no entry.
    {{
      \"src\": [\"group:admins\"],
      \"dst\": [\"tag:cabinet-db\"],
      \"ip\": [\"tcp:{panel_port}\"],
      \"app\": {{\"{capability}\": [{{\"role\": \"admin\"}}]}},
    }},
    // More people, e.g.:
    // {{\"src\": [\"group:support\"], \"dst\": [\"tag:cabinet-db\"], \"ip\": [\"tcp:{panel_port}\"],
    //  \"app\": {{\"{capability}\": [{{\"role\": \"editor\"}}]}}}},
    // Prometheus: the panel's /metrics (the metrics role admits no page) and postgres_exporter.
    {{
      \"src\": [\"tag:monitoring\"],
      \"dst\": [\"tag:cabinet-db\"],
      \"ip\": [\"tcp:{panel_port}\", \"tcp:{exporter_port}\"],
      \"app\": {{\"{capability}\": [{{\"role\": \"metrics\"}}]}},
    }},
  ],
  // Checked by Tailscale whenever the policy is saved.
  \"tests\": [
    {{
      \"src\": \"tag:n8n\",
      \"accept\": [\"tag:cabinet-db:{port}\"],
      \"deny\": [\"tag:cabinet-db:22\", \"tag:cabinet-db:{panel_port}\"],
    }},
    {{
      \"src\": \"tag:app\",
      \"accept\": [\"tag:cabinet-db:{port}\"],
      \"deny\": [\"tag:cabinet-db:22\", \"tag:cabinet-db:{panel_port}\"],
    }},
    {{
      \"src\": \"tag:monitoring\",
      \"accept\": [\"tag:cabinet-db:{panel_port}\", \"tag:cabinet-db:{exporter_port}\"],
      \"deny\": [\"tag:cabinet-db:22\", \"tag:cabinet-db:{port}\"],
    }},
  ],
}}
",
        port = input.port,
        panel_port = input.panel.port,
        capability = input.panel.capability,
        exporter_port = crate::tailnet::panel::EXPORTER_PORT,
    )
}

fn n8n_credentials(input: &RenderInput) -> String {
    let credentials = json!([{
        "id": N8N_CREDENTIAL_ID,
        "name": N8N_CREDENTIAL_NAME,
        "type": "postgres",
        "data": {
            "host": input.dns_name,
            "database": input.database,
            "user": input.roles.name(RoleKind::N8n),
            "password": format!("<contents of {}.password>", input.roles.name(RoleKind::N8n)),
            "port": input.port,
            "ssl": "disable",
            "allowUnauthorizedCerts": false,
            "maxConnections": 10
        }
    }]);
    format!("{}\n", serde_json::to_string_pretty(&credentials).expect("static JSON"))
}

fn n8n_workflow() -> String {
    let trigger = "When clicking 'Execute workflow'";
    let lookup = "Load site config";
    let workflow = json!({
        "name": "cabinet-db: load site config",
        "nodes": [
            {
                "parameters": {},
                "id": "6f0c1a52-0000-4000-8000-000000000001",
                "name": trigger,
                "type": "n8n-nodes-base.manualTrigger",
                "typeVersion": 1,
                "position": [0, 0]
            },
            {
                "parameters": {
                    "operation": "executeQuery",
                    "query": N8N_SITE_QUERY,
                    "options": { "queryReplacement": "demo-acme" }
                },
                "id": "6f0c1a52-0000-4000-8000-000000000002",
                "name": lookup,
                "type": "n8n-nodes-base.postgres",
                "typeVersion": 2.5,
                "position": [240, 0],
                "credentials": { "postgres": { "id": N8N_CREDENTIAL_ID, "name": N8N_CREDENTIAL_NAME } }
            }
        ],
        "connections": { trigger: { "main": [[{ "node": lookup, "type": "main", "index": 0 }]] } },
        "settings": { "executionOrder": "v1" },
        "active": false
    });
    format!("{}\n", serde_json::to_string_pretty(&workflow).expect("static JSON"))
}

fn install_notes(input: &RenderInput) -> String {
    format!(
        "# Installing these files

Rendered by `cabinet-db tailnet render` for {dns} ({ips}). See docs/deploy.md for the
whole procedure.

| file | goes to | then |
|---|---|---|
| postgresql/conf.d/cabinet-db.conf | /etc/postgresql/<version>/main/conf.d/ | restart PostgreSQL |
| postgresql/pg_hba.conf | `SHOW hba_file` | `SELECT pg_reload_conf()` |
| postgresql/pg_ident.conf | `SHOW ident_file` | `SELECT pg_reload_conf()` |
| nftables/cabinet-pg.nft | /etc/nftables.d/ (included from /etc/nftables.conf) | `nft -f` it |
| systemd/postgresql@.service.d/cabinet-db.conf | /etc/systemd/system/postgresql@.service.d/ | `systemctl daemon-reload` |
| tailscale/policy.hujson | the tailnet policy file | save (its tests run) |
| n8n/credentials.json | `n8n import:credentials --input=credentials.json` | put in the password first |
| n8n/workflow.json | `n8n import:workflow --input=workflow.json` | run it: it reads one site |

The JSON files cannot carry comments, so the why is here:
- The credential points at the MagicDNS name {dns}. n8n in Docker may not resolve MagicDNS
  names: use {first_ip} instead, or run the container on the host network or with a Tailscale
  sidecar.
- `ssl` is `disable` because tailnet traffic is already encrypted end to end by WireGuard and
  pg_hba admits no client from outside the tailnet.
- The password is a placeholder: the file holding the real one is written 0600 by
  `cabinet-db roles apply --secrets-dir DIR`; never commit the filled-in credential.
- The workflow runs `{query}` with the
  site id as a query parameter (never spliced into the SQL).
",
        dns = input.dns_name,
        ips = input.ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        first_ip = input.ips[0],
        query = N8N_SITE_QUERY,
    )
}
