use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, backup::setup::RepositoryArgs, outcome::Outcome, output, output::outln},
    host::apply::{self, ApplyOptions},
    roles::{DEFAULT_ROLE_PREFIX, Roles},
    tailnet::localapi::DEFAULT_SOCKET,
};

/// On a Debian host with postgresql-common and the cabinet-db package: find the cluster
/// (pg_lsclusters), render its files for this node's tailnet addresses and show each diff,
/// install them (client authentication checked by the server before any reload; a restart only
/// when a setting needs one), load the firewall table, then migrate, apply the roles, set up
/// backups (the first full backup and drill included), enable the panel and the timers, and
/// audit. A second run changes nothing and restarts nothing.
///
/// Rules of your own for pg_hba.conf go in /etc/cabinet-db/pg_hba.local.conf: they are placed
/// before the final rejects.
///
/// Examples:
///   cabinet-db host apply --dry-run
///   cabinet-db host apply
///   cabinet-db host apply --cluster 15/main
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Show what would change (the diffs, the steps); change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The cluster, VERSION/NAME as pg_lsclusters shows it [default: the only one].
    #[arg(long, value_name = "VERSION/NAME", env = "CABINET_HOST_CLUSTER")]
    pub(crate) cluster: Option<String>,
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Prefix of the role names.
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// Where the login roles' generated passwords are written (0600).
    #[arg(long, env = "CABINET_SECRETS_DIR", default_value = "/etc/cabinet-db/secrets")]
    pub(crate) secrets_dir: PathBuf,
    /// tailscaled's LocalAPI socket: this node's tailnet addresses and name.
    #[arg(long, env = "TAILSCALE_SOCKET", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
    /// pgBackRest's configuration, written by the backup step.
    #[arg(long, env = "CABINET_BACKUP_CONFIG", default_value = crate::backup::config::DEFAULT_CONFIG)]
    pub(crate) backup_config: PathBuf,
    #[command(flatten)]
    pub(crate) repository: RepositoryArgs,
    /// The admin panel's port (granted in the tailnet policy, checked by the audit).
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = crate::tailnet::panel::DEFAULT_PORT)]
    pub(crate) panel_port: u16,
    /// The packaged panel's OS user, let in over the socket as the admin role.
    #[arg(long, default_value = "cabinet-db", hide = true)]
    pub(crate) panel_user: String,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let options = ApplyOptions {
        cluster: args.cluster,
        database_url: args.connection.url()?.clone(),
        roles: args.role_prefix,
        secrets_dir: args.secrets_dir,
        tailscale_socket: args.socket,
        backup: args.repository.options(&args.backup_config)?,
        etc_dir: PathBuf::from("/etc/cabinet-db"),
        panel_user: args.panel_user,
        panel_port: args.panel_port,
        dry_run: args.dry_run,
    };
    let report = apply::apply(&options).await?;
    if json {
        output::print_json(&report)?;
        return Ok(Outcome::Success);
    }
    let verb = if report.dry_run { "would" } else { "did" };
    for step in &report.steps {
        for file in &step.files {
            outln!("{}", file.diff.trim_end())?;
        }
        if step.changes.is_empty() && step.files.is_empty() {
            outln!("{:<9} as designed", step.name)?;
        }
        for file in &step.files {
            outln!("{:<9} {verb} install {}", step.name, file.path.display())?;
        }
        for change in &step.changes {
            outln!("{:<9} {change}", step.name)?;
        }
    }
    if !report.changed() {
        outln!("{}: no changes", report.cluster)?;
    } else if report.dry_run {
        outln!("{}: dry run, nothing was changed", report.cluster)?;
    }
    Ok(Outcome::Success)
}
