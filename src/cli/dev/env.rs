use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::config::shell_quote,
    cli::{outcome::Outcome, output::outln},
    dev,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// A login role's URL as DATABASE_URL instead of the superuser's.
    #[arg(long)]
    pub(crate) role: Option<String>,
}

/// `export DATABASE_URL=…` (and `CABINET_BACKUP_CONFIG=…` once backups are set up), quoted
/// for the shell: eval "$(cabinet-db dev env)".
pub(crate) async fn run(args: Args, dir: &Path) -> anyhow::Result<Outcome> {
    let url = dev::url(dir, args.role.as_deref())?;
    outln!("export DATABASE_URL={}", shell_quote(url.expose()))?;
    let config = dev::backup_config(dir);
    if config.is_file() {
        outln!("export CABINET_BACKUP_CONFIG={}", shell_quote(&config.display().to_string()))?;
    }
    Ok(Outcome::Success)
}
