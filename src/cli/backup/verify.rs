use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::verify,
    cli::{outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Only this repository [default: each].
    #[arg(long, value_name = "N")]
    pub(crate) repo: Option<u32>,
}

/// Exit 0 when every file checks out and the WAL reaches the present; 1 naming what does not.
pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = verify::verify(config, args.repo)?;
    if json {
        output::print_json(&report)?;
        return Ok(if report.ok { Outcome::Success } else { Outcome::CheckFailed });
    }
    for repo in &report.repos {
        if repo.ok {
            outln!("repo{}: every backup and archived WAL file matches its checksum", repo.repo)?;
        }
        for problem in repo.problems() {
            outln!("{problem}")?;
        }
        for gap in repo.gaps.iter().filter(|g| g.behind_newest_backup) {
            outln!("note: {}", gap.explain())?;
        }
        if !repo.damaged.is_empty() {
            outln!("{}", repo.summary)?;
        }
    }
    if !report.ok {
        outln!(
            "take a new full backup (cabinet-db backup run --type full): restores from a damaged backup fail, and none crosses missing WAL"
        )?;
    }
    Ok(if report.ok { Outcome::Success } else { Outcome::CheckFailed })
}
