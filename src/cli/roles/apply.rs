use clap::Args as ClapArgs;

use super::options::RoleOptions;
use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    roles::apply,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) options: RoleOptions,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let report =
        apply::apply(args.options.connection.url()?, &args.options.roles(), &args.options.sources()).await?;
    if json {
        output::print_json(&report)?;
        return Ok(Outcome::Success);
    }
    for role in &report.created {
        outln!("created role {role}")?;
    }
    for role in &report.updated {
        outln!("checked role {role}")?;
    }
    for removed in &report.removed {
        outln!("removed {removed}")?;
    }
    for granted in &report.granted {
        outln!("granted {granted}")?;
    }
    for path in &report.password_files {
        outln!("wrote a generated password to {} (0600)", path.display())?;
    }
    for table in &report.missing_tables {
        outln!("table {table} does not exist yet: run `cabinet-db migrate up`, then `roles apply` again")?;
    }
    Ok(Outcome::Success)
}
