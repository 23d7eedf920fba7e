use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output},
    dev,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// TCP port on 127.0.0.1 [default: the last one used, else 54320].
    #[arg(long, value_parser = crate::cli::args::parse_port)]
    pub(crate) port: Option<u16>,
    /// Also back it up: a pgBackRest repository under the data directory, WAL archiving on, a
    /// first full backup (then try `cabinet-db backup restore --time …`; see README).
    #[arg(long)]
    pub(crate) backups: bool,
}

pub(crate) async fn run(args: Args, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = dev::up(dir, args.port, args.backups).await?;
    if json {
        output::print_json(&report)?;
    } else {
        super::report::print_report(&report)?;
    }
    Ok(Outcome::Success)
}
