use clap::Args as ClapArgs;

use super::options::RoleOptions;
use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    roles::apply,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The login role, e.g. cabinet_n8n.
    pub(crate) role: String,
    #[command(flatten)]
    pub(crate) options: RoleOptions,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let report = apply::rotate(
        args.options.connection.url()?,
        &args.options.roles(),
        &args.role,
        &args.options.sources(),
    )
    .await?;
    if json {
        output::print_json(&report)?;
    } else {
        match &report.password_file {
            Some(path) => outln!("new password for {} written to {} (0600)", report.role, path.display())?,
            None => outln!("set the supplied password for {}", report.role)?,
        }
        outln!("update the client's credentials (n8n: Credentials > Postgres) before it reconnects")?;
    }
    Ok(Outcome::Success)
}
