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
    // Every value is tailscaled's: shown as text, never as terminal control.
    let safe = |text: &str| output::terminal_safe(text, false).into_owned();
    let state = safe(status.backend_state.as_deref().unwrap_or("unknown"));
    outln!("state:      {state}")?;
    outln!("addresses:  {}", or_none(&safe(&status.ips().join(", "))))?;
    outln!("MagicDNS:   {}", status.dns_name().map_or_else(|| "(none)".to_owned(), |n| safe(&n)))?;
    outln!("tags:       {}", or_none(&safe(&status.tags().join(", "))))?;
    if let Some(tailnet) = &status.current_tailnet {
        outln!(
            "tailnet:    {} (MagicDNS {})",
            safe(tailnet.name.as_deref().unwrap_or("?")),
            if tailnet.magic_dns_enabled == Some(true) { "on" } else { "off" }
        )?;
    }
    outln!("serve TCP:  {}", or_none(&safe(&serve.served_tcp_ports().join(", "))))?;
    outln!("funnel:     {}", or_none(&safe(&serve.funnels().join(", "))))?;
    if outcome == Outcome::CheckFailed {
        outln!("tailscaled is not connected ({state}): run `tailscale up` (and log in) on this host")?;
    }
    Ok(outcome)
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "(none)" } else { text }
}
