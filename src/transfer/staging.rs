//! The staged path of an import: rows are copied into a temporary table, checked there
//! against the table as it is, and merged with one statement in key order.
//!
//! Beside each value the staging table keeps whether the file gave it (`given_<column>`), so
//! an upsert changes only what each line names. The merge inserts each row as it would be
//! stored (the file's values over the stored ones), so the table's CHECK rules judge the real
//! result, and `ON CONFLICT … DO UPDATE` sets only the columns a line gave: a value changed
//! concurrently in a column the file leaves alone is never overwritten. Rows are written in
//! key order, so concurrent imports over the same keys wait for each other instead of
//! deadlocking.
//!
//! Every check reports all offending lines (up to the cap) with a total count; a constraint
//! the database raises during the merge is traced back to its lines the same way.

use std::fmt::Write as _;

use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{
    Mode, Table,
    problems::{Problems, RowError},
};
use crate::{
    db::{quote_ident, quote_literal},
    models::schema,
};

/// The temporary table rows are staged in (dropped at commit or rollback).
pub(crate) const STAGING_TABLE: &str = "cabinet_import";

/// How often each column was given, over the whole file.
#[derive(Debug, Clone)]
pub(crate) struct Given {
    pub(crate) rows: u64,
    /// Per column, in table order.
    pub(crate) counts: Vec<u64>,
}

impl Given {
    pub(crate) fn new(table: Table) -> Self {
        Given { rows: 0, counts: vec![0; table.columns().len()] }
    }

    fn everywhere(&self, index: usize) -> bool {
        self.counts[index] == self.rows
    }

    fn nowhere(&self, index: usize) -> bool {
        self.counts[index] == 0
    }
}

fn given_column(name: &str) -> String {
    quote_ident(&format!("given_{name}"))
}

/// Creates the staging table; returns the `COPY` statement that fills it (line, the values,
/// then one `given_` flag per column).
pub(crate) async fn create(conn: &mut PgConnection, table: Table) -> Result<String, sqlx::Error> {
    let mut columns = vec!["line bigint NOT NULL".to_owned()];
    let mut names = vec!["line".to_owned()];
    for column in table.def().columns {
        columns.push(format!("{} {}", quote_ident(column.name), column.sql_type));
        names.push(quote_ident(column.name));
    }
    for column in table.columns() {
        columns.push(format!("{} boolean NOT NULL", given_column(column.name)));
        names.push(given_column(column.name));
    }
    let sql = format!("CREATE TEMPORARY TABLE {STAGING_TABLE} ({}) ON COMMIT DROP", columns.join(", "));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(format!("COPY {STAGING_TABLE} ({}) FROM STDIN", names.join(", ")))
}

/// Gives the planner the staged rows' statistics (temporary tables are never auto-analysed).
pub(crate) async fn analyze(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {STAGING_TABLE}"))).execute(&mut *conn).await?;
    Ok(())
}

/// Runs a problem query: rows of (line, column, value, message, total count).
async fn collect(
    conn: &mut PgConnection,
    sql: String,
    cap: usize,
    problems: &mut Problems,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(cap as i64).fetch_all(&mut *conn).await?;
    let mut found = Vec::new();
    let mut total = 0;
    for row in &rows {
        total = row.try_get::<i64, _>("total")? as u64;
        found.push(RowError::new(
            row.try_get::<i64, _>("line")? as usize,
            &row.try_get::<String, _>("col")?,
            &row.try_get::<Option<String>, _>("val")?.unwrap_or_default(),
            row.try_get::<String, _>("message")?,
        ));
    }
    problems.extend_counted(found, total);
    Ok(())
}

