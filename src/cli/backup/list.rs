use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::run,
    cli::{Outcome, output, output::outln},
    db::DatabaseUrl,
    models::timestamps,
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The live server (for the latest archived time), e.g. as DATABASE_URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
}

pub async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let listing = run::list(config, args.database_url.as_ref()).await?;
    if json {
        output::print_json(&listing)?;
        return Ok(Outcome::Success);
    }
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(timestamps::format).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = listing
        .catalog
        .backups
        .iter()
        .map(|b| {
            vec![
                b.label.clone(),
                b.kind.clone(),
                time(b.started),
                time(b.stopped),
                b.lsn_stop.clone().unwrap_or_default(),
                b.repository_size.map(|s| s.to_string()).unwrap_or_default(),
                b.repo.to_string(),
            ]
        })
        .collect();
    output::print_table(&["label", "type", "started", "stopped", "stop lsn", "repo bytes", "repo"], &rows)?;
    for repo in &listing.catalog.repos {
        outln!(
            "repo{}: {} (encryption: {})",
            repo.repo,
            repo.message,
            repo.cipher.as_deref().unwrap_or("unknown")
        )?;
    }
    match (listing.earliest, listing.latest) {
        (Some(earliest), Some(latest)) if latest > earliest => outln!(
            "\nrecoverable: from {} to {} (a restore while the server runs reaches the present)",
            timestamps::format(earliest),
            timestamps::format(latest)
        )?,
        (Some(earliest), _) => outln!(
            "\nrecoverable: from {} on (a restore while the server runs reaches the present)",
            timestamps::format(earliest)
        )?,
        (None, _) => outln!("\nno backups yet: cabinet-db backup run")?,
    }
    Ok(Outcome::Success)
}
