//! `cabinet-db cluster …`: the high-availability cluster (Patroni, etcd, HAProxy).

/// The cluster's members.
mod members;
/// `cluster render`.
pub(crate) mod render;
/// `cluster status`.
pub(crate) mod status;
/// `cluster switchover`.
pub(crate) mod switchover;

use clap::{Args, Subcommand};

use super::outcome::Outcome;

#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    pub(crate) command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Write each node's Patroni, etcd, systemd and nftables files and the client hosts' HAProxy.
    Render(render::Args),
    /// Show the members as Patroni sees them, and what is wrong (exit 1 when degraded).
    Status(status::Args),
    /// Hand the leader role to a synchronous standby through Patroni.
    Switchover(switchover::Args),
}

pub(crate) async fn run(args: ClusterArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        ClusterCommand::Render(a) => render::run(a, json),
        ClusterCommand::Status(a) => status::run(a, json).await,
        ClusterCommand::Switchover(a) => switchover::run(a, json).await,
    }
}
