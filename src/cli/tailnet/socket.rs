//! Where tailscaled's LocalAPI socket is, as the tailnet subcommands take it.

use std::path::PathBuf;

use clap::Args;

use crate::tailnet::localapi::DEFAULT_SOCKET;

/// tailscaled's LocalAPI socket.
#[derive(Debug, Clone, Args)]
pub(crate) struct SocketArgs {
    /// tailscaled's LocalAPI socket.
    #[arg(long, env = "TAILSCALE_SOCKET", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
}
