use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::{
    cli::{ConnectionArgs, Outcome},
    db,
    models::{Domain, LanguageTag, SiteId},
    sites::{self, NewSite},
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The new site's id, e.g. acme.
    pub site_id: String,
    /// Its domain, e.g. shop.acme.com (stored lower-case).
    #[arg(long)]
    pub domain: String,
    /// The language of its AI (BCP 47: en, de, pt-BR).
    #[arg(long, default_value = "en")]
    pub language: String,
    /// The brand shown to visitors.
    #[arg(long)]
    pub brand_name: Option<String>,
    /// Which AI script or version serves the site.
    #[arg(long)]
    pub ai_script_id: Option<String>,
    /// The system prompt.
    #[arg(long, conflicts_with = "ai_prompt_file")]
    pub ai_prompt: Option<String>,
    /// Read the system prompt from a file.
    #[arg(long)]
    pub ai_prompt_file: Option<PathBuf>,
    /// Target HubSpot pipeline id.
    #[arg(long)]
    pub hubspot_pipeline: Option<String>,
    /// Target HubSpot stage id; needs --hubspot-pipeline.
    #[arg(long)]
    pub hubspot_stage: Option<String>,
}

pub async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site = NewSite {
        site_id: SiteId::parse(&args.site_id)?,
        domain: Domain::parse(&args.domain)?,
        language: LanguageTag::parse(&args.language)?,
        ai_prompt: super::read_prompt(args.ai_prompt, args.ai_prompt_file.as_deref())?,
        ai_script_id: args.ai_script_id,
        brand_name: args.brand_name,
        hubspot_pipeline: args.hubspot_pipeline,
        hubspot_stage: args.hubspot_stage,
    };
    let mut conn = db::connect(&args.connection.database_url, "cabinet-db sites").await?;
    let created = sites::create(&mut conn, &site).await?;
    if !json {
        println!("created site {}", created.site_id);
    }
    super::print_site(&created, json)?;
    Ok(Outcome::Success)
}
