use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::verify,
    cli::{Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Exit 0 when every file checks out, 1 naming each damaged one.
pub async fn run(_args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = verify::verify(config)?;
    if json {
        output::print_json(&report)?;
    } else if report.ok {
        outln!("every backup and archived WAL file matches its checksum")?;
    } else {
        for file in &report.damaged {
            outln!("damaged: {file}")?;
        }
        outln!("{}", report.summary)?;
        outln!(
            "take a new full backup (cabinet-db backup run --type full): restores from the damaged backup will fail"
        )?;
    }
    Ok(if report.ok { Outcome::Success } else { Outcome::CheckFailed })
}
