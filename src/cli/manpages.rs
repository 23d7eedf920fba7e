//! `cabinet-db manpages --out DIR` (hidden; `scripts/package` runs it): one man page per
//! command and subcommand (`cabinet-db.1`, `cabinet-db-backup-run.1`, …), generated from the
//! same clap definition as `--help`.

use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::cli::{outcome::Outcome, output::outln};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The directory to write the pages into (created if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// `cli` is the whole command line's definition (`Cli::command()`).
pub(crate) fn run(args: Args, cli: clap::Command) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out)?;
    let mut written = Vec::new();
    write_pages(&cli, "cabinet-db", "cabinet-db", &args.out, &mut written)?;
    outln!("wrote {} man pages into {}", written.len(), args.out.display())?;
    Ok(Outcome::Success)
}

/// The page of `command` — named like `git-commit(1)`: `page` is `cabinet-db-backup-run`,
/// `invocation` `cabinet-db backup run` — then its subcommands'.
fn write_pages(
    command: &clap::Command,
    page: &str,
    invocation: &str,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let command =
        command.clone().name(page.to_owned()).display_name(page.to_owned()).bin_name(invocation.to_owned());
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut roff)?;
    let path = out.join(format!("{page}.1"));
    std::fs::write(&path, roff)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = sub.get_name();
        write_pages(sub, &format!("{page}-{name}"), &format!("{invocation} {name}"), out, written)?;
    }
    Ok(())
}
