use anyhow::bail;
use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, transfer::confirm},
    models::SiteId,
    sites,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The site to delete.
    pub(crate) site_id: String,
    /// Do not ask (required when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let Some(site) = sites::get(&mut conn, &site_id).await? else {
        bail!("no site with site_id {:?}", args.site_id);
    };
    if !confirm(&format!("Delete site {} ({})?", site.site_id, site.domain), args.yes)? {
        outln!("kept site {}", site.site_id)?;
        return Ok(Outcome::Success);
    }
    let deleted = sites::delete(&mut conn, None, &site_id).await?;
    if json {
        output::print_json(&serde_json::json!({ "deleted": deleted, "site_id": site_id }))?;
    } else {
        outln!("deleted site {site_id}")?;
    }
    Ok(Outcome::Success)
}
