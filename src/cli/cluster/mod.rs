//! `cabinet-db cluster …`: the high-availability cluster (Patroni, etcd, HAProxy).

/// `cluster render`.
pub mod render;

use clap::{Args, Subcommand};

use super::Outcome;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write each node's Patroni, etcd, systemd and nftables files and the client hosts' HAProxy.
    Render(render::Args),
}

pub async fn run(args: ClusterArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        ClusterCommand::Render(a) => render::run(a, json),
    }
}
