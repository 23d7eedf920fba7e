use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    cli::{Outcome, output},
    local_cluster::dev,
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// TCP port on 127.0.0.1 [default: the last one used, else 54320].
    #[arg(long)]
    pub port: Option<u16>,
}

pub async fn run(args: Args, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = dev::up(dir, args.port).await?;
    if json {
        output::print_json(&report)?;
    } else {
        super::print_report(&report)?;
    }
    Ok(Outcome::Success)
}
