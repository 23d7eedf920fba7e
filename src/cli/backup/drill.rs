use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::{
        config::BackupConfig,
        drill::{self, DrillOptions},
    },
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Where the scratch copy is restored [default: the backup state directory].
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// The repository to restore from [default: 1, the local one].
    #[arg(long, value_name = "N")]
    pub(crate) repo: Option<u32>,
}

/// Exit 0 when the restored copy equals the live database at the restore point; 1 otherwise.
pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => BackupConfig::read(config)?.state_dir,
    };
    let options = DrillOptions {
        config_path: config.to_owned(),
        live: args.connection.url()?.clone(),
        work_dir,
        repo: args.repo,
    };
    let record = drill::drill(&options).await?;
    if json {
        output::print_json(&record)?;
    } else {
        for (live, restored) in record.live.iter().zip(&record.restored) {
            outln!(
                "{:<6} live {} rows, restored {} rows, checksums {}",
                live.table,
                live.rows,
                restored.rows,
                if live == restored { "equal" } else { "DIFFER" }
            )?;
        }
        if let Some(seconds) = record.seconds_to_recovery {
            outln!("time to recovery: {seconds:.1} s (restore to the first query on the promoted copy)")?;
        }
        for problem in &record.problems {
            outln!("problem: {problem}")?;
        }
        outln!("drill {}: recorded", if record.passed { "passed" } else { "FAILED" })?;
    }
    Ok(if record.passed { Outcome::Success } else { Outcome::CheckFailed })
}
