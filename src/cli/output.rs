//! Human tables and JSON on stdout. Logs go to stderr, never here.
//!
//! Every write to stdout is fallible: when the reader of a pipe goes away (`cabinet-db sites
//! list | head -1`), the write fails with [`StdoutClosed`] and the command ends quietly with
//! exit 0, like other Unix tools, instead of panicking as `println!` does.
//!
//! Values from the database are shown through [`terminal_safe`]: a `brand_name` holding ESC
//! or a bidi override must not repaint or reorder the operator's terminal.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use serde::Serialize;

use crate::models::characters::is_invisible_or_control;

/// Standard output was closed by its reader: the command stops writing, and that is not an
/// error (`main` exits 0 without a message).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Stdout, with a closed pipe reported as [`StdoutClosed`] (distinct from a database
/// socket's broken pipe, which is a real error).
pub struct Stdout(io::Stdout);

pub fn stdout() -> Stdout {
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

/// Whether an error (anywhere in its chain) is [`StdoutClosed`].
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
    let mut out = stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Text from the database made safe for a terminal: control characters (ESC, DEL, C1),
/// Unicode format characters (bidi overrides, zero-width) and line separators are shown as
/// escapes (`\e`, `\u{202e}`); with `keep_newlines`, `\n` and `\t` pass (multi-line prompts).
pub fn terminal_safe(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs_escape = |c: char| is_invisible_or_control(c) && !(keep_newlines && matches!(c, '\n' | '\t'));
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            other => out.push_str(&format!("\\u{{{:x}}}", other as u32)),
        }
    }
    Cow::Owned(out)
}

/// A plain aligned table; every cell goes through [`terminal_safe`] (one line per row).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_invisible_characters_are_shown_not_obeyed() {
        assert_eq!(terminal_safe("ACME", false), "ACME");
        assert_eq!(terminal_safe("a\u{1b}[2Jb", false), "a\\e[2Jb");
        assert_eq!(terminal_safe("x\u{7f}\u{9b}y", false), "x\\u{7f}\\u{9b}y");
        assert_eq!(terminal_safe("\u{202e}evil", false), "\\u{202e}evil");
        assert_eq!(terminal_safe("zero\u{200b}width", false), "zero\\u{200b}width");
        assert_eq!(terminal_safe("two\nlines", false), "two\\nlines");
        assert_eq!(terminal_safe("two\nlines\tok\u{1b}", true), "two\nlines\tok\\e");
    }
}
