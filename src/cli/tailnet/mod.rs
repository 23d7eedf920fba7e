//! `cabinet-db tailnet`: what Tailscale says about this node, and the host configuration
//! that exposes PostgreSQL to the tailnet only.

mod render;
mod socket;
mod status;

use clap::{Args, Subcommand};

use super::outcome::Outcome;

#[derive(Debug, Args)]
pub(crate) struct TailnetArgs {
    #[command(subcommand)]
    pub(crate) command: TailnetCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TailnetCommand {
    /// Show this node's Tailscale addresses, MagicDNS name, tags, state, serve and funnel.
    Status(status::Args),
    /// Write postgresql.conf/pg_hba.conf/nftables/systemd/policy/n8n files for this node.
    Render(render::Args),
}

pub(crate) async fn run(args: TailnetArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        TailnetCommand::Status(a) => status::run(a, json).await,
        TailnetCommand::Render(a) => render::run(a, json).await,
    }
}
