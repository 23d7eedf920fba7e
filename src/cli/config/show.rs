use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output, output::outln, output::terminal_safe},
    config,
};

/// Example:
///   cabinet-db config show
///   cabinet-db --config-file ./staging.toml config show --json
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args, cli: &clap::Command, path: &Path, json: bool) -> anyhow::Result<Outcome> {
    let file = config::read(path)?;
    let settings = config::effective(&file, cli, |name| std::env::var(name).ok());
    if json {
        output::print_json(&serde_json::json!({ "file": file.path, "settings": settings }))?;
        return Ok(Outcome::Success);
    }
    match &file.path {
        Some(path) => outln!("configuration file: {}", terminal_safe(&path.display().to_string(), false))?,
        None => outln!("configuration file: none ({} does not exist)", config::DEFAULT_PATH)?,
    }
    let rows: Vec<Vec<String>> =
        settings.iter().map(|s| vec![s.key.to_owned(), s.values.join(", "), s.source.to_string()]).collect();
    output::print_table(&["SETTING", "VALUE", "FROM"], &rows)?;
    Ok(Outcome::Success)
}
