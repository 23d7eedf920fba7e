use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::{
        BackupError,
        restore::{self, RestoreError, RestoreOptions, Target},
    },
    cli::{args::parse_time, outcome::Outcome, output, output::outln},
    db::DatabaseUrl,
};

#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["time", "lsn", "latest", "end_of_continuous_wal"])))]
pub(crate) struct Args {
    /// A new (or empty) directory for the restored cluster.
    #[arg(long, required_unless_present = "in_place", conflicts_with = "in_place")]
    pub(crate) target_dir: Option<PathBuf>,
    /// Restore over the server's own data directory instead (only with the server stopped;
    /// rewrites only what differs). Needs --yes.
    #[arg(long, requires = "yes")]
    pub(crate) in_place: bool,
    /// Confirm an in-place restore: the server's current data is replaced.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Loopback TCP port for the copy [default: a free one].
    #[arg(long, value_parser = crate::cli::args::parse_port)]
    pub(crate) port: Option<u16>,
    /// Recover to this moment (RFC 3339, e.g. 2026-11-27T09:59:00Z).
    #[arg(long, value_parser = parse_time)]
    pub(crate) time: Option<chrono::DateTime<chrono::Utc>>,
    /// Recover to this WAL position (e.g. 0/3000050).
    #[arg(long)]
    pub(crate) lsn: Option<String>,
    /// Recover everything archived. A hole in the WAL before its end (a segment missing,
    /// truncated or damaged, a timeline that does not continue) is refused (exit 1), naming the
    /// hole, the last point reachable before it and the command that restores to that point.
    #[arg(long)]
    pub(crate) latest: bool,
    /// Recover as far as the WAL runs unbroken: the end of the archive, or the first hole
    /// (which the output then names, with the point reached). For when a hole is known and
    /// the copy up to it is wanted.
    #[arg(long)]
    pub(crate) end_of_continuous_wal: bool,
    /// Restore from this repository (1 or 2).
    #[arg(long)]
    pub(crate) repo: Option<u32>,
    /// The live server, if it runs: its current WAL is archived first, so the archive reaches now.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<DatabaseUrl>,
    /// The application database, for the printed URL.
    #[arg(long, default_value = "cabinet")]
    pub(crate) database: String,
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let target = match (args.time, args.lsn, args.end_of_continuous_wal) {
        (Some(t), _, _) => Target::Time(t),
        (None, Some(lsn), _) => Target::Lsn(lsn),
        (None, None, true) => Target::ContinuousEnd,
        (None, None, false) => Target::Latest,
    };
    let Some(target_dir) = args.target_dir else {
        let data_dir = restore::restore_in_place(config, &target, args.repo)?;
        if json {
            output::print_json(&serde_json::json!({ "data_dir": data_dir, "target": target.to_string() }))?;
        } else {
            outln!(
                "restored {} in place to {target}: start PostgreSQL, which replays to the target, promotes and archives again (then take a full backup: cabinet-db backup run)",
                data_dir.display()
            )?;
        }
        return Ok(Outcome::Success);
    };
    let options = RestoreOptions {
        config_path: config.to_owned(),
        target_dir,
        port: args.port,
        target,
        repo: args.repo,
        live: args.database_url,
        database: args.database,
    };
    let report = match restore::restore(&options).await {
        Ok(report) => report,
        // A hole before the target is a verdict on the archive, like a failed check: exit 1,
        // with the point that can be reached and how.
        Err(BackupError::Restore(refusal @ RestoreError::HoleBeforeTarget { .. })) => {
            if json {
                output::print_json(&serde_json::json!({ "restored": false, "error": refusal.to_string() }))?;
            } else {
                eprintln!("error: {refusal}");
            }
            return Ok(Outcome::CheckFailed);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        output::print_json(&report)?;
    } else {
        outln!(
            "restored to {} in {:.1} s (timeline {}): a new cluster in {}, on 127.0.0.1:{}",
            report.target,
            report.seconds_to_recovery,
            report.timeline,
            report.data_dir.display(),
            report.port
        )?;
        outln!("reached: {}", report.reached.describe())?;
        if let Some(hole) = &report.hole {
            outln!(
                "stopped at a hole: {} (later times cannot be restored from these backups; take a new full backup: cabinet-db backup run --type full)",
                hole.explain()
            )?;
        }
        outln!("connect: {}", report.url.expose())?;
        outln!("it does not archive; stop it with: {}", report.stop_command)?;
    }
    Ok(Outcome::Success)
}
