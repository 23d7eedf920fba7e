use std::{net::IpAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output},
    roles::{DEFAULT_ROLE_PREFIX, RoleKind, Roles},
    tailnet::{
        localapi::LocalApi,
        render::{self, Client, RenderInput},
    },
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Directory to write the files to (created if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Read this node's addresses and MagicDNS name from tailscaled's LocalAPI socket.
    #[arg(long, conflicts_with_all = ["ip", "dns_name"])]
    pub(crate) socket: Option<PathBuf>,
    /// This node's Tailscale address (repeatable), instead of --socket.
    #[arg(long, requires = "dns_name")]
    pub(crate) ip: Vec<IpAddr>,
    /// This node's MagicDNS name, e.g. cabinet-db.tail1234.ts.net, instead of --socket.
    #[arg(long, requires = "ip")]
    pub(crate) dns_name: Option<String>,
    /// A client allowed in, as ROLE=IP with ROLE n8n, app (the main application) or admin
    /// (repeatable). Without any, every
    /// tailnet address may try, and the tailnet policy decides.
    #[arg(long, value_name = "NAME=IP", value_parser = parse_client)]
    pub(crate) client: Vec<(RoleKind, IpAddr)>,
    /// PostgreSQL's port.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = 5432)]
    pub(crate) port: u16,
    /// The application database.
    #[arg(long, default_value = "cabinet")]
    pub(crate) database: String,
    /// Prefix of the role names.
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// The admin panel's port (`cabinet-db serve --port`), granted to group:admins.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = crate::tailnet::panel::DEFAULT_PORT)]
    pub(crate) panel_port: u16,
    /// The app capability the admin panel's roles are granted with (`serve --capability`).
    #[arg(long, default_value = crate::tailnet::panel::DEFAULT_CAPABILITY)]
    pub(crate) panel_capability: String,
}

fn parse_client(text: &str) -> Result<(RoleKind, IpAddr), String> {
    let (name, ip) =
        text.split_once('=').ok_or_else(|| format!("{text:?} should be NAME=IP, e.g. n8n=100.88.1.2"))?;
    let role = match name {
        "n8n" => RoleKind::N8n,
        "app" => RoleKind::App,
        "admin" => RoleKind::Admin,
        other => return Err(format!("unknown client {other:?}: the clients are n8n, app and admin")),
    };
    let ip = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((role, ip))
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let (ips, dns_name) = match (&args.socket, args.dns_name) {
        (Some(socket), _) => {
            let status = LocalApi::new(socket).status().await?;
            if !status.is_running() {
                bail!(
                    "tailscaled is {}, not Running: run `tailscale up` first, or give --ip and --dns-name",
                    status.backend_state.as_deref().unwrap_or("in an unknown state")
                );
            }
            let ips = status
                .ips()
                .iter()
                .map(|ip| {
                    ip.parse::<IpAddr>().with_context(|| format!("tailscaled reported a bad address {ip:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let dns_name =
                status.dns_name().context("tailscaled reports no MagicDNS name; give --dns-name")?;
            (ips, dns_name)
        }
        (None, Some(name)) => (args.ip, name.trim_end_matches('.').to_owned()),
        (None, None) => bail!("say where this node is: --socket PATH, or --ip ADDR --dns-name NAME"),
    };
    let input = RenderInput {
        ips,
        dns_name,
        clients: args.client.into_iter().map(|(role, ip)| Client { role, ip }).collect(),
        port: args.port,
        database: args.database,
        roles: args.role_prefix,
        panel: render::PanelGrant { port: args.panel_port, capability: args.panel_capability },
        panel_os_user: None,
    };
    let files = render::render(&input)?;
    render::write(&args.out, &files)?;
    let install = format!("{} explains where each file goes.", args.out.join("INSTALL.md").display());
    output::report_written(&args.out, &files, json, &[install])?;
    Ok(Outcome::Success)
}
