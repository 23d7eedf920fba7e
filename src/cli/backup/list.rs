use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::run,
    cli::{outcome::Outcome, output, output::outln},
    db::DatabaseUrl,
    models::timestamps,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The live server (for the latest archived time), e.g. as DATABASE_URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<DatabaseUrl>,
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
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
    if listing.holes.is_empty() {
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
    } else {
        // Broken at each hole: a restore cannot replay across one.
        outln!()?;
        let mut repos: Vec<u32> = listing.windows.iter().map(|w| w.repo).collect();
        repos.dedup();
        for repo in repos {
            let stretches: Vec<String> = listing
                .windows
                .iter()
                .filter(|w| w.repo == repo)
                .map(|w| {
                    let to = match (&w.to_wal, w.to) {
                        (Some(wal), _) => format!("the end of WAL segment {wal}, where a hole begins (its time: cabinet-db backup restore --end-of-continuous-wal says it)"),
                        (None, Some(to)) => format!("{} (the present, while the server runs)", timestamps::format(to)),
                        (None, None) => "the present".to_owned(),
                    };
                    format!("from {} to {to}", time(w.from))
                })
                .collect();
            outln!("recoverable (repo{repo}): {}", stretches.join(", then "))?;
        }
        for hole in &listing.holes {
            let before = hole.before.as_deref().unwrap_or("the last segment the server reports archived");
            outln!(
                "hole: repo{}: a hole after {}: WAL up to {before} is missing; {}",
                hole.repo,
                hole.after,
                hole.remedy()
            )?;
        }
    }
    for unlisted in &listing.unlisted {
        outln!("not checked for holes: {unlisted}")?;
    }
    Ok(Outcome::Success)
}
