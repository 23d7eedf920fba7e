//! The site fields `sites add` and `sites set` take, as options.

use clap::Args;

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
    pub(super) fn prompt(&self) -> anyhow::Result<Option<String>> {
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
