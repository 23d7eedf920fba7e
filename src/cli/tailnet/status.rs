use clap::Args as ClapArgs;

use super::socket::SocketArgs;
use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    tailnet::localapi::LocalApi,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let api = LocalApi::new(&args.socket.socket);
    let status = api.status().await?;
    let serve = api.serve_config().await?;
    let outcome = if status.is_running() { Outcome::Success } else { Outcome::CheckFailed };
    if json {
        output::print_json(&serde_json::json!({ "status": status, "serve_config": serve }))?;
        return Ok(outcome);
    }
    let state = status.backend_state.as_deref().unwrap_or("unknown");
    outln!("state:      {state}")?;
    outln!("addresses:  {}", or_none(&status.ips().join(", ")))?;
    outln!("MagicDNS:   {}", status.dns_name().unwrap_or_else(|| "(none)".to_owned()))?;
    outln!("tags:       {}", or_none(&status.tags().join(", ")))?;
    if let Some(tailnet) = &status.current_tailnet {
        outln!(
            "tailnet:    {} (MagicDNS {})",
            tailnet.name.as_deref().unwrap_or("?"),
            if tailnet.magic_dns_enabled == Some(true) { "on" } else { "off" }
        )?;
    }
    outln!("serve TCP:  {}", or_none(&serve.served_tcp_ports().join(", ")))?;
    outln!("funnel:     {}", or_none(&serve.funnels().join(", ")))?;
    if outcome == Outcome::CheckFailed {
        outln!("tailscaled is not connected ({state}): run `tailscale up` (and log in) on this host")?;
    }
    Ok(outcome)
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "(none)" } else { text }
}
