use std::path::Path;

use clap::Args as ClapArgs;

use crate::{
    backup::run::{self, Kind},
    cli::{outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// full, diff (changes since the last full) or incr (since the last backup).
    #[arg(long = "type", value_enum, default_value_t = Kind::Full)]
    pub(crate) kind: Kind,
    /// Only into this repository [default: each, one after the other].
    #[arg(long, value_name = "N")]
    pub(crate) repo: Option<u32>,
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let started = chrono::Utc::now();
    let ran = run::run(config, args.kind, args.repo);
    record(config, args.kind, started, ran.is_ok());
    let ran = ran?;
    if json {
        output::print_json(&ran)?;
    } else {
        match ran.from_standby {
            Some(true) => outln!(
                "the files came from a streaming standby (the leader only started and stopped the backup)"
            )?,
            Some(false) => outln!("no standby streams: the files came from the leader")?,
            None => {}
        }
        for backup in ran.backups {
            outln!(
                "backed up into repo{}: {} ({}), {} bytes in the repository",
                backup.repo,
                backup.label,
                backup.kind,
                backup.repository_size.unwrap_or(0)
            )?;
        }
    }
    Ok(Outcome::Success)
}

/// Records the run's outcome beside the drills' record, for `cabinet-db metrics` (the
/// schedule's last run and result). A record that cannot be written is logged: the backup
/// itself is what matters.
fn record(config: &Path, kind: Kind, started: chrono::DateTime<chrono::Utc>, succeeded: bool) {
    let Ok(backup) = crate::backup::config::BackupConfig::read(config) else { return };
    let path = backup.state_dir.join(crate::records::backup_run_file(kind.as_str()));
    let record = crate::records::RunRecord { started, finished: chrono::Utc::now(), succeeded };
    if let Err(e) = record.write(&path) {
        tracing::warn!(path = %path.display(), error = %e, "the backup run's outcome could not be recorded");
    }
}
