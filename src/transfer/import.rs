//! Import: every row is checked (and normalised) while it streams to PostgreSQL through
//! `COPY`, inside one transaction. Any bad row, and nothing is written: the `COPY` is aborted,
//! the transaction rolled back, and every problem reported with its line, column and value.
//!
//! Into an empty table the rows go straight in (the fast path, as fast as `psql \copy`);
//! concurrent imports into it take turns on an advisory lock, so the second sees the first's
//! rows and merges instead of colliding. Otherwise — or when the fast path meets a conflict,
//! which is then located by reading the file again — rows are staged in a temporary table,
//! checked against the table as it is, and merged (`staging`).
//!
//! The import's own transaction runs under its own `statement_timeout` (an hour by default),
//! not the role's: the `COPY` of a large file is one statement that legitimately runs for
//! minutes.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, postgres::PgCopyIn};

pub(crate) use super::{
    Format,
    problems::{ImportError, ImportReport, Problems, RowError},
};
use super::{
    Mode, PROGRESS_EVERY, Table,
    columns::{Normalized, normalize},
    reader::{Input, Opened},
    staging::{self, Given},
};
use crate::{
    db::{self, DatabaseUrl, quote_ident},
    models::timestamps,
};

/// Bytes buffered before a `COPY` chunk goes out.
const COPY_CHUNK_BYTES: usize = 256 * 1024;
/// The import transaction's `statement_timeout` unless `--statement-timeout` says otherwise.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Serialises imports into an empty table ("cabimp" + the table).
const EMPTY_TABLE_LOCK: i64 = 0x6361_6269_6d70_0000;

#[derive(Debug, Clone)]
pub(crate) struct ImportOptions {
    pub(crate) table: Table,
    /// The file's format; `None`: from its name (or, for standard input, its first character).
    pub(crate) format: Option<Format>,
    pub(crate) mode: Mode,
    /// Problem rows reported at most (all are counted).
    pub(crate) max_errors: usize,
    /// `statement_timeout` of the import's transaction (zero: none).
    pub(crate) statement_timeout: Duration,
    /// Who the history names for the rows this import writes (else the role).
    pub(crate) actor: Option<crate::history::Actor>,
}

/// How an attempt writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `COPY` into the table itself: it was empty.
    Direct,
    /// `COPY` into a staging table, check, merge.
    Staged,
}

/// Why the fast path gave up: the rows must be staged to be located.
struct Restage;

/// Imports `input` into the table; on any error nothing is written.
pub(crate) async fn import(
    url: &DatabaseUrl,
    input: &Input,
    options: &ImportOptions,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ImportReport, ImportError> {
    let opened = Opened::open(input, options.format)?;
    let mut conn = db::connect(url, "cabinet-db import").await?;
    if let Some(actor) = &options.actor {
        crate::history::set_actor(&mut conn, actor, false).await.map_err(|e| match e {
            crate::data::DataError::Query(source) => ImportError::from(source),
            other => ImportError::Actor(Box::new(other)),
        })?;
    }
    let result = match attempt(&mut conn, &opened, options, progress, true).await {
        Err(Restage) => match attempt(&mut conn, &opened, options, progress, false).await {
            Ok(result) => result,
            Err(Restage) => unreachable!("the staged path never asks to restage"),
        },
        Ok(result) => result,
    };
    conn.close().await.ok();
    result
}

async fn attempt(
    conn: &mut PgConnection,
    opened: &Opened,
    options: &ImportOptions,
    progress: &mut (dyn FnMut(u64) + Send),
    allow_direct: bool,
) -> Result<Result<ImportReport, ImportError>, Restage> {
    let table = options.table;
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(e) => return Ok(Err(e.into())),
    };
    let route = match prepare(&mut tx, table, options, allow_direct).await {
        Ok(route) => route,
        Err(e) => return Ok(Err(e.into())),
    };
    let result = stream(&mut tx, opened, options, route, progress).await;
    let report = match result {
        Ok(report) => report,
        Err(Failure::Import(e)) => {
            tx.rollback().await.ok();
            return Ok(Err(e));
        }
        Err(Failure::Conflict(e)) if route == Route::Direct && is_constraint_violation(&e) => {
            tx.rollback().await.ok();
            tracing::info!(error = %e, "the direct COPY met a conflict; staging the rows to locate it");
            return Err(Restage);
        }
        Err(Failure::Conflict(e)) => {
            tx.rollback().await.ok();
            return Ok(Err(e.into()));
        }
    };
    Ok(match tx.commit().await {
        Ok(()) => Ok(report),
        // The server answered: it rolled back.
        Err(e) if e.as_database_error().is_some() => Err(ImportError::Query(e)),
        // No answer: the COMMIT may or may not have happened.
        Err(e) => Err(ImportError::OutcomeUnknown(e)),
    })
}

