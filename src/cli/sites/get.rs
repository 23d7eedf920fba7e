use anyhow::bail;
use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome},
    models::SiteId,
    sites,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The site_id.
    #[arg(required_unless_present = "domain", conflicts_with = "domain")]
    pub(crate) site_id: Option<String>,
    /// Find the site by its domain instead (any case).
    #[arg(long)]
    pub(crate) domain: Option<String>,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let (site, wanted) = match (&args.site_id, &args.domain) {
        (Some(id), _) => (sites::get(&mut conn, &SiteId::parse(id)?).await?, format!("site_id {id:?}")),
        (None, Some(domain)) => {
            (sites::get_by_domain(&mut conn, domain).await?, format!("domain {domain:?}"))
        }
        (None, None) => unreachable!("clap requires one"),
    };
    match site {
        Some(site) => super::print::print_site(&site, json, super::print::Prompt::Whole)?,
        None => bail!("no site with {wanted}; cabinet-db sites list shows the existing ones"),
    }
    Ok(Outcome::Success)
}
