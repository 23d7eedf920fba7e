use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::run::{self, Kind},
    cli::{Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// full, diff (changes since the last full) or incr (since the last backup).
    #[arg(long = "type", value_enum, default_value_t = Kind::Full)]
    pub kind: Kind,
}

pub async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let backup = run::run(config, args.kind)?;
    if json {
        output::print_json(&backup)?;
    } else {
        outln!(
            "backed up: {} ({}), {} bytes in the repository",
            backup.label,
            backup.kind,
            backup.repository_size.unwrap_or(0)
        )?;
    }
    Ok(Outcome::Success)
}