/// Everything wrong with the staged rows that can be seen before writing: keys and domains
/// given twice, domains other sites hold, new rows lacking a required column, and in insert
/// mode keys the table already has.
pub(crate) async fn check(
    conn: &mut PgConnection,
    table: Table,
    mode: Mode,
    problems: &mut Problems,
) -> Result<(), sqlx::Error> {
    let cap = problems.cap;
    let target = quote_ident(table.name());
    let key = quote_ident(table.key());
    let mut unique = vec![table.key()];
    if table == Table::Sites {
        unique.push("domain");
    }
    for column in unique {
        let c = quote_ident(column);
        let given = if column == table.key() { "true".to_owned() } else { given_column(column) };
        collect(
            conn,
            format!(
                "SELECT min(line) AS line, {name} AS col, {c}::text AS val,
                        'appears on lines ' || string_agg(line::text, ', ' ORDER BY line)
                          || '; each value may appear once per file' AS message,
                        count(*) OVER () AS total
                   FROM {STAGING_TABLE} WHERE {given}
                  GROUP BY {c} HAVING count(*) > 1 ORDER BY min(line) LIMIT $1",
                name = quote_literal(column)
            ),
            cap,
            problems,
        )
        .await?;
    }
    if table == Table::Sites {
        collect(
            conn,
            format!(
                "SELECT i.line, 'domain' AS col, i.domain AS val,
                        format('already belongs to site %s; each domain belongs to one site', to_json(s.site_id))
                          AS message,
                        count(*) OVER () AS total
                   FROM {STAGING_TABLE} i JOIN sites s ON s.domain = i.domain AND s.site_id <> i.site_id
                  WHERE i.{given}
                  ORDER BY i.line LIMIT $1",
                given = given_column("domain")
            ),
            cap,
            problems,
        )
        .await?;
    }
    for column in table.columns().iter().filter(|c| c.required && c.name != table.key()) {
        collect(
            conn,
            format!(
                "SELECT i.line, {name} AS col, '' AS val,
                        format('is missing: %s is not in the database yet, and a new row needs it', to_json(i.{key}))
                          AS message,
                        count(*) OVER () AS total
                   FROM {STAGING_TABLE} i
                  WHERE NOT i.{given} AND NOT EXISTS (SELECT 1 FROM {target} t WHERE t.{key} = i.{key})
                  ORDER BY i.line LIMIT $1",
                name = quote_literal(column.name),
                given = given_column(column.name)
            ),
            cap,
            problems,
        )
        .await?;
    }
    if mode == Mode::Insert {
        collect(
            conn,
            format!(
                "SELECT i.line, {key_name} AS col, i.{key} AS val,
                        'already exists in the database; use --mode upsert to update existing rows' AS message,
                        count(*) OVER () AS total
                   FROM {STAGING_TABLE} i JOIN {target} t ON t.{key} = i.{key}
                  ORDER BY i.line LIMIT $1",
                key_name = quote_literal(table.key())
            ),
            cap,
            problems,
        )
        .await?;
    }
    Ok(())
}

/// The select list of each staged row as it would be stored: the file's value where the line
/// gave it (or the row is new), else the stored one; `created_at` never changes.
fn would_be_columns(table: Table) -> Vec<String> {
    let key = quote_ident(table.key());
    table
        .columns()
        .iter()
        .map(|column| {
            let c = quote_ident(column.name);
            if column.name == table.key() {
                format!("i.{c}")
            } else if table.is_immutable(column.name) {
                format!("CASE WHEN stored.{key} IS NULL THEN i.{c} ELSE stored.{c} END")
            } else {
                format!(
                    "CASE WHEN i.{given} OR stored.{key} IS NULL THEN i.{c} ELSE stored.{c} END",
                    given = given_column(column.name)
                )
            }
        })
        .collect()
}

/// `FROM` and join of the would-be rows.
fn would_be_from(table: Table) -> String {
    let key = quote_ident(table.key());
    format!("{STAGING_TABLE} i LEFT JOIN {} stored ON stored.{key} = i.{key}", quote_ident(table.name()))
}

/// Writes the staged rows; returns (inserted, updated).
pub(crate) async fn merge(
    conn: &mut PgConnection,
    table: Table,
    mode: Mode,
    given: &Given,
) -> Result<(u64, u64), sqlx::Error> {
    let key = quote_ident(table.key());
    let names: Vec<String> = table.columns().iter().map(|c| quote_ident(c.name)).collect();
    let mut sets = Vec::new();
    let mut mixed = false;
    for (index, column) in table.columns().iter().enumerate() {
        if column.name == table.key() || table.is_immutable(column.name) || given.nowhere(index) {
            continue;
        }
        let c = quote_ident(column.name);
        if given.everywhere(index) {
            sets.push(format!("{c} = EXCLUDED.{c}"));
        } else {
            // Some lines give it, some do not: each row looks up its own line's flag.
            mixed = true;
            sets.push(format!(
                "{c} = CASE WHEN (SELECT s.{flag} FROM {STAGING_TABLE} s WHERE s.{key} = EXCLUDED.{key})
                            THEN EXCLUDED.{c} ELSE target.{c} END",
                flag = given_column(column.name)
            ));
        }
    }
    if mixed {
        // The duplicate check has passed: keys are unique.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE UNIQUE INDEX ON {STAGING_TABLE} ({key})")))
            .execute(&mut *conn)
            .await?;
    }
    let on_conflict = match (mode, sets.is_empty()) {
        (Mode::Insert, _) => String::new(),
        (Mode::Upsert, true) => format!("ON CONFLICT ({key}) DO NOTHING"),
        (Mode::Upsert, false) => format!("ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", ")),
    };
    let sql = format!(
        "WITH merged AS (
             INSERT INTO {target} AS target ({names})
             SELECT {values} FROM {from} ORDER BY i.{key}
             {on_conflict}
             RETURNING (xmax = 0) AS inserted
         )
         SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged",
        target = quote_ident(table.name()),
        names = names.join(", "),
        values = would_be_columns(table).join(", "),
        from = would_be_from(table),
    );
    let (inserted, updated): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
    Ok((inserted as u64, updated as u64))
}

