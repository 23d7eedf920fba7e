use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use crate::models::schema::{FUNCTIONS, MIGRATIONS_TABLE, TABLES};

/// The parts of a schema that the models describe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub tables: BTreeMap<String, TableSnapshot>,
    /// Name (with its argument types) → `pg_get_functiondef`, unqualified: the header (owner's
    /// rights, `search_path`) and the body as stored.
    pub functions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableSnapshot {
    /// In column order.
    pub(crate) columns: Vec<ColumnSnapshot>,
    /// Name → definition as `pg_get_constraintdef` prints it.
    pub constraints: BTreeMap<String, String>,
    /// Name → definition from `USING` on, as `pg_get_indexdef` prints it (`btree (last_seen)`).
    pub indexes: BTreeMap<String, IndexSnapshot>,
    /// Name → `pg_get_triggerdef`, with ` (disabled)` or ` (replica only)` when not firing
    /// normally: a disabled trigger is drift too.
    pub triggers: BTreeMap<String, String>,
    /// Name → `pg_get_ruledef` (rewrite rules other than a view's `_RETURN`).
    pub(crate) rules: BTreeMap<String, String>,
    /// `ALTER TABLE … ENABLE / FORCE ROW LEVEL SECURITY`.
    pub(crate) row_security: RowSecurity,
    /// Policy name → command and expressions.
    pub(crate) policies: BTreeMap<String, String>,
}

