use clap::Args as ClapArgs;

use super::fields::OptionalFields;
use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome},
    models::{Domain, LanguageTag, SiteId},
    sites::{self, NewSite},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The new site's id, e.g. acme.
    pub(crate) site_id: String,
    /// Its domain, e.g. shop.acme.com (stored lower-case).
    #[arg(long)]
    pub(crate) domain: String,
    /// The language of its AI (BCP 47: en, de, pt-BR).
    #[arg(long, default_value = "en")]
    pub(crate) language: String,
    #[command(flatten)]
    pub(crate) fields: OptionalFields,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site = NewSite {
        site_id: SiteId::parse(&args.site_id)?,
        domain: Domain::parse(&args.domain)?,
        language: LanguageTag::parse(&args.language)?,
        ai_prompt: args.fields.prompt()?,
        ai_script_id: args.fields.ai_script_id,
        brand_name: args.fields.brand_name,
        hubspot_pipeline: args.fields.hubspot_pipeline,
        hubspot_stage: args.fields.hubspot_stage,
    };
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let created = sites::create(&mut conn, None, &site).await?;
    if !json {
        outln!("created site {}", created.site_id)?;
    }
    super::print::print_site(&created, json, super::print::Prompt::Start)?;
    Ok(Outcome::Success)
}
