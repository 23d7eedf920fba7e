//! `cabinet-db roles`: least-privilege roles as code.

mod apply;
mod options;
mod rotate;

use clap::{Args, Subcommand};

use super::outcome::Outcome;

#[derive(Debug, Args)]
pub(crate) struct RolesArgs {
    #[command(subcommand)]
    pub(crate) command: RolesCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RolesCommand {
    /// Create or correct cabinet_owner, cabinet_admin, cabinet_n8n and cabinet_app and every grant
    /// (idempotent; run as a superuser, after `migrate up`).
    Apply(apply::Args),
    /// Give a login role a new password.
    Rotate(rotate::Args),
}

pub(crate) async fn run(args: RolesArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        RolesCommand::Apply(a) => apply::run(a, json).await,
        RolesCommand::Rotate(a) => rotate::run(a, json).await,
    }
}