/// Whether row-level security is on for a table, and forced on its owner too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RowSecurity {
    pub(crate) enabled: bool,
    pub(crate) forced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ColumnSnapshot {
    pub(crate) name: String,
    /// As `format_type` prints it: `text`, `timestamp with time zone`, `character varying(255)`.
    pub(crate) data_type: String,
    pub(crate) not_null: bool,
    pub(crate) default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexSnapshot {
    pub(crate) unique: bool,
    pub(crate) definition: String,
}

impl TableSnapshot {
    pub(crate) fn column(&self, name: &str) -> Option<&ColumnSnapshot> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The models, deparsed by this server: created as temporary tables and rolled back.
pub(crate) async fn model_snapshot(conn: &mut PgConnection) -> Result<Snapshot, sqlx::Error> {
    let mut tx = conn.begin().await?;
    for function in FUNCTIONS {
        sqlx::raw_sql(AssertSqlSafe(function.create_sql("pg_temp."))).execute(&mut *tx).await?;
    }
    for table in TABLES {
        sqlx::raw_sql(AssertSqlSafe(table.create_sql("pg_temp."))).execute(&mut *tx).await?;
    }
    let snapshot = read_schema(&mut tx, SchemaRef::Temporary).await;
    tx.rollback().await?;
    snapshot
}

/// Schema `public` as it is, without the migration bookkeeping table.
pub async fn live_snapshot(conn: &mut PgConnection) -> Result<Snapshot, sqlx::Error> {
    let mut snapshot = read_schema(conn, SchemaRef::Public).await?;
    snapshot.tables.remove(MIGRATIONS_TABLE);
    Ok(snapshot)
}

/// Without the schema a name is qualified with: `public.`, `pg_temp.` or `pg_temp_3.` (the
/// model side lives in this session's temporary schema).
fn unqualified(text: &str) -> String {
    let text = text.replace("public.", "");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("pg_temp") {
        let after = &rest[start + "pg_temp".len()..];
        let suffix = after.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(after.len());
        out.push_str(&rest[..start]);
        if after[suffix..].starts_with('.') {
            rest = &after[suffix + 1..];
        } else {
            out.push_str("pg_temp");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

enum SchemaRef {
    Public,
    Temporary,
}

async fn read_schema(conn: &mut PgConnection, schema: SchemaRef) -> Result<Snapshot, sqlx::Error> {
    let namespace: i64 = match schema {
        SchemaRef::Public => sqlx::query_scalar("SELECT 'public'::regnamespace::oid::bigint"),
        SchemaRef::Temporary => sqlx::query_scalar("SELECT pg_my_temp_schema()::bigint"),
    }
    .fetch_one(&mut *conn)
    .await?;

    let mut snapshot = Snapshot::default();
    let tables = sqlx::query(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
          WHERE relnamespace = $1::oid AND relkind IN ('r', 'p')
          ORDER BY relname",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in tables {
        let row_security = RowSecurity {
            enabled: row.try_get("relrowsecurity")?,
            forced: row.try_get("relforcerowsecurity")?,
        };
        snapshot
            .tables
            .insert(row.try_get("relname")?, TableSnapshot { row_security, ..TableSnapshot::default() });
    }

    let columns = sqlx::query(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS data_type,
                a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_expr
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relnamespace = $1::oid AND c.relkind IN ('r', 'p')
            AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY c.relname, a.attnum",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in columns {
        let table: String = row.try_get("relname")?;
        if let Some(t) = snapshot.tables.get_mut(&table) {
            t.columns.push(ColumnSnapshot {
                name: row.try_get("attname")?,
                data_type: row.try_get("data_type")?,
                not_null: row.try_get("attnotnull")?,
                default: row.try_get("default_expr")?,
            });
        }
    }

    // contype 'n' (PostgreSQL 18's catalogued NOT NULL) is covered by the columns.
    let constraints = sqlx::query(
        "SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) AS definition
           FROM pg_constraint con
           JOIN pg_class c ON c.oid = con.conrelid
          WHERE c.relnamespace = $1::oid AND con.contype IN ('p', 'u', 'c', 'f', 'x')
          ORDER BY c.relname, con.conname",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in constraints {
        let table: String = row.try_get("relname")?;
        if let Some(t) = snapshot.tables.get_mut(&table) {
            t.constraints.insert(row.try_get("conname")?, row.try_get("definition")?);
        }
    }

    let indexes = sqlx::query(
        "SELECT c.relname AS table_name, i.relname AS index_name, ix.indisunique,
                pg_get_indexdef(ix.indexrelid) AS definition
           FROM pg_index ix
           JOIN pg_class i ON i.oid = ix.indexrelid
           JOIN pg_class c ON c.oid = ix.indrelid
          WHERE c.relnamespace = $1::oid
            AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                             WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid
                               AND con.contype IN ('p', 'u', 'x'))
          ORDER BY 1, 2",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in indexes {
        let table: String = row.try_get("table_name")?;
        let full: String = row.try_get("definition")?;
        let definition = full.split_once(" USING ").map_or(full.as_str(), |(_, rest)| rest).to_owned();
        if let Some(t) = snapshot.tables.get_mut(&table) {
            t.indexes.insert(
                row.try_get("index_name")?,
                IndexSnapshot { unique: row.try_get("indisunique")?, definition },
            );
        }
    }

    // Triggers, rules and policies: named per table, so the model side (temporary tables)
    // compares by name; the definitions name the table, so they are compared without it.
    let extras = sqlx::query(
        "SELECT c.relname, 'trigger' AS kind, t.tgname::text AS name,
                pg_get_triggerdef(t.oid)
                  || CASE t.tgenabled WHEN 'O' THEN '' WHEN 'D' THEN ' (disabled)'
                                      WHEN 'R' THEN ' (replica only)' ELSE ' (always)' END AS definition
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = $1::oid AND NOT t.tgisinternal
         UNION ALL
         SELECT c.relname, 'rule', r.rulename::text, pg_get_ruledef(r.oid)
           FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
          WHERE c.relnamespace = $1::oid AND c.relkind IN ('r', 'p') AND r.rulename <> '_RETURN'
         UNION ALL
         SELECT c.relname, 'policy', p.polname::text,
                format('%s FOR %s TO %s%s%s',
                       CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                       (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ')
                          FROM unnest(p.polroles) r),
                       ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                       ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
          WHERE c.relnamespace = $1::oid
          ORDER BY 1, 2, 3",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in extras {
        let table: String = row.try_get("relname")?;
        let kind: String = row.try_get("kind")?;
        let name: String = row.try_get("name")?;
        let definition: String = row.try_get("definition")?;
        if let Some(t) = snapshot.tables.get_mut(&table) {
            // One line (a rule's definition spans several), and unqualified like the model side.
            let definition = definition.split_whitespace().collect::<Vec<_>>().join(" ");
            let definition = unqualified(&definition);
            match kind.as_str() {
                "trigger" => t.triggers.insert(name, definition),
                "rule" => t.rules.insert(name, definition),
                _ => t.policies.insert(name, definition),
            };
        }
    }
    let functions = sqlx::query(
        "SELECT p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
                pg_get_functiondef(p.oid) AS definition
           FROM pg_proc p
          WHERE p.pronamespace = $1::oid AND p.prokind = 'f'
          ORDER BY 1",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in functions {
        let definition: String = row.try_get("definition")?;
        // Only the header names the schema; the body is compared exactly as stored.
        let (header, body) = definition.split_once('\n').unwrap_or((definition.as_str(), ""));
        snapshot.functions.insert(row.try_get("name")?, format!("{}\n{body}", unqualified(header)));
    }
    Ok(snapshot)
}
