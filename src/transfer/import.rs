//! Import: every row is checked (and normalised) while it streams to PostgreSQL through
//! `COPY`, inside one transaction. Any bad row, and nothing is written: the `COPY` is aborted
//! and the transaction rolled back, and every problem is reported with its line, column and
//! value. Good files go straight into the table when nothing can conflict (`--mode insert`,
//! or an empty table), otherwise through a temporary staging table merged with one
//! `INSERT … ON CONFLICT`.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection, postgres::PgDatabaseError};

use super::{
    Format, PROGRESS_EVERY, Table,
    columns::{Column, format_timestamp, normalize},
    csv::{CsvError, CsvReader},
};
use crate::db::{self, DatabaseUrl, DbError, quote_ident};

/// Bytes buffered before a `COPY` chunk goes out.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only new rows; an existing key is an error.
    Insert,
    /// New rows are inserted, existing ones updated (created_at is kept).
    Upsert,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub table: Table,
    pub format: Format,
    pub mode: Mode,
    /// Stop checking after this many problems.
    pub max_errors: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
}

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    pub column: String,
    pub value: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}, column {}, value {:?}: {}", self.line, self.column, self.value, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} problem(s){}; nothing was written:\n{}",
        .errors.len(),
        if *.stopped_early { " (stopped checking there; --max-errors raises the limit)" } else { "" },
        .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
    )]
    Invalid { errors: Vec<RowError>, stopped_early: bool },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database query failed; nothing was written")]
    Query(#[from] sqlx::Error),
}

impl ImportError {
    fn one(line: usize, column: &str, value: &str, message: impl Into<String>) -> Self {
        ImportError::Invalid {
            errors: vec![RowError {
                line,
                column: column.to_owned(),
                value: value.to_owned(),
                message: message.into(),
            }],
            stopped_early: false,
        }
    }
}

impl RowError {
    /// A value refused on a line.
    fn at(line: usize, error: crate::models::FieldError) -> Self {
        RowError { line, column: error.field.to_owned(), value: error.value, message: error.reason }
    }
}

impl From<CsvError> for RowError {
    fn from(e: CsvError) -> Self {
        RowError { line: e.line, column: String::new(), value: String::new(), message: e.message }
    }
}

/// A row as read: its line and one raw value per present column.
struct RawRow {
    line: usize,
    values: Vec<Option<String>>,
}

/// Rows of a CSV or JSON Lines file, with the columns they carry.
enum Source {
    Csv(CsvReader<BufReader<File>>),
    Jsonl { lines: std::io::Lines<BufReader<File>>, line: usize },
}

impl Source {
    fn open(path: &Path, options: &ImportOptions) -> Result<(Source, Vec<&'static Column>), ImportError> {
        let file = File::open(path).map_err(|source| ImportError::Open { path: path.to_owned(), source })?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let table = options.table;
        match options.format {
            Format::Jsonl => {
                Ok((Source::Jsonl { lines: reader.lines(), line: 0 }, table.columns().iter().collect()))
            }
            Format::Csv => {
                let mut csv = CsvReader::new(reader);
                let header = csv
                    .next_record()
                    .map_err(|e| ImportError::Invalid { errors: vec![e.into()], stopped_early: false })?
                    .ok_or_else(|| ImportError::one(1, "", "", "the file is empty; it needs a header row"))?;
                let mut present = Vec::new();
                for field in &header.fields {
                    let Some(column) = table.column(field.value.trim()) else {
                        let known: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
                        return Err(ImportError::one(
                            header.line,
                            "",
                            &field.value,
                            format!(
                                "the first row must be a header naming {} columns ({}); {:?} is not one of them",
                                table.name(),
                                known.join(", "),
                                field.value
                            ),
                        ));
                    };
                    if present.iter().any(|c: &&Column| c.name == column.name) {
                        return Err(ImportError::one(
                            header.line,
                            column.name,
                            "",
                            "the header names this column twice",
                        ));
                    }
                    present.push(column);
                }
                if let Some(missing) =
                    table.columns().iter().find(|c| c.required && !present.iter().any(|p| p.name == c.name))
                {
                    return Err(ImportError::one(
                        header.line,
                        missing.name,
                        "",
                        "the header lacks this required column",
                    ));
                }
                Ok((Source::Csv(csv), present))
            }
        }
    }

