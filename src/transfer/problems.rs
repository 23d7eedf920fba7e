//! What an import reports: the rows it wrote, or every problem row it found (with line,
//! column, value and the rule broken) and the promise that nothing was written — or, when the
//! connection dropped during COMMIT, that nobody can know.

use std::{fmt, path::PathBuf};

use serde::Serialize;

use crate::{db::DbError, models::FieldError};

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ImportReport {
    pub(crate) rows: u64,
    pub(crate) inserted: u64,
    pub(crate) updated: u64,
}

/// One problem with one row (`line` 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub(crate) line: usize,
    pub(crate) column: String,
    pub(crate) value: String,
    pub(crate) message: String,
}

impl RowError {
    pub(crate) fn new(line: usize, column: &str, value: &str, message: impl Into<String>) -> Self {
        let shown: String = value.chars().take(80).collect();
        let value = if shown.len() < value.len() { format!("{shown}…") } else { shown };
        RowError { line, column: column.to_owned(), value, message: message.into() }
    }

    /// A value refused on a line.
    pub(crate) fn at(line: usize, error: FieldError) -> Self {
        RowError { line, column: error.field.to_owned(), value: error.value, message: error.reason }
    }
}

impl fmt::Display for RowError {
    /// The value in Rust's debug quoting, which escapes control and invisible characters: a
    /// value from a file never reaches the terminal raw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = &self.value;
        match (self.line, self.column.is_empty()) {
            (0, _) => write!(f, "{}", self.message),
            (line, true) => write!(f, "line {line}: {}", self.message),
            (line, false) => {
                write!(f, "line {line}, column {}, value {:?}: {}", self.column, value, self.message)
            }
        }
    }
}

/// Problems found so far: all are counted, the first `cap` kept.
#[derive(Debug, Clone)]
pub(crate) struct Problems {
    pub(crate) shown: Vec<RowError>,
    pub(crate) total: u64,
    pub(crate) cap: usize,
}

impl Problems {
    pub(crate) fn new(cap: usize) -> Self {
        Problems { shown: Vec::new(), total: 0, cap: cap.max(1) }
    }

    pub(crate) fn push(&mut self, error: RowError) {
        self.total += 1;
        if self.shown.len() < self.cap {
            self.shown.push(error);
        }
    }

    /// `count` problems of which `shown` are the first (a database check counts them all).
    pub(crate) fn extend_counted(&mut self, shown: Vec<RowError>, count: u64) {
        let extra = count.saturating_sub(shown.len() as u64);
        for error in shown {
            self.push(error);
        }
        self.total += extra;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Sorted by line, for a report that reads top to bottom.
    pub(crate) fn into_error(mut self) -> ImportError {
        self.shown.sort_by_key(|e| e.line);
        ImportError::Invalid { errors: self.shown, total: self.total }
    }
}

fn describe_invalid(errors: &[RowError], total: u64) -> String {
    let shown = if total > errors.len() as u64 {
        format!(" (the first {} shown; --max-errors shows more)", errors.len())
    } else {
        String::new()
    };
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    format!("{total} problem(s) in the file{shown}; nothing was written:\n{}", lines.join("\n"))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("cannot read {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", describe_invalid(.errors, *.total))]
    Invalid { errors: Vec<RowError>, total: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed; nothing was written")]
    Query(#[from] sqlx::Error),
    #[error("could not name the actor for the history; nothing was written")]
    Actor(#[source] Box<crate::data::DataError>),
    #[error(
        "the connection to the database was lost while committing: the import may or may not have been written. Look before retrying (cabinet-db sites get / users get, or an export); in upsert mode running the same file again is harmless"
    )]
    OutcomeUnknown(#[source] sqlx::Error),
}

impl ImportError {
    /// One problem with the file as a whole, or with one line.
    pub(crate) fn one(line: usize, column: &str, value: &str, message: impl Into<String>) -> Self {
        ImportError::Invalid { errors: vec![RowError::new(line, column, value, message)], total: 1 }
    }
}
