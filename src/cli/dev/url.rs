use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output::outln},
    dev,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// A login role's URL instead of the superuser's: cabinet_admin, cabinet_n8n or cabinet_app.
    #[arg(long)]
    pub(crate) role: Option<String>,
}

/// Prints a URL, password included (percent-encoded), for
/// `export DATABASE_URL="$(cabinet-db dev url)"`.
pub(crate) async fn run(args: Args, dir: &Path) -> anyhow::Result<Outcome> {
    let url = dev::url(dir, args.role.as_deref())?;
    outln!("{}", url.expose())?;
    Ok(Outcome::Success)
}