/// Session settings for the import, and which path it takes.
async fn prepare(
    conn: &mut PgConnection,
    table: Table,
    options: &ImportOptions,
    allow_direct: bool,
) -> Result<Route, sqlx::Error> {
    sqlx::query(
        "SELECT set_config('statement_timeout', $1, true), set_config('TimeZone', 'UTC', true),
                set_config('DateStyle', 'ISO, YMD', true)",
    )
    .bind(format!("{}ms", options.statement_timeout.as_millis()))
    .execute(&mut *conn)
    .await?;
    if !allow_direct {
        return Ok(Route::Staged);
    }
    let empty_sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {})", quote_ident(table.name()));
    let empty: bool = sqlx::query_scalar(AssertSqlSafe(empty_sql.clone())).fetch_one(&mut *conn).await?;
    if !empty {
        return Ok(Route::Staged);
    }
    // Another import may be filling the empty table right now: wait for it, then look again.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EMPTY_TABLE_LOCK + table as i64)
        .execute(&mut *conn)
        .await?;
    let still_empty: bool = sqlx::query_scalar(AssertSqlSafe(empty_sql)).fetch_one(&mut *conn).await?;
    Ok(if still_empty { Route::Direct } else { Route::Staged })
}

enum Failure {
    /// Bad rows, or the database refused: reported as is.
    Import(ImportError),
    /// The `COPY` into the table (or its merge) failed in the database.
    Conflict(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Import(ImportError::Query(e))
    }
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Self {
        Failure::Import(e)
    }
}

/// Class 23: integrity constraint violations.
fn is_constraint_violation(error: &sqlx::Error) -> bool {
    db::sqlstate(error).is_some_and(|s| s.starts_with("23"))
}

