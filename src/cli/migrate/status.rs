use crate::cli::output::outln;
use clap::Args as ClapArgs;

use crate::{
    cli::{ConnectionArgs, Outcome, output},
    migrations::{MigrationSet, runner},
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn run(args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let assessment = runner::status(args.connection.url()?, set).await?;
    if json {
        output::print_json(&assessment)?;
        return Ok(Outcome::Success);
    }
    match assessment.current {
        Some(v) => {
            let name = set.get(v).map_or("(unknown)", |m| m.name.as_str());
            outln!("current: {v:04} {name}")?;
        }
        None => outln!("current: none (no migration applied)")?,
    }
    outln!("head:    {:04}", assessment.head)?;
    if assessment.pending.is_empty() {
        outln!("pending: none")?;
    } else {
        outln!("pending:")?;
        for v in &assessment.pending {
            if let Some(m) = set.get(*v) {
                outln!("  {}", m.up.file)?;
            }
        }
    }
    for problem in &assessment.problems {
        outln!("problem: {problem}")?;
    }
    Ok(Outcome::Success)
}
