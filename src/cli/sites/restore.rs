use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln},
    history,
    models::SiteId,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The deleted site to bring back, as it was just before its deletion.
    pub(crate) site_id: String,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let version = history::restore_site(&mut conn, None, &site_id).await?;
    if json {
        output::print_json(&serde_json::json!({ "site_id": args.site_id, "version": version }))?;
    } else {
        outln!("{} is back, as version {version}", output::terminal_safe(&args.site_id, false))?;
    }
    Ok(Outcome::Success)
}
