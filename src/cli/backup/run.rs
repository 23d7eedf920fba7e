use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::run::{self, Kind},
    cli::{outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// full, diff (changes since the last full) or incr (since the last backup).
    #[arg(long = "type", value_enum, default_value_t = Kind::Full)]
    pub(crate) kind: Kind,
    /// Only into this repository [default: each, one after the other].
    #[arg(long, value_name = "N")]
    pub(crate) repo: Option<u32>,
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let ran = run::run(config, args.kind, args.repo)?;
    if json {
        output::print_json(&ran)?;
    } else {
        match ran.from_standby {
            Some(true) => outln!(
                "the files came from a streaming standby (the leader only started and stopped the backup)"
            )?,
            Some(false) => outln!("no standby streams: the files came from the leader")?,
            None => {}
        }
        for backup in ran.backups {
            outln!(
                "backed up into repo{}: {} ({}), {} bytes in the repository",
                backup.repo,
                backup.label,
                backup.kind,
                backup.repository_size.unwrap_or(0)
            )?;
        }
    }
    Ok(Outcome::Success)
}
