//! The command line: one enum of subcommands, one file per subcommand, each with its
//! `Args` and `run`. `--help` is the configuration reference.

/// `cabinet-db audit`.
pub mod audit;
/// `cabinet-db backup …`: pgBackRest backups, restores and drills.
pub mod backup;
/// `cabinet-db cluster …`: the Patroni cluster's configuration.
pub mod cluster;
/// `cabinet-db completions SHELL`.
pub mod completions;
/// `cabinet-db config …`: the configuration file.
pub mod config;
/// `cabinet-db dev …`: the local development database.
pub mod dev;
/// How a failed command is reported: text or JSON, the PostgreSQL message once.
pub mod failure;
/// `cabinet-db history`: prune the change history.
pub mod history;
/// `cabinet-db host apply`: this Debian host brought to the designed state.
pub mod host;
/// `cabinet-db manpages` (hidden): the man pages, for packaging.
pub mod manpages;
/// `cabinet-db migrate …`: the migration runner.
pub mod migrate;
/// `cabinet-db models …`: the schema model for other languages.
pub mod models;
/// Tables for people, JSON for scripts.
pub mod output;
/// `cabinet-db roles …`: least-privilege roles.
pub mod roles;
/// `cabinet-db serve`: the admin panel.
pub mod serve;
/// `cabinet-db sites …`.
pub mod sites;
/// `cabinet-db tailnet …`: Tailscale status and rendered host configuration.
pub mod tailnet;
/// Import, export and confirmation shared by `sites` and `users`.
pub mod transfer;
/// `cabinet-db users …`.
pub mod users;

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::db::DatabaseUrl;

/// How a command ended, beyond "it failed with an error" (exit code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the command ran, and what it checks is not as it should be.
    CheckFailed,
}

/// cabinet-db: AI Cabinet's main application database (sites and users) and the tool that
/// owns its schema.
///
/// Exit codes: 0 success, 1 a check found a problem (drift, lint findings), 2 error.
#[derive(Debug, Parser)]
#[command(name = "cabinet-db", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// The configuration file: its settings are the options' defaults (a flag or an
    /// environment variable beats it). `cabinet-db config show` prints what is in effect.
    #[arg(long, global = true, env = crate::config::PATH_ENV, value_name = "PATH", default_value = crate::config::DEFAULT_PATH)]
    pub config_file: std::path::PathBuf,

    /// Log more on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply, revert, inspect and check schema migrations.
    Migrate(migrate::MigrateArgs),
    /// Run a local PostgreSQL with the schema and demo data, for development.
    Dev(dev::DevArgs),
    /// Export the schema model for other languages (SQLAlchemy models for the Python side).
    Models(models::ModelsArgs),
    /// Create and check the least-privilege roles (owner, admin panel, n8n, the main application).
    Roles(roles::RolesArgs),
    /// Read Tailscale's view of this node; render the tailnet-only host configuration.
    Tailnet(tailnet::TailnetArgs),
    /// Check exposure, privileges and contents against the design (exit 1 on a failure).
    Audit(audit::AuditArgs),
    /// Back up with pgBackRest, list backups, restore to a point in time.
    Backup(backup::BackupArgs),
    /// Add, change, find, remove, import and export sites.
    Sites(sites::SitesArgs),
    /// Find, remove, import and export users; record that a user was seen.
    Users(users::UsersArgs),
    /// Maintain the change history of sites and users (prune).
    History(history::HistoryArgs),
    /// Serve the admin panel on the tailnet, signed in by tailnet identity.
    Serve(serve::Args),
    /// Bring this Debian host to the designed state (the package's configuration file).
    Host(host::HostArgs),
    /// Run PostgreSQL highly available: Patroni, etcd and HAProxy configured for the tailnet.
    Cluster(cluster::ClusterArgs),
    /// Show the configuration in effect: each setting, its value and where it came from.
    Config(config::ConfigArgs),
    /// Print tab completion for bash, zsh or fish.
    Completions(completions::Args),
    /// Write the man pages into a directory (for packaging).
    #[command(hide = true)]
    Manpages(manpages::Args),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// PostgreSQL URL, e.g. postgres://cabinet_admin:PASSWORD@cabinet-db.tail1234.ts.net:5432/cabinet.
    /// The password is never logged or echoed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// Who makes the changes, as the history records them (default: `$USER@hostname`).
    #[arg(long, env = "CABINET_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
}

