//! `cabinet-db sites`: add, change, find and remove sites; import and export them.

mod add;
/// The site fields `add` and `set` take.
mod fields;
mod get;
mod history;
mod list;
/// How sites print.
pub(crate) mod print;
mod restore;
mod revert;
mod rm;
mod set;
mod show;

use clap::{Args, Subcommand};

use super::{
    outcome::Outcome,
    transfer::{self, ExportArgs, ImportArgs},
};
use crate::transfer::Table;

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
