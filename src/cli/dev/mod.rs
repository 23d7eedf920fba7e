//! `cabinet-db dev`: the local development database.

mod down;
mod env;
mod status;
mod up;
mod url;

use crate::cli::output::outln;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::outcome::Outcome;
use crate::dev::default_data_dir;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    #[command(subcommand)]
    pub(crate) command: DevCommand,
    /// Where the cluster lives [default: /var/lib/cabinet-db/dev as root, else
    /// ~/.local/state/cabinet-db/dev].
    #[arg(long, env = "CABINET_DEV_DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Create (first time), start, migrate and seed the local database; idempotent.
    Up(up::Args),
    /// Stop the local database (its data stays).
    Down(down::Args),
    /// Show whether it runs, its URL, version, tables and demo rows.
    Status(status::Args),
    /// Print its connection URL (with the password): export DATABASE_URL="$(cabinet-db dev url)".
    Url(url::Args),
    /// Print `export` lines for a shell: eval "$(cabinet-db dev env)".
    Env(env::Args),
}

pub(crate) async fn run(args: DevArgs, json: bool) -> anyhow::Result<Outcome> {
    let dir = args.data_dir.unwrap_or_else(default_data_dir);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    match args.command {
        DevCommand::Up(a) => up::run(a, &dir, json).await,
        DevCommand::Down(a) => down::run(a, &dir, json).await,
        DevCommand::Status(a) => status::run(a, &dir, json).await,
        DevCommand::Url(a) => url::run(a, &dir).await,
        DevCommand::Env(a) => env::run(a, &dir).await,
    }
}

/// The report as people read it.
fn print_report(report: &crate::dev::DevReport) -> std::io::Result<()> {
    for action in &report.actions {
        outln!("- {action}")?;
    }
    outln!("data dir:   {}", report.data_dir.display())?;
    outln!("server:     {} as user {}", report.server_binaries, report.server_user)?;
    if !report.running {
        outln!("state:      stopped (cabinet-db dev up starts it)")?;
        return Ok(());
    }
    if let Some(url) = &report.database_url {
        outln!("state:      running on 127.0.0.1:{}", report.port)?;
        outln!(
            "database:   {url} (password in {}/superuser.password; `cabinet-db dev url` prints the full URL)",
            report.data_dir.display()
        )?;
    }
    if !report.role_urls.is_empty() {
        let roles: Vec<&str> = report.role_urls.keys().map(String::as_str).collect();
        outln!(
            "roles:      {} (`cabinet-db dev url --role NAME`; passwords in {}/secrets)",
            roles.join(", "),
            report.data_dir.display()
        )?;
    }
    if let Some(config) = &report.backup_config {
        outln!("backups:    {} (eval \"$(cabinet-db dev env)\" for the backup commands)", config.display())?;
    }
    match report.migration_version {
        Some(v) => outln!("migrations: at {v:04} of {:04}", report.migration_head)?,
        None => outln!("migrations: none applied")?,
    }
    if !report.tables.is_empty() {
        outln!()?;
        let rows: Vec<Vec<String>> =
            report.tables.iter().map(|t| vec![t.table.clone(), t.rows.to_string()]).collect();
        super::output::print_table(&["table", "rows"], &rows)?;
    }
    if !report.sites.is_empty() {
        outln!()?;
        super::sites::print_sites(&report.sites)?;
    }
    Ok(())
}