impl ConnectionArgs {
    /// A connection whose writes the history records as made by `--actor`.
    pub async fn connect(&self, application_name: &str) -> anyhow::Result<sqlx::PgConnection> {
        let actor = crate::history::Actor::for_cli(self.actor.as_deref())?;
        let mut conn = crate::db::connect(self.url()?, application_name).await?;
        crate::history::set_actor(&mut conn, &actor, false).await?;
        Ok(conn)
    }

    /// The URL given, or an error naming both ways to give one.
    pub fn url(&self) -> anyhow::Result<&DatabaseUrl> {
        self.database_url.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "no database given: set DATABASE_URL or pass --database-url, e.g. export DATABASE_URL=\"$(cabinet-db dev url --role cabinet_admin)\" on a development machine"
            )
        })
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Migrate(args) => migrate::run(args, cli.json).await,
        Command::Models(args) => models::run(args),
        Command::Dev(args) => dev::run(args, cli.json).await,
        Command::Roles(args) => roles::run(args, cli.json).await,
        Command::Tailnet(args) => tailnet::run(args, cli.json).await,
        Command::Audit(args) => audit::run(args, cli.json).await,
        Command::History(args) => history::run(args, cli.json).await,
        Command::Serve(args) => serve::run(args, cli.json).await,
        Command::Cluster(args) => cluster::run(args, cli.json).await,
        Command::Host(args) => host::run(args, cli.json).await,
        Command::Completions(args) => completions::run(args),
        Command::Config(args) => config::run(args, &cli.config_file, cli.json),
        Command::Manpages(args) => manpages::run(args),
        Command::Backup(args) => backup::run(args, cli.json).await,
        Command::Sites(args) => sites::run(args, cli.json).await,
        Command::Users(args) => users::run(args, cli.json).await,
    }
}

/// `500ms`, `30s`, `5m`, `1h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 30s, 5m"))?;
    let millis = match unit {
        "ms" => value,
        "" | "s" => value * 1_000,
        "m" | "min" => value * 60_000,
        "h" => value * 3_600_000,
        other => return Err(format!("unknown unit {other:?} in {text:?}; use ms, s, m or h")),
    };
    Ok(Duration::from_millis(millis))
}

/// A duration that clap can print as its own default.
#[derive(Debug, Clone, Copy)]
pub struct DurationArg(pub Duration);

impl std::fmt::Display for DurationArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { write!(f, "{}s", ms / 1000) } else { write!(f, "{ms}ms") }
    }
}

pub fn parse_duration_arg(text: &str) -> Result<DurationArg, String> {
    parse_duration(text).map(DurationArg)
}

/// Every `--time`, `--at`, `--before` … : the one reading of a time a person gives (RFC 3339
/// or PostgreSQL's output, a zone required, the years 1–9999, a leap second read as PostgreSQL
/// reads it — the next minute), the same the import uses.
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::models::timestamps::parse_in_range(text).map_err(|reason| format!("{text:?} {reason}"))
}

/// Every port option: 1–65535. (0 would ask the system for any free port — nothing a client,
/// a firewall rule or pg_hba could be told.)
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a TCP port: give a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// The migrations directory option shared by the migrate subcommands.
#[derive(Debug, Clone, Args)]
pub struct MigrationsDirArgs {
    /// Read migrations from this directory instead of the ones built into the binary
    /// (for trying a new migration before rebuilding).
    #[arg(long, env = "CABINET_MIGRATIONS_DIR", global = true)]
    pub migrations_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
