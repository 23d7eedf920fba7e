use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    migrations::{MigrationSet, source},
};

/// The directory `new` writes to unless --migrations-dir says otherwise.
const DEFAULT_MIGRATIONS_DIR: &str = "migrations";

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// What the migration does, in lower_snake_case: add_site_notes.
    pub(crate) name: String,
    /// Mark it to run outside a transaction (for CREATE INDEX CONCURRENTLY); it may then
    /// hold only one statement.
    #[arg(long)]
    pub(crate) no_transaction: bool,
}

pub(crate) fn run(args: Args, dir: Option<&Path>, json: bool) -> anyhow::Result<Outcome> {
    if !source::is_valid_name(&args.name) {
        bail!(
            "{:?} is not a valid migration name: use lower-case letters, digits and underscores, e.g. add_site_notes",
            args.name
        );
    }
    let dir: PathBuf = dir.map_or_else(|| PathBuf::from(DEFAULT_MIGRATIONS_DIR), Path::to_owned);
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; run this in the cabinet-db source tree or pass --migrations-dir",
            dir.display()
        );
    }
    let set = MigrationSet::from_dir(&dir)?;
    let version = source::format_version(set.head() + 1);
    let marker =
        if args.no_transaction { format!("{}\n", source::NO_TRANSACTION_MARKER) } else { String::new() };
    let up = dir.join(format!("{version}_{}.up.sql", args.name));
    let down = dir.join(format!("{version}_{}.down.sql", args.name));
    std::fs::write(
        &up,
        format!("{marker}-- {version} {}: describe the change and why.\n-- Draft it with `cabinet-db migrate diff` after changing src/models/schema.rs.\n", args.name),
    )
    .with_context(|| format!("could not write {}", up.display()))?;
    std::fs::write(&down, format!("{marker}-- Reverts {version} {}.\n", args.name))
        .with_context(|| format!("could not write {}", down.display()))?;
    if json {
        output::print_json(&serde_json::json!({ "up": up, "down": down }))?;
    } else {
        outln!("created {}\ncreated {}", up.display(), down.display())?;
    }
    Ok(Outcome::Success)
}