    fn next(&mut self, present: &[&'static Column]) -> Result<Option<RawRow>, RowError> {
        match self {
            Source::Csv(csv) => {
                let Some(record) = csv.next_record()? else { return Ok(None) };
                if record.fields.len() != present.len() {
                    return Err(RowError {
                        line: record.line,
                        column: String::new(),
                        value: String::new(),
                        message: format!(
                            "has {} fields, the header has {}",
                            record.fields.len(),
                            present.len()
                        ),
                    });
                }
                let values = record.fields.iter().map(|f| f.as_nullable().map(str::to_owned)).collect();
                Ok(Some(RawRow { line: record.line, values }))
            }
            Source::Jsonl { lines, line } => loop {
                let Some(text) = lines.next() else { return Ok(None) };
                *line += 1;
                let at = *line;
                let error = |column: &str, value: &str, message: String| RowError {
                    line: at,
                    column: column.to_owned(),
                    value: value.to_owned(),
                    message,
                };
                let text =
                    text.map_err(|e| error("", "", format!("cannot read: {e} (is the file UTF-8?)")))?;
                if text.trim().is_empty() {
                    continue;
                }
                let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                    .map_err(|e| error("", "", format!("not a JSON object: {e}")))?;
                if let Some(unknown) = object.keys().find(|k| !present.iter().any(|c| c.name == k.as_str())) {
                    return Err(error(unknown, "", "is not a column of this table".to_owned()));
                }
                let mut values = Vec::with_capacity(present.len());
                for column in present {
                    values.push(match object.get(column.name) {
                        None | Some(serde_json::Value::Null) => None,
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        Some(other) => {
                            return Err(error(
                                column.name,
                                &other.to_string(),
                                "must be a string or null".to_owned(),
                            ));
                        }
                    });
                }
                return Ok(Some(RawRow { line: at, values }));
            },
        }
    }
}

/// Appends one row in COPY's text format.
fn encode_copy_row(out: &mut String, line: Option<usize>, values: &[Option<String>]) {
    let mut first = true;
    if let Some(line) = line {
        out.push_str(&line.to_string());
        first = false;
    }
    for value in values {
        if !first {
            out.push('\t');
        }
        first = false;
        match value {
            None => out.push_str("\\N"),
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
    out.push('\n');
}

/// Imports `path` into the table; on any error nothing is written.
pub async fn import(
    url: &DatabaseUrl,
    path: &Path,
    options: &ImportOptions,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ImportReport, ImportError> {
    let (mut source, present) = Source::open(path, options)?;
    let table = options.table;
    let names: Vec<&str> = present.iter().map(|c| c.name).collect();
    let column_list = names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ");
    let now = format_timestamp(chrono::Utc::now());

    let mut conn = db::connect(url, "cabinet-db import").await?;
    let mut tx = conn.begin().await?;
    let target_empty: bool = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {})",
        quote_ident(table.name())
    )))
    .fetch_one(&mut *tx)
    .await?;
    // Straight into the table when no row can conflict with a stored one.
    let direct = options.mode == Mode::Insert || target_empty;
    let copy_sql = if direct {
        format!("COPY {} ({column_list}) FROM STDIN", quote_ident(table.name()))
    } else {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TEMPORARY TABLE cabinet_import ON COMMIT DROP AS
               SELECT 0::bigint AS line, {column_list} FROM {} WITH NO DATA",
            quote_ident(table.name())
        )))
        .execute(&mut *tx)
        .await?;
        format!("COPY cabinet_import (line, {column_list}) FROM STDIN")
    };

    let mut copy = tx.copy_in_raw(&copy_sql).await?;
    let mut errors: Vec<RowError> = Vec::new();
    let mut stopped_early = false;
    let mut buffer = String::with_capacity(COPY_CHUNK_BYTES + 4096);
    let mut rows: u64 = 0;
    loop {
        let raw = match source.next(&present) {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => {
                let fatal =
                    e.column.is_empty() && options.format == Format::Csv && e.message.contains("quote");
                errors.push(e);
                // A CSV quoting error leaves the reader out of step: stop there.
                if fatal || errors.len() >= options.max_errors {
                    stopped_early = errors.len() >= options.max_errors;
                    break;
                }
                continue;
            }
        };
        rows += 1;
        let mut values = Vec::with_capacity(present.len());
        let mut row_ok = true;
        for (column, value) in present.iter().zip(&raw.values) {
            match normalize(column, value.as_deref(), &now) {
                Ok(v) => values.push(v),
                Err(e) => {
                    row_ok = false;
                    errors.push(RowError::at(raw.line, e));
                    values.push(None);
                }
            }
        }
        if row_ok && let Err(e) = table.check_row(&present, &values) {
            row_ok = false;
            errors.push(RowError::at(raw.line, e));
        }
        if errors.len() >= options.max_errors {
            stopped_early = true;
            break;
        }
        if row_ok && errors.is_empty() {
            encode_copy_row(&mut buffer, (!direct).then_some(raw.line), &values);
            if buffer.len() >= COPY_CHUNK_BYTES {
                copy.send(buffer.as_bytes()).await?;
                buffer.clear();
            }
        }
        if rows.is_multiple_of(PROGRESS_EVERY) {
            progress(rows);
        }
    }
    progress(rows);
    if !errors.is_empty() {
        copy.abort("cabinet-db: the file has invalid rows").await.ok();
        tx.rollback().await.ok();
        return Err(ImportError::Invalid { errors, stopped_early });
    }
    copy.send(buffer.as_bytes()).await?;
    if let Err(e) = copy.finish().await {
        tx.rollback().await.ok();
        return Err(explain_conflict(e, path, options, &present).await);
    }

    let report = if direct {
        ImportReport { rows, inserted: rows, updated: 0 }
    } else {
        check_staged_duplicates(&mut tx, table, options.max_errors).await?;
        let updatable = table.updatable(&present);
        let on_conflict = if updatable.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            let sets: Vec<String> =
                updatable.iter().map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c))).collect();
            format!("DO UPDATE SET {}", sets.join(", "))
        };
        let merge = format!(
            "WITH merged AS (
                 INSERT INTO {table} ({column_list}) SELECT {column_list} FROM cabinet_import ORDER BY line
                 ON CONFLICT ({key}) {on_conflict}
                 RETURNING (xmax = 0) AS inserted
             )
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged",
            table = quote_ident(table.name()),
            key = quote_ident(table.key()),
        );
        let (inserted, updated): (i64, i64) =
            match sqlx::query_as(AssertSqlSafe(merge)).fetch_one(&mut *tx).await {
                Ok(counts) => counts,
                Err(e) => {
                    tx.rollback().await.ok();
                    return Err(explain_conflict(e, path, options, &present).await);
                }
            };
        ImportReport { rows, inserted: inserted as u64, updated: updated as u64 }
    };
    tx.commit().await?;
    conn.close().await.ok();
    Ok(report)
}

