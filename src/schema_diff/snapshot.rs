use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use crate::models::schema::{MIGRATIONS_TABLE, TABLES};

/// The parts of a schema that the models describe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub tables: BTreeMap<String, TableSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableSnapshot {
    /// In column order.
    pub columns: Vec<ColumnSnapshot>,
    /// Name → definition as `pg_get_constraintdef` prints it.
    pub constraints: BTreeMap<String, String>,
    /// Name → definition from `USING` on, as `pg_get_indexdef` prints it (`btree (last_seen)`).
    pub indexes: BTreeMap<String, IndexSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSnapshot {
    pub name: String,
    /// As `format_type` prints it: `text`, `timestamp with time zone`, `character varying(255)`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexSnapshot {
    pub unique: bool,
    pub definition: String,
}

impl TableSnapshot {
    pub fn column(&self, name: &str) -> Option<&ColumnSnapshot> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The models, deparsed by this server: created as temporary tables and rolled back.
pub async fn model_snapshot(conn: &mut PgConnection) -> Result<Snapshot, sqlx::Error> {
    let mut tx = conn.begin().await?;
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
        "SELECT relname FROM pg_class
          WHERE relnamespace = $1::oid AND relkind IN ('r', 'p')
          ORDER BY relname",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    for row in tables {
        snapshot.tables.insert(row.try_get("relname")?, TableSnapshot::default());
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
    Ok(snapshot)
}
