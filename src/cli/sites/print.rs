//! How sites print: one in full (or its prompt's start), many as a table.

use crate::cli::output;
use crate::cli::output::outln;
use crate::models::Site;

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

/// How much of the prompt a human-readable site shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prompt {
    Whole,
    Start,
}

/// One site, every field, for people (or as JSON). Values pass through
/// `output::terminal_safe`; JSON carries them exactly.
pub(super) fn print_site(site: &Site, json: bool, prompt: Prompt) -> anyhow::Result<()> {
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

/// How much of the prompt `add` and `set` echo: the whole of a 50 MB prompt would bury the
/// confirmation (`sites get` shows it whole).
const PROMPT_ECHO_CHARS: usize = 500;
