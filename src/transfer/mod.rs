//! Bulk import and export of sites and users: CSV (with a header row) or JSON Lines,
//! streamed through `COPY`.

/// How each table's columns are checked and normalised on import; given vs absent values.
pub(crate) mod columns;
/// A streaming CSV reader that keeps NULL and "" apart.
pub(crate) mod csv;
/// `COPY … TO STDOUT` into CSV or JSON Lines.
pub(crate) mod export;
/// Validate everything, then `COPY` and merge, in one transaction.
pub(crate) mod import;
/// What an import reports: counts, or every problem row.
pub(crate) mod problems;
/// Reading import files and standard input into rows of cells.
pub(crate) mod reader;
/// The staged path: a temporary table, checks against the live table, the merge.
pub(crate) mod staging;

use std::path::Path;

use serde::Serialize;

pub(crate) use columns::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// From the file name: `.csv`, or `.jsonl` / `.ndjson`.
    pub(crate) fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// What an import does with a key the table already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Only new rows; a key the table already has is an error.
    Insert,
    /// Insert new rows; update existing ones, changing only the columns the file gives.
    Upsert,
}

/// Rows per progress report.
pub(crate) const PROGRESS_EVERY: u64 = 10_000;
