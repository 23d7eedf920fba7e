use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output},
    dev,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {}

pub(crate) async fn run(_args: Args, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = dev::status(dir).await?;
    if json {
        output::print_json(&report)?;
    } else {
        super::report::print_report(&report)?;
    }
    Ok(Outcome::Success)
}
