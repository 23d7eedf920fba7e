//! The command line: one enum of subcommands, one file per subcommand, each with its
//! `Args` and `run`. `--help` is the configuration reference.

/// What several subcommands take: the connection, durations, times, ports.
pub(crate) mod args;
/// `cabinet-db audit`.
pub(crate) mod audit;
/// `cabinet-db backup …`: pgBackRest backups, restores and drills.
pub(crate) mod backup;
/// `cabinet-db cluster …`: the Patroni cluster's configuration.
pub(crate) mod cluster;
/// `cabinet-db completions SHELL`.
pub(crate) mod completions;
/// `cabinet-db config …`: the configuration file.
pub(crate) mod config;
/// `cabinet-db dev …`: the local development database.
pub(crate) mod dev;
/// How a failed command is reported: text or JSON, the PostgreSQL message once.
pub mod failure;
/// `cabinet-db history`: prune the change history.
pub(crate) mod history;
/// `cabinet-db host apply`: this Debian host brought to the designed state.
pub(crate) mod host;
/// `cabinet-db manpages` (hidden): the man pages, for packaging.
pub(crate) mod manpages;
/// `cabinet-db metrics`.
pub(crate) mod metrics;
/// `cabinet-db migrate …`: the migration runner.
pub(crate) mod migrate;
/// `cabinet-db models …`: the schema model for other languages.
pub(crate) mod models;
/// What a command returns besides an error.
pub mod outcome;
/// Tables for people, JSON for scripts.
pub mod output;
/// `cabinet-db roles …`: least-privilege roles.
pub(crate) mod roles;
/// `cabinet-db serve`: the admin panel.
pub(crate) mod serve;
/// `cabinet-db sites …`.
pub(crate) mod sites;
/// `cabinet-db tailnet …`: Tailscale status and rendered host configuration.
pub(crate) mod tailnet;
/// Import, export and confirmation shared by `sites` and `users`.
pub(crate) mod transfer;
/// `cabinet-db users …`.
pub(crate) mod users;

use clap::{CommandFactory, Parser, Subcommand};

use outcome::Outcome;

/// cabinet-db: AI Cabinet's main application database (sites and users) and the tool that
/// owns its schema.
///
/// Exit codes: 0 success, 1 a check found a problem (drift, lint findings), 2 error.
#[derive(Debug, Parser)]
#[command(name = "cabinet-db", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// The configuration file: its settings are the options' defaults (a flag or an
    /// environment variable beats it). `cabinet-db config show` prints what is in effect.
    #[arg(long, global = true, env = crate::config::PATH_ENV, value_name = "PATH", default_value = crate::config::DEFAULT_PATH)]
    pub(crate) config_file: std::path::PathBuf,

    /// Log more on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Print the metrics only cabinet-db knows, in Prometheus' text format.
    Metrics(metrics::Args),
    /// Print tab completion for bash, zsh or fish.
    Completions(completions::Args),
    /// Write the man pages into a directory (for packaging).
    #[command(hide = true)]
    Manpages(manpages::Args),
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
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::Config(args) => config::run(args, &Cli::command(), &cli.config_file, cli.json),
        Command::Manpages(args) => manpages::run(args, Cli::command()),
        Command::Metrics(args) => metrics::run(args).await,
        Command::Backup(args) => backup::run(args, cli.json).await,
        Command::Sites(args) => sites::run(args, cli.json).await,
        Command::Users(args) => users::run(args, cli.json).await,
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_panel_pool_of_no_connections_is_refused() {
        assert!(Cli::try_parse_from(["cabinet-db", "serve", "--pool-size", "0"]).is_err());
        assert!(Cli::try_parse_from(["cabinet-db", "serve", "--pool-size", "1"]).is_ok());
    }
}
