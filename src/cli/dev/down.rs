use std::path::Path;

use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    dev,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {}

pub(crate) async fn run(_args: Args, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let stopped = dev::down(dir).await?;
    if json {
        output::print_json(&serde_json::json!({ "stopped": stopped, "data_dir": dir }))?;
    } else if stopped {
        outln!("Stopped the development database in {}.", dir.display())?;
    } else {
        outln!("The development database in {} was not running.", dir.display())?;
    }
    Ok(Outcome::Success)
}
