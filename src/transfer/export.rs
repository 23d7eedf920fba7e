//! Export: `COPY … TO STDOUT` written through as it arrives, so memory stays flat whatever the
//! table's size. UTC and ISO dates are set for the session, so the output does not depend on
//! the server's configuration, and it imports back exactly.

use std::io::Write;

use futures_util::TryStreamExt;
use sqlx::Connection;

use super::{Format, PROGRESS_EVERY, Table};
use crate::db::{self, DatabaseUrl, DbError, quote_ident};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("cannot write the export")]
    Write(#[source] std::io::Error),
}

/// Writes every row of `table`, ordered by its key; returns how many.
pub(crate) async fn export(
    url: &DatabaseUrl,
    table: Table,
    format: Format,
    out: &mut (dyn Write + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, ExportError> {
    let mut conn = db::connect(url, "cabinet-db export").await?;
    sqlx::raw_sql("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'").execute(&mut conn).await?;
    let columns: Vec<String> = table.columns().iter().map(|c| quote_ident(c.name)).collect();
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        quote_ident(table.name()),
        quote_ident(table.key())
    );
    let copy = match format {
        Format::Csv => format!("COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)"),
        // One JSON object per row. CSV format with a quote and delimiter that JSON text never
        // contains (control characters are escaped in JSON) passes each object through
        // untouched, where text format would double its backslashes.
        Format::Jsonl => format!(
            "COPY (SELECT row_to_json(r) FROM ({select}) r) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        ),
    };
    let mut counter = RowCounter::new(format);
    let mut stream = conn.copy_out_raw(&copy).await?;
    while let Some(chunk) = stream.try_next().await? {
        out.write_all(&chunk).map_err(ExportError::Write)?;
        if counter.feed(&chunk) {
            progress(counter.rows);
        }
    }
    drop(stream);
    out.flush().map_err(ExportError::Write)?;
    conn.close().await?;
    progress(counter.rows);
    Ok(counter.rows)
}

/// Counts rows in the output stream: line ends outside CSV quotes (multi-line values are
/// quoted), minus the header.
struct RowCounter {
    rows: u64,
    in_quotes: bool,
    header_pending: bool,
    csv: bool,
}

impl RowCounter {
    fn new(format: Format) -> Self {
        let csv = format == Format::Csv;
        RowCounter { rows: 0, in_quotes: false, header_pending: csv, csv }
    }

    /// `true` when another progress step was passed.
    fn feed(&mut self, chunk: &[u8]) -> bool {
        let before = self.rows / PROGRESS_EVERY;
        for &b in chunk {
            match b {
                b'"' if self.csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    if self.header_pending {
                        self.header_pending = false;
                    } else {
                        self.rows += 1;
                    }
                }
                _ => {}
            }
        }
        self.rows / PROGRESS_EVERY != before
    }
}
