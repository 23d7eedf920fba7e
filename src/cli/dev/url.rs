use std::path::Path;

use anyhow::bail;
use clap::Args as ClapArgs;

use crate::{cli::Outcome, local_cluster::dev};

#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Prints the superuser URL, password included, for `export DATABASE_URL="$(cabinet-db dev url)"`.
pub async fn run(_args: Args, dir: &Path) -> anyhow::Result<Outcome> {
    let report = dev::status(dir).await?;
    let Some(url) = report.database_url else {
        bail!(
            "the development database in {} is not running; start it with cabinet-db dev up",
            dir.display()
        );
    };
    println!("{}", url.expose());
    Ok(Outcome::Success)
}
