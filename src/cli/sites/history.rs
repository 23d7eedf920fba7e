use clap::Args as ClapArgs;
use similar::{ChangeTag, TextDiff};

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln},
    history,
    models::SiteId,
    models::change::SiteChange,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The site (also one that was deleted).
    pub(crate) site_id: String,
    /// Show what each version changed: old → new for short fields, a line diff of ai_prompt.
    #[arg(long)]
    pub(crate) diff: bool,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let changes = history::site_history(&mut conn, &site_id).await?;
    if changes.is_empty() {
        anyhow::bail!(
            "no history for site {:?}: there never was such a site (or its history was pruned)",
            args.site_id
        );
    }
    if json {
        output::print_json(&changes)?;
        return Ok(Outcome::Success);
    }
    let safe = |v: &str| output::terminal_safe(v, false).into_owned();
    for change in &changes {
        let restores = match (change.restores_version, change.merges_version) {
            (Some(v), _) => format!(" (restores version {v})"),
            (None, Some(v)) => {
                format!(" (merges an edit made on version {v} with version {})", change.version - 1)
            }
            (None, None) => String::new(),
        };
        outln!(
            "version {}  {}  {}  by {} as {}{}",
            change.version,
            change.changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            change.operation,
            safe(&change.actor),
            safe(&change.session_role),
            restores
        )?;
        if !change.changed_fields.is_empty() {
            outln!("  fields: {}", change.changed_fields.join(", "))?;
        }
        if args.diff {
            print_diff(change)?;
        }
    }
    Ok(Outcome::Success)
}

/// Old → new for each changed field; a line diff for the prompt.
fn print_diff(change: &SiteChange) -> anyhow::Result<()> {
    let field = |row: &Option<serde_json::Value>, name: &str| -> Option<String> {
        row.as_ref()?.get(name).and_then(|v| v.as_str().map(str::to_owned))
    };
    let show = |v: &Option<String>| match v {
        Some(v) => output::terminal_safe(v, false).into_owned(),
        None => "(none)".to_owned(),
    };
    for name in &change.changed_fields {
        let (old, new) = (field(&change.old_row, name), field(&change.new_row, name));
        if name == "ai_prompt" {
            outln!("  ai_prompt:")?;
            let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
            for line in TextDiff::from_lines(&old, &new).iter_all_changes() {
                let sign = match line.tag() {
                    ChangeTag::Delete => "-",
                    ChangeTag::Insert => "+",
                    ChangeTag::Equal => " ",
                };
                outln!("    {sign} {}", output::terminal_safe(line.value().trim_end_matches('\n'), false))?;
            }
        } else {
            outln!("  {name}: {} → {}", show(&old), show(&new))?;
        }
    }
    Ok(())
}
