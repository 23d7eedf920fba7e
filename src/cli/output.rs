//! Human tables and JSON on stdout. Logs go to stderr, never here.
//!
//! Every write to stdout is fallible: when the reader of a pipe goes away (`cabinet-db sites
//! list | head -1`), the write fails with `StdoutClosed` and the command ends quietly with
//! exit 0, like other Unix tools, instead of panicking as `println!` does.
//!
//! Values from the database are shown through `terminal_safe`: a `brand_name` holding ESC
//! or a bidi override must not repaint or reorder the operator's terminal.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use serde::Serialize;

pub(crate) use crate::models::characters::escape_invisible as terminal_safe;

/// Standard output was closed by its reader: the command stops writing, and that is not an
/// error (`main` exits 0 without a message).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("standard output was closed")]
pub(crate) struct StdoutClosed;

/// Stdout, with a closed pipe reported as `StdoutClosed` (distinct from a database
/// socket's broken pipe, which is a real error).
pub(crate) struct Stdout(io::Stdout);

pub(crate) fn stdout() -> Stdout {
    Stdout(io::stdout())
}

fn closed_pipe(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::BrokenPipe { io::Error::other(StdoutClosed) } else { error }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(closed_pipe)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(closed_pipe)
    }
}

/// `println!` that returns `io::Result` instead of panicking when stdout is closed.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::cli::output::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Whether an error (anywhere in its chain) is `StdoutClosed`.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(|e| e.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    // Serialised first: an I/O error inside serde_json would hide a closed pipe.
    let text = serde_json::to_string_pretty(value)?;
    writeln!(stdout(), "{text}")?;
    Ok(())
}

/// A plain aligned table; every cell goes through `terminal_safe` (one line per row).
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let rows: Vec<Vec<Cow<'_, str>>> =
        rows.iter().map(|row| row.iter().map(|cell| terminal_safe(cell, false)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = io::BufWriter::new(stdout());
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let lines = std::iter::once(headers.to_vec())
        .chain(std::iter::once(rules.iter().map(String::as_str).collect()))
        .chain(rows.iter().map(|row| row.iter().map(|c| c.as_ref()).collect()));
    for cells in lines {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        writeln!(out, "{}", padded.join("  ").trim_end())?;
    }
    out.flush()
}

/// What a render command wrote: the paths as JSON, or a line each and then `notes`.
pub(crate) fn report_written(
    out: &std::path::Path,
    files: &[crate::tailnet::render::RenderedFile],
    json: bool,
    notes: &[String],
) -> anyhow::Result<()> {
    if json {
        let paths: Vec<_> = files.iter().map(|f| out.join(&f.path)).collect();
        return print_json(&paths);
    }
    for f in files {
        outln!("wrote {}", out.join(&f.path).display())?;
    }
    for note in notes {
        outln!("{note}")?;
    }
    Ok(())
}
