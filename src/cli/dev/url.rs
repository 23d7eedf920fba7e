use std::path::Path;

use anyhow::bail;
use clap::Args as ClapArgs;

use crate::{cli::Outcome, local_cluster::dev};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// A login role's URL instead of the superuser's: cabinet_admin or cabinet_n8n.
    #[arg(long)]
    pub role: Option<String>,
}

/// Prints a URL, password included, for `export DATABASE_URL="$(cabinet-db dev url)"`.
pub async fn run(args: Args, dir: &Path) -> anyhow::Result<Outcome> {
    let mut report = dev::status(dir).await?;
    if !report.running {
        bail!(
            "the development database in {} is not running; start it with cabinet-db dev up",
            dir.display()
        );
    }
    let url = match &args.role {
        None => report.database_url,
        Some(role) => report.role_urls.remove(role),
    };
    let Some(url) = url else {
        bail!(
            "no login role {:?} in the development database; the login roles are {}",
            args.role.unwrap_or_default(),
            report.role_urls.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    println!("{}", url.expose());
    Ok(Outcome::Success)
}
