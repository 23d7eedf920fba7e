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
    let assessment = runner::status(&args.connection.database_url, set).await?;
    if json {
        output::print_json(&assessment)?;
        return Ok(Outcome::Success);
    }
    match assessment.current {
        Some(v) => {
            let name = set.get(v).map_or("(unknown)", |m| m.name.as_str());
            println!("current: {v:04} {name}");
        }
        None => println!("current: none (no migration applied)"),
    }
    println!("head:    {:04}", assessment.head);
    if assessment.pending.is_empty() {
        println!("pending: none");
    } else {
        println!("pending:");
        for v in &assessment.pending {
            if let Some(m) = set.get(*v) {
                println!("  {}", m.up.file);
            }
        }
    }
    for problem in &assessment.problems {
        println!("problem: {problem}");
    }
    Ok(Outcome::Success)
}
