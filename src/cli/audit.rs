//! `cabinet-db audit`.

use std::path::PathBuf;

use clap::Args;

use super::{
    args::{ConnectionArgs, MigrationsDirArgs},
    outcome::Outcome,
    output,
};
use crate::cli::output::outln;
use crate::{
    audit::{self, AuditOptions, Verdict},
    migrations::MigrationSet,
    roles::{DEFAULT_ROLE_PREFIX, Roles},
    tailnet::localapi::DEFAULT_SOCKET,
};

/// Check exposure (listen addresses, pg_hba, Tailscale), privileges and contents; exit 0 when
/// everything passes (warnings allowed), 1 when a check fails, 2 when the audit cannot run.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// tailscaled's LocalAPI socket [default: /var/run/tailscale/tailscaled.sock, skipped
    /// with a warning when absent; a socket named here must answer].
    #[arg(long, env = "TAILSCALE_SOCKET")]
    pub(crate) socket: Option<PathBuf>,
    /// Prefix of the role names.
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// The login roles' password files (as written by `roles apply --secrets-dir`): each role's
    /// password must still be the one in its file.
    #[arg(long, env = "CABINET_SECRETS_DIR")]
    pub(crate) secrets_dir: Option<PathBuf>,
    /// pgBackRest's configuration, as written by `backup setup`.
    #[arg(long, env = "CABINET_BACKUP_CONFIG", default_value = crate::backup::config::DEFAULT_CONFIG)]
    pub(crate) backup_config: PathBuf,
    /// The admin panel's port (`cabinet-db serve --port`).
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = crate::tailnet::panel::DEFAULT_PORT)]
    pub(crate) panel_port: u16,
    /// A Patroni member's REST API (HOST:PORT; repeatable, or comma-separated in the
    /// environment): adds the cluster checks (a leader, a streaming synchronous standby, lag,
    /// stopped members, pause).
    #[arg(
        long = "cluster-member",
        value_name = "HOST:PORT",
        env = "CABINET_CLUSTER_MEMBERS",
        value_delimiter = ','
    )]
    pub(crate) cluster_members: Vec<String>,
    /// Record the verdicts in pgBackRest's state directory (audit.json beside the drills'
    /// record) for `cabinet-db metrics` to report; the daily audit unit does.
    #[arg(long)]
    pub(crate) record: bool,
    #[command(flatten)]
    pub(crate) source: MigrationsDirArgs,
}

pub(crate) async fn run(args: AuditArgs, json: bool) -> anyhow::Result<Outcome> {
    let set = MigrationSet::load(args.source.migrations_dir.as_deref())?;
    let options = AuditOptions {
        roles: args.role_prefix,
        socket_explicit: args.socket.is_some(),
        socket: args.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        proc_root: PathBuf::from("/proc"),
        secrets_dir: args.secrets_dir,
        backup_config: args.backup_config,
        panel_port: args.panel_port,
        cluster_members: args.cluster_members,
    };
    let url = args.connection.url()?;
    // Where the record goes is known before the audit runs: a record that cannot be kept is
    // said at once, not after minutes of checks.
    let record_to = if args.record {
        let config = crate::backup::config::BackupConfig::read(&options.backup_config)?;
        Some(config.state_dir.join(crate::records::AUDIT_FILE))
    } else {
        None
    };
    let checks = audit::audit(url, &set, &options).await?;
    let overall = audit::overall(&checks);
    if let Some(path) = &record_to {
        let verdict = |v: Verdict| match v {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        };
        crate::records::AuditRecord {
            at: chrono::Utc::now(),
            checks: checks.iter().map(|c| (c.id.to_owned(), verdict(c.verdict).to_owned())).collect(),
        }
        .write(path)
        .map_err(|e| anyhow::anyhow!("cannot record the audit in {}: {e}", path.display()))?;
    }
    let skipped: Vec<&str> = checks.iter().filter(|c| c.needs_superuser).map(|c| c.id).collect();
    if json {
        output::print_json(&serde_json::json!({
            "result": overall,
            "complete": skipped.is_empty(),
            "checks": checks,
        }))?;
    } else {
        for check in &checks {
            let mark = match check.verdict {
                Verdict::Pass => "pass",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            // Details name what the database holds (role names, rules): shown escaped.
            outln!("{mark}  {:<28} {}", check.id, output::terminal_safe(&check.detail, false))?;
            if check.verdict != Verdict::Pass && !check.remedy.is_empty() {
                outln!("      {:<28} fix: {}", "", output::terminal_safe(&check.remedy, false))?;
            }
        }
        let count = |v| checks.iter().filter(|c| c.verdict == v).count();
        outln!(
            "\n{} passed, {} warnings, {} failed",
            count(Verdict::Pass),
            count(Verdict::Warn),
            count(Verdict::Fail)
        )?;
        if !skipped.is_empty() {
            let user = url.connect_options().map(|o| o.get_username().to_owned()).unwrap_or_default();
            outln!(
                "incomplete: {} check(s) need a superuser and did not run as {user}: {}",
                skipped.len(),
                skipped.join(", ")
            )?;
        }
    }
    Ok(if overall == Verdict::Fail { Outcome::CheckFailed } else { Outcome::Success })
}