/// Keys (and, for sites, domains) that appear on several lines of the staged file.
async fn check_staged_duplicates(
    conn: &mut PgConnection,
    table: Table,
    max_errors: usize,
) -> Result<(), ImportError> {
    let mut columns = vec![table.key()];
    if table == Table::Sites {
        columns.push("domain");
    }
    let mut errors = Vec::new();
    for column in columns {
        let found: Vec<(String, Vec<i64>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {c}::text, array_agg(line ORDER BY line) FROM cabinet_import
              GROUP BY {c} HAVING count(*) > 1 ORDER BY min(line) LIMIT $1",
            c = quote_ident(column)
        )))
        .bind(max_errors as i64)
        .fetch_all(&mut *conn)
        .await?;
        for (value, lines) in found {
            errors.push(duplicate_error(
                column,
                &value,
                &lines.iter().map(|l| *l as usize).collect::<Vec<_>>(),
            ));
        }
    }
    if table == Table::Sites {
        let taken: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT i.line, i.domain, s.site_id FROM cabinet_import i
               JOIN sites s ON s.domain = i.domain AND s.site_id <> i.site_id
              ORDER BY i.line LIMIT $1",
        )
        .bind(max_errors as i64)
        .fetch_all(&mut *conn)
        .await?;
        for (line, domain, owner) in taken {
            errors.push(RowError {
                line: line as usize,
                column: "domain".into(),
                value: domain,
                message: format!("already belongs to site {owner:?}; each domain belongs to one site"),
            });
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ImportError::Invalid { errors, stopped_early: false }) }
}

fn duplicate_error(column: &str, value: &str, lines: &[usize]) -> RowError {
    let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
    RowError {
        line: lines[0],
        column: column.to_owned(),
        value: value.to_owned(),
        message: format!("appears on lines {}; each value may appear once per file", shown.join(", ")),
    }
}

/// Turns a unique violation from a direct `COPY` into lines of the file: the database names
/// the value, a second pass over the file finds where it stands.
async fn explain_conflict(
    error: sqlx::Error,
    path: &Path,
    options: &ImportOptions,
    present: &[&'static Column],
) -> ImportError {
    let Some(pg) = error.as_database_error().and_then(|e| e.try_downcast_ref::<PgDatabaseError>()) else {
        return ImportError::Query(error);
    };
    if pg.code() != "23505" {
        return ImportError::Query(error);
    }
    // "Key (user_id)=(u1) already exists."
    let detail = pg.detail().unwrap_or_default().to_owned();
    let parsed =
        detail.strip_prefix("Key (").and_then(|rest| rest.split_once(")=(")).and_then(|(column, rest)| {
            Some((column.to_owned(), rest.rsplit_once(") already exists")?.0.to_owned()))
        });
    let Some((column, value)) = parsed else { return ImportError::Query(error) };
    let lines = lines_with_value(path, options, present, &column, &value).unwrap_or_default();
    let message = if lines.len() > 1 {
        return ImportError::Invalid {
            errors: vec![duplicate_error(&column, &value, &lines)],
            stopped_early: false,
        };
    } else {
        "already exists in the database; use --mode upsert to update existing rows".to_owned()
    };
    ImportError::Invalid {
        errors: vec![RowError { line: lines.first().copied().unwrap_or(0), column, value, message }],
        stopped_early: false,
    }
}

fn lines_with_value(
    path: &Path,
    options: &ImportOptions,
    present: &[&'static Column],
    column: &str,
    value: &str,
) -> Option<Vec<usize>> {
    let index = present.iter().position(|c| c.name == column)?;
    let (mut source, _) = Source::open(path, options).ok()?;
    let mut lines = Vec::new();
    while let Ok(Some(raw)) = source.next(present) {
        let normalized = normalize(present[index], raw.values[index].as_deref(), "").ok().flatten();
        if normalized.as_deref() == Some(value) {
            lines.push(raw.line);
        }
    }
    Some(lines)
}
