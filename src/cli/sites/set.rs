use anyhow::bail;
use clap::{Args as ClapArgs, ValueEnum};

use super::fields::OptionalFields;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome},
    models::{Domain, LanguageTag, SiteId},
    sites::{self, SitePatch},
};

/// Optional fields `--clear` can empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum Clearable {
    AiScriptId,
    AiPrompt,
    BrandName,
    HubspotPipeline,
    HubspotStage,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The site to change.
    pub(crate) site_id: String,
    /// New domain, e.g. shop.acme.com (stored lower-case).
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// New language of its AI (BCP 47: en, de, pt-BR).
    #[arg(long)]
    pub(crate) language: Option<String>,
    #[command(flatten)]
    pub(crate) fields: OptionalFields,
    /// Empty an optional field (repeatable).
    #[arg(long, value_enum)]
    pub(crate) clear: Vec<Clearable>,
    /// Change it only if it is still at this version (what `sites get` showed): otherwise
    /// nothing is written and the error says who changed what since.
    #[arg(long, value_name = "N")]
    pub(crate) expect_version: Option<i64>,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let given = [
        (Clearable::AiScriptId, args.fields.ai_script_id.is_some()),
        (Clearable::AiPrompt, args.fields.ai_prompt.is_some() || args.fields.ai_prompt_file.is_some()),
        (Clearable::BrandName, args.fields.brand_name.is_some()),
        (Clearable::HubspotPipeline, args.fields.hubspot_pipeline.is_some()),
        (Clearable::HubspotStage, args.fields.hubspot_stage.is_some()),
    ];
    if let Some((field, _)) = given.iter().find(|(field, set)| *set && args.clear.contains(field)) {
        let name = field.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
        bail!(
            "{name} is both set and cleared; give either --{} VALUE or --clear {name}, not both",
            name.replace('_', "-")
        );
    }
    let set_or_clear = |value: Option<String>, field: Clearable| {
        if args.clear.contains(&field) { Some(None) } else { value.map(Some) }
    };
    let patch = SitePatch {
        domain: args.domain.as_deref().map(Domain::parse).transpose()?,
        language: args.language.as_deref().map(LanguageTag::parse).transpose()?,
        ai_prompt: set_or_clear(args.fields.prompt()?, Clearable::AiPrompt),
        brand_name: set_or_clear(args.fields.brand_name.clone(), Clearable::BrandName),
        ai_script_id: set_or_clear(args.fields.ai_script_id.clone(), Clearable::AiScriptId),
        hubspot_pipeline: set_or_clear(args.fields.hubspot_pipeline.clone(), Clearable::HubspotPipeline),
        hubspot_stage: set_or_clear(args.fields.hubspot_stage.clone(), Clearable::HubspotStage),
    };
    if patch.is_empty() {
        bail!("nothing to change: give at least one field, e.g. --brand-name \"ACME\" (see --help)");
    }
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    match sites::update(&mut conn, None, &site_id, &patch, args.expect_version).await? {
        Some(site) => super::print::print_site(&site, json, super::print::Prompt::Start)?,
        None => {
            bail!("no site with site_id {:?}; cabinet-db sites list shows the existing ones", args.site_id)
        }
    }
    Ok(Outcome::Success)
}