async fn stream(
    conn: &mut PgConnection,
    opened: &Opened,
    options: &ImportOptions,
    route: Route,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ImportReport, Failure> {
    let table = options.table;
    // Every row is new on the direct path, and must be in insert mode: all is known.
    let all_known = route == Route::Direct || options.mode == Mode::Insert;
    let mut rows = opened.rows(table, all_known)?;
    let now: timestamps::Checked = sqlx::query_scalar("SELECT now()").fetch_one(&mut *conn).await?;
    let now = timestamps::format(now.0);
    let copy_sql = match route {
        Route::Direct => {
            let names: Vec<String> = table.columns().iter().map(|c| quote_ident(c.name)).collect();
            format!("COPY {} ({}) FROM STDIN", quote_ident(table.name()), names.join(", "))
        }
        Route::Staged => staging::create(conn, table).await?,
    };
    let mut copy = conn.copy_in_raw(&copy_sql).await?;
    let mut problems = Problems::new(options.max_errors);
    let mut given = Given::new(table);
    let mut buffer = String::with_capacity(COPY_CHUNK_BYTES + 4096);
    loop {
        let raw = match rows.next_row() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => {
                let desynchronised = rows.is_desynchronised(&e);
                problems.push(e);
                if desynchronised {
                    break;
                }
                continue;
            }
        };
        given.rows += 1;
        let mut row: Vec<Normalized> = Vec::with_capacity(raw.cells.len());
        let mut row_ok = true;
        for (column, cell) in table.columns().iter().zip(&raw.cells) {
            match normalize(column, cell, &now) {
                Ok(value) => row.push(value),
                Err(e) => {
                    row_ok = false;
                    problems.push(RowError::at(raw.line, e));
                    row.push(Normalized { value: None, given: false });
                }
            }
        }
        if row_ok && all_known {
            for (column, value) in table.columns().iter().zip(&row) {
                if column.required && value.value.is_none() {
                    row_ok = false;
                    problems.push(RowError::new(raw.line, column.name, "", "is required for a new row"));
                }
            }
        }
        if row_ok && let Err(e) = table.check_row(&row, all_known) {
            problems.push(RowError::at(raw.line, e));
            row_ok = false;
        }
        for (count, value) in given.counts.iter_mut().zip(&row) {
            *count += u64::from(value.given);
        }
        if row_ok && problems.is_empty() {
            encode_copy_row(&mut buffer, (route == Route::Staged).then_some(raw.line), &row);
            if buffer.len() >= COPY_CHUNK_BYTES {
                copy.send(buffer.as_bytes()).await?;
                buffer.clear();
            }
        }
        if given.rows.is_multiple_of(PROGRESS_EVERY) {
            progress(given.rows);
        }
    }
    progress(given.rows);
    if !problems.is_empty() {
        copy.abort("cabinet-db: the file has invalid rows").await.ok();
        return Err(problems.into_error().into());
    }
    finish(copy, &buffer).await.map_err(Failure::Conflict)?;
    if route == Route::Direct {
        return Ok(ImportReport { rows: given.rows, inserted: given.rows, updated: 0 });
    }

    staging::analyze(conn).await?;
    let mut problems = Problems::new(options.max_errors);
    staging::check(conn, table, options.mode, &mut problems).await?;
    if !problems.is_empty() {
        return Err(problems.into_error().into());
    }
    sqlx::raw_sql("SAVEPOINT cabinet_merge").execute(&mut *conn).await?;
    match staging::merge(conn, table, options.mode, &given).await {
        Ok((inserted, updated)) => Ok(ImportReport { rows: given.rows, inserted, updated }),
        Err(e) if is_constraint_violation(&e) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT cabinet_merge").execute(&mut *conn).await?;
            staging::diagnose(conn, table, options.mode, &mut problems).await?;
            if problems.is_empty() { Err(Failure::Conflict(e)) } else { Err(problems.into_error().into()) }
        }
        Err(e) => Err(Failure::Conflict(e)),
    }
}

async fn finish(mut copy: PgCopyIn<&mut PgConnection>, buffer: &str) -> Result<u64, sqlx::Error> {
    copy.send(buffer.as_bytes()).await?;
    copy.finish().await
}

/// Appends one row in COPY's text format: for the staging table, the line first and the
/// `given_` flags last.
fn encode_copy_row(out: &mut String, line: Option<usize>, row: &[Normalized]) {
    if let Some(line) = line {
        out.push_str(&line.to_string());
        out.push('\t');
    }
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match &value.value {
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
    if line.is_some() {
        for value in row {
            out.push_str(if value.given { "\tt" } else { "\tf" });
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_text_and_carry_the_given_flags() {
        let row = vec![
            Normalized { value: Some("a\tb\\c\nd".into()), given: true },
            Normalized { value: None, given: false },
        ];
        let mut out = String::new();
        encode_copy_row(&mut out, Some(7), &row);
        assert_eq!(out, "7\ta\\tb\\\\c\\nd\t\\N\tt\tf\n");
        out.clear();
        encode_copy_row(&mut out, None, &row);
        assert_eq!(out, "a\\tb\\\\c\\nd\t\\N\n");
    }
}
