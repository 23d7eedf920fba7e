use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::{
        config::Repo,
        setup::{self, SetupOptions},
    },
    cli::{ConnectionArgs, Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The repository: a directory on this host (or a mounted one).
    #[arg(long, default_value = "/var/lib/pgbackrest")]
    pub repo: PathBuf,
    /// Where pgBackRest keeps its logs, locks and archive spool.
    #[arg(long, default_value = "/var/lib/cabinet-db/pgbackrest")]
    pub state_dir: PathBuf,
}

/// Exit 0 when backups work end to end; 1 when the server must restart first (archive_mode).
pub async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let options = SetupOptions {
        config_path: config.to_owned(),
        state_dir: args.state_dir,
        repos: vec![Repo::Posix { path: args.repo }],
    };
    let report = setup::setup(args.connection.url()?, &options).await?;
    if json {
        output::print_json(&report)?;
    } else {
        outln!("wrote {} ({})", report.config.display(), report.pgbackrest_version)?;
        for change in &report.changed {
            outln!("set {change}")?;
        }
        if report.restart_needed {
            outln!(
                "archive_mode takes effect at a restart: restart PostgreSQL (e.g. sudo systemctl restart postgresql@15-main), then run cabinet-db backup setup again"
            )?;
        } else {
            outln!(
                "stanza checked: WAL archiving and backups work; take the first with cabinet-db backup run"
            )?;
        }
    }
    Ok(if report.checked { Outcome::Success } else { Outcome::CheckFailed })
}
