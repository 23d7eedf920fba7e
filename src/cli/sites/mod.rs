//! `cabinet-db sites`: add, change, find and remove sites; import and export them.

mod add;
mod get;
mod history;
mod list;
mod restore;
mod revert;
mod rm;
mod set;
mod show;

use crate::cli::output::outln;
use clap::{Args, Subcommand};

use super::{
    outcome::Outcome,
    output,
    transfer::{self, ExportArgs, ImportArgs},
};
use crate::{models::Site, transfer::Table};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cabinet-db sites add acme --domain shop.acme.com --language de --brand-name ACME
  cabinet-db sites get acme
  cabinet-db sites get --domain shop.acme.com
  cabinet-db sites set acme --brand-name \"ACME GmbH\" --ai-prompt-file prompt.txt
  cabinet-db sites set acme --clear hubspot_stage
  cabinet-db sites rm acme --yes
  cabinet-db sites set acme --ai-prompt-file prompt.txt --expect-version 7 --actor alice@example.com
  cabinet-db sites history acme --diff
  cabinet-db sites show acme --version 3
  cabinet-db sites revert acme --to 3 --yes
  cabinet-db sites restore acme                # after sites rm
  cabinet-db sites export --out sites.csv; cabinet-db sites import sites.csv

Connect with --database-url or DATABASE_URL, e.g. the cabinet_admin role's URL
(on a dev machine: export DATABASE_URL=\"$(cabinet-db dev url --role cabinet_admin)\").")]
pub(crate) struct SitesArgs {
    #[command(subcommand)]
    pub(crate) command: SitesCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SitesCommand {
    /// List sites, ordered by site_id, a page at a time.
    List(list::Args),
    /// Show one site, by site_id or --domain.
    Get(get::Args),
    /// Create a site.
    Add(add::Args),
    /// Change some fields of a site (the others stay).
    Set(set::Args),
    /// Delete a site.
    Rm(rm::Args),
    /// Every recorded change of a site: version, when, who, which fields (`--diff`: what).
    History(history::Args),
    /// A site as one version left it.
    Show(show::Args),
    /// Put an earlier version back (a new version that names it).
    Revert(revert::Args),
    /// Bring a deleted site back as it was before its deletion.
    Restore(restore::Args),
    /// Load sites from CSV or JSON Lines (all or nothing).
    Import(ImportArgs),
    /// Write all sites as CSV or JSON Lines.
    Export(ExportArgs),
}

pub(crate) async fn run(args: SitesArgs, json: bool) -> anyhow::Result<Outcome> {
    match args.command {
        SitesCommand::List(a) => list::run(a, json).await,
        SitesCommand::Get(a) => get::run(a, json).await,
        SitesCommand::Add(a) => add::run(a, json).await,
        SitesCommand::Set(a) => set::run(a, json).await,
        SitesCommand::Rm(a) => rm::run(a, json).await,
        SitesCommand::History(a) => history::run(a, json).await,
        SitesCommand::Show(a) => show::run(a, json).await,
        SitesCommand::Revert(a) => revert::run(a, json).await,
        SitesCommand::Restore(a) => restore::run(a, json).await,
        SitesCommand::Import(a) => transfer::run_import(Table::Sites, a, json).await,
        SitesCommand::Export(a) => transfer::run_export(Table::Sites, a).await,
    }
}

/// Sites as a table for people: the identifying fields, not the prompts.
pub(crate) fn print_sites(sites: &[Site]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = sites
        .iter()
        .map(|s| {
            vec![
                s.site_id.clone(),
                s.domain.clone(),
                s.language.clone(),
                s.brand_name.clone().unwrap_or_default(),
                s.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    output::print_table(&["site_id", "domain", "language", "brand_name", "created_at"], &rows)
}

/// How much of the prompt `add` and `set` echo: the whole of a 50 MB prompt would bury the
/// confirmation (`sites get` shows it whole).
const PROMPT_ECHO_CHARS: usize = 500;

/// How much of the prompt a human-readable site shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    Whole,
    Start,
}

/// One site, every field, for people (or as JSON). Values pass through
/// [`output::terminal_safe`]; JSON carries them exactly.
fn print_site(site: &Site, json: bool, prompt: Prompt) -> anyhow::Result<()> {
    if json {
        return output::print_json(site);
    }
    let show = |v: &Option<String>| match v {
        Some(v) => output::terminal_safe(v, false).into_owned(),
        None => "(none)".to_owned(),
    };
    let safe = |v: &str| output::terminal_safe(v, false).into_owned();
    outln!("site_id:          {}", safe(&site.site_id))?;
    outln!("domain:           {}", site.domain)?;
    outln!("language:         {}", site.language)?;
    outln!("brand_name:       {}", show(&site.brand_name))?;
    outln!("ai_script_id:     {}", show(&site.ai_script_id))?;
    outln!("hubspot_pipeline: {}", show(&site.hubspot_pipeline))?;
    outln!("hubspot_stage:    {}", show(&site.hubspot_stage))?;
    outln!("created_at:       {}", site.created_at.to_rfc3339())?;
    outln!(
        "version:          {} (cabinet-db sites history {} lists them)",
        site.version,
        safe(&site.site_id)
    )?;
    let Some(text) = &site.ai_prompt else {
        outln!("ai_prompt:        (none)")?;
        return Ok(());
    };
    let chars = text.chars().count();
    if prompt == Prompt::Start && chars > PROMPT_ECHO_CHARS {
        let start: String = text.chars().take(PROMPT_ECHO_CHARS).collect();
        outln!("ai_prompt ({chars} characters; the first {PROMPT_ECHO_CHARS}, `sites get` shows all):")?;
        outln!("{}…", output::terminal_safe(&start, true))?;
    } else {
        outln!("ai_prompt:")?;
        outln!("{}", output::terminal_safe(text, true))?;
    }
    Ok(())
}

/// The optional fields `add` and `set` share.
#[derive(Debug, Args)]
pub(crate) struct OptionalFields {
    /// The brand shown to visitors.
    #[arg(long)]
    pub(crate) brand_name: Option<String>,
    /// Which AI script or version serves the site.
    #[arg(long)]
    pub(crate) ai_script_id: Option<String>,
    /// The system prompt.
    #[arg(long, conflicts_with = "ai_prompt_file")]
    pub(crate) ai_prompt: Option<String>,
    /// Read the system prompt from a file (for long prompts).
    #[arg(long)]
    pub(crate) ai_prompt_file: Option<std::path::PathBuf>,
    /// Target HubSpot pipeline id.
    #[arg(long)]
    pub(crate) hubspot_pipeline: Option<String>,
    /// Target HubSpot stage id; the site needs a pipeline.
    #[arg(long)]
    pub(crate) hubspot_stage: Option<String>,
}

impl OptionalFields {
    /// `--ai-prompt TEXT`, or the contents of `--ai-prompt-file FILE`.
    fn prompt(&self) -> anyhow::Result<Option<String>> {
        match (&self.ai_prompt, &self.ai_prompt_file) {
            (Some(text), _) => Ok(Some(text.clone())),
            (None, Some(path)) => Ok(Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            )),
            (None, None) => Ok(None),
        }
    }
}
