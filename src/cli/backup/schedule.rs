use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::schedule::{self, ScheduleInput, UnitSettings},
    cli::{outcome::Outcome, output, output::outln},
    db::DatabaseUrl,
    tailnet::render::write,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Directory to write the units to (created if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// The installed cabinet-db.
    #[arg(long, default_value = "/usr/bin/cabinet-db")]
    pub(crate) binary: PathBuf,
    /// The server's OS user: runs pgBackRest and the drill.
    #[arg(long, default_value = "postgres")]
    pub(crate) user: String,
    /// The drill's and audit's connection, as the superuser over the socket (no password in a
    /// unit file).
    #[arg(long, default_value = "postgres:///cabinet?host=/var/run/postgresql&user=postgres")]
    pub(crate) drill_database_url: DatabaseUrl,
    /// The Debian package's units: no settings in them, the commands read the configuration
    /// file (for `scripts/package`).
    #[arg(long, hide = true, conflicts_with = "drill_database_url")]
    pub(crate) packaged: bool,
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let input = ScheduleInput {
        binary: args.binary,
        config: config.to_owned(),
        user: args.user,
        settings: if args.packaged {
            UnitSettings::ConfigurationFile
        } else {
            UnitSettings::InUnits { database_url: args.drill_database_url }
        },
    };
    let files = schedule::render(&input)?;
    write(&args.out, &files)?;
    if json {
        let paths: Vec<_> = files.iter().map(|f| args.out.join(&f.path)).collect();
        output::print_json(&paths)?;
    } else {
        for file in &files {
            outln!("wrote {}", args.out.join(&file.path).display())?;
        }
        outln!(
            "install: cp {}/* /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now cabinet-db-backup-full.timer cabinet-db-backup-incr.timer cabinet-db-drill.timer cabinet-db-audit.timer cabinet-db-metrics.timer",
            args.out.display()
        )?;
    }
    Ok(Outcome::Success)
}
