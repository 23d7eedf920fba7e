//! `sites import|export` and `users import|export`: the same commands for either table.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{args::ConnectionArgs, outcome::Outcome, output};
use crate::atomic_file::{AtomicFile, PUBLIC_MODE};
use crate::cli::output::outln;
use crate::{
    cli::args::{DurationArg, parse_duration_arg},
    transfer::{
        Format, Mode, Table, export,
        import::{self, DEFAULT_STATEMENT_TIMEOUT, ImportOptions},
        reader::Input,
    },
};

/// Problem rows reported, by default.
const DEFAULT_MAX_ERRORS: u32 = 100;

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// CSV with a header row (.csv) or JSON Lines (.jsonl, .ndjson), or - for standard input;
    /// see docs/import-formats.md.
    pub(crate) file: String,
    /// The file's format, when its name does not say (standard input: JSON Lines if it starts
    /// with `{`, else CSV).
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// insert: only new rows (an existing key is an error); upsert: insert new rows and
    /// update existing ones, changing only the columns the file gives.
    #[arg(long, value_enum, default_value_t = Mode::Upsert)]
    pub(crate) mode: Mode,
    /// Report at most this many problem rows (all are counted).
    #[arg(long, default_value_t = DEFAULT_MAX_ERRORS, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_errors: u32,
    /// statement_timeout of the import's own transaction, instead of the role's (whose 30 s
    /// would cut a large file short); 0 for none.
    #[arg(long, default_value_t = DurationArg(DEFAULT_STATEMENT_TIMEOUT), value_parser = parse_duration_arg)]
    pub(crate) statement_timeout: DurationArg,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// csv (with a header row) or jsonl [default: from --out's extension, else csv].
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Write here instead of standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// A spinner with the row count and rate on stderr, only when a person is watching.
fn progress_bar(verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {verb} {{human_pos}} rows ({{msg}}, {{elapsed}})"
        ))
        .expect("a valid template"),
    );
    bar
}

/// Moves the bar and shows whole rows per second.
fn progress_reporter(bar: &ProgressBar) -> impl FnMut(u64) + Send + '_ {
    move |rows| {
        bar.set_position(rows);
        let seconds = bar.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!("{:.0} rows/s", rows as f64 / seconds));
    }
}

pub(crate) async fn run_import(table: Table, args: ImportArgs, json: bool) -> anyhow::Result<Outcome> {
    let input = Input::parse(&args.file);
    let options = ImportOptions {
        table,
        format: args.format,
        mode: args.mode,
        max_errors: args.max_errors as usize,
        statement_timeout: args.statement_timeout.0,
        actor: Some(crate::history::Actor::for_cli(args.connection.actor.as_deref())?),
    };
    let url = args.connection.url()?;
    let bar = progress_bar("checked");
    let mut report_progress = progress_reporter(&bar);
    let result = import::import(url, &input, &options, &mut report_progress).await;
    bar.finish_and_clear();
    let report = result.with_context(|| format!("importing {input} into {}", table.name()))?;
    if json {
        output::print_json(&report)?;
    } else {
        outln!(
            "imported {} rows into {}: {} inserted, {} updated",
            report.rows,
            table.name(),
            report.inserted,
            report.updated
        )?;
    }
    Ok(Outcome::Success)
}

pub(crate) async fn run_export(table: Table, args: ExportArgs) -> anyhow::Result<Outcome> {
    let format =
        args.format.or_else(|| args.out.as_deref().and_then(Format::from_path)).unwrap_or(Format::Csv);
    let url = args.connection.url()?;
    let bar = progress_bar("exported");
    let mut report_progress = progress_reporter(&bar);
    let rows = match &args.out {
        Some(path) => {
            // Written under a temporary name and renamed when complete: an interrupted export
            // (kill -9, a lost connection) leaves no truncated file that would import cleanly.
            let file = AtomicFile::create(path, PUBLIC_MODE)
                .with_context(|| format!("cannot create a file beside {}", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let rows = export::export(url, table, format, &mut out, &mut report_progress).await?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(AtomicFile::commit)
                .with_context(|| format!("cannot write {}", path.display()))?;
            rows
        }
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, output::stdout());
            let rows = export::export(url, table, format, &mut out, &mut report_progress).await?;
            out.flush()?;
            rows
        }
    };
    bar.finish_and_clear();
    if let Some(path) = &args.out {
        eprintln!("exported {rows} rows of {} to {}", table.name(), path.display());
    }
    Ok(Outcome::Success)
}

/// Asks before deleting unless `--yes`; refuses without a terminal to ask on.
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} Refusing without confirmation: add --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