/// After a merge failed on a constraint: every staged line whose row, as it would be stored,
/// breaks one of the table's CHECK rules, with the column it concerns and whether the file
/// gave that value.
pub(crate) async fn diagnose(
    conn: &mut PgConnection,
    table: Table,
    mode: Mode,
    problems: &mut Problems,
) -> Result<(), sqlx::Error> {
    check(conn, table, mode, problems).await?;
    let checks = sqlx::query(
        "SELECT c.conname::text AS name, pg_get_expr(c.conbin, c.conrelid) AS expr,
                array_agg(a.attname::text ORDER BY k.n) AS columns
           FROM pg_constraint c
           CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
          WHERE c.conrelid = to_regclass($1) AND c.contype = 'c'
          GROUP BY c.conname, c.conbin, c.conrelid
          ORDER BY 1",
    )
    .bind(format!("public.{}", table.name()))
    .fetch_all(&mut *conn)
    .await?;
    let would_be: Vec<String> = would_be_columns(table)
        .into_iter()
        .zip(table.columns())
        .map(|(expr, column)| format!("{expr} AS {}", quote_ident(column.name)))
        .collect();
    let flags: Vec<String> = table
        .columns()
        .iter()
        .filter(|c| c.name != table.key())
        .map(|c| format!("i.{0} AS {0}", given_column(c.name)))
        .collect();
    for constraint in checks {
        let name: String = constraint.try_get("name")?;
        let expr: String = constraint.try_get("expr")?;
        let columns: Vec<String> = constraint.try_get("columns")?;
        let mut shown = String::new();
        for (n, column) in columns.iter().enumerate() {
            let given =
                if column == table.key() { "true".to_owned() } else { format!("w.{}", given_column(column)) };
            let _ = write!(shown, ", w.{}::text AS value_{n}, {given} AS given_{n}", quote_ident(column));
        }
        let sql = format!(
            "SELECT w.line, w.new_row, count(*) OVER () AS total{shown}
               FROM (SELECT i.line, stored.{key} IS NULL AS new_row, {would_be}, {flags} FROM {from}) w
              WHERE NOT ({expr})
              ORDER BY w.line LIMIT $1",
            key = quote_ident(table.key()),
            would_be = would_be.join(", "),
            flags = flags.join(", "),
            from = would_be_from(table),
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(problems.cap as i64).fetch_all(&mut *conn).await?;
        let meaning = schema::constraint(&name).map_or("breaks a rule of the table", |c| c.meaning);
        let mut found = Vec::new();
        let mut total = 0;
        for row in &rows {
            total = row.try_get::<i64, _>("total")? as u64;
            let new_row: bool = row.try_get("new_row")?;
            // The column the file gave, if it gave one of them: that is what to fix.
            let values: Vec<(Option<String>, bool)> = (0..columns.len())
                .map(|n| {
                    Ok((
                        row.try_get(format!("value_{n}").as_str())?,
                        row.try_get(format!("given_{n}").as_str())?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            let pick = values.iter().position(|(_, given)| *given).unwrap_or(0);
            let mut message = format!("{meaning} (constraint {name})");
            for (column, (_, given)) in columns.iter().zip(&values) {
                if !given && column != table.key() {
                    let _ = write!(
                        message,
                        "; {column} is not in the file, so {}",
                        if new_row { "this new row takes its default" } else { "the stored value stays" }
                    );
                }
            }
            found.push(RowError::new(
                row.try_get::<i64, _>("line")? as usize,
                &columns[pick],
                values[pick].0.as_deref().unwrap_or(""),
                message,
            ));
        }
        problems.extend_counted(found, total);
    }
    Ok(())
}
