use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    migrations::{MigrationSet, lint},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let findings = lint::lint(set);
    if json {
        output::print_json(&findings)?;
    } else {
        for f in &findings {
            outln!("{f}")?;
        }
        let scripts = set.iter().count() * 2;
        outln!("{} finding(s) in {scripts} scripts ({})", findings.len(), set.origin())?;
    }
    Ok(if findings.is_empty() { Outcome::Success } else { Outcome::CheckFailed })
}
