//! The shapes the models are declared in: tables, columns, constraints, indexes, triggers and
//! functions, and the DDL each one means. `schema` declares the records with them, `history`
//! and `activity` the rest; none of them is needed to read these types.

/// A table of the application schema (all live in schema `public`).
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    pub(crate) name: &'static str,
    pub(crate) kind: TableKind,
    pub(crate) columns: &'static [ColumnDef],
    pub constraints: &'static [ConstraintDef],
    pub indexes: &'static [IndexDef],
    pub triggers: &'static [TriggerDef],
}

/// What a table holds, which decides who may write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableKind {
    /// The records this database is the source of truth for: `sites`, `users`.
    Record,
    /// Their change history, written only by the history triggers (append-only).
    History,
}

/// A trigger on its table; `definition` is `CREATE TRIGGER …` with `{table}` and `{schema}`
/// (the qualifier of the table and of its function) left to fill in.
#[derive(Debug, Clone, Copy)]
pub struct TriggerDef {
    pub(crate) name: &'static str,
    pub(crate) definition: &'static str,
}

/// A function of the schema (the history's trigger functions); `definition` is `CREATE
/// FUNCTION {schema}name() …`, its body exactly as the migration writes it (PostgreSQL keeps
/// bodies verbatim, so drift compares them as text).
#[derive(Debug, Clone, Copy)]
pub struct FunctionDef {
    pub(crate) name: &'static str,
    pub(crate) definition: &'static str,
}

impl TriggerDef {
    /// The statement, for a table and function in `qualifier` (`""` or `pg_temp.`).
    pub(crate) fn create_sql(&self, table: &str, qualifier: &str) -> String {
        format!(
            "{};\n",
            self.definition.replace("{table}", &format!("{qualifier}{table}")).replace("{schema}", qualifier)
        )
    }
}

impl FunctionDef {
    pub(crate) fn create_sql(&self, qualifier: &str) -> String {
        format!("{};\n", self.definition.replace("{schema}", qualifier))
    }
}

/// A column: its SQL type as written in DDL, nullability and default expression.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnDef {
    pub(crate) name: &'static str,
    pub(crate) sql_type: &'static str,
    pub(crate) not_null: bool,
    pub(crate) default: Option<&'static str>,
}

/// A named table constraint (`PRIMARY KEY`, `UNIQUE` or `CHECK`).
#[derive(Debug, Clone, Copy)]
pub struct ConstraintDef {
    pub(crate) name: &'static str,
    /// The constraint clause after `CONSTRAINT <name>`.
    pub(crate) definition: &'static str,
    /// What a violation means, said to the person who caused it.
    pub(crate) meaning: &'static str,
}

/// A secondary index that no constraint creates.
#[derive(Debug, Clone, Copy)]
pub struct IndexDef {
    pub(crate) name: &'static str,
    pub(crate) unique: bool,
    /// The key list, with parentheses: `(lower(email))`.
    pub(crate) keys: &'static str,
}

impl TableDef {
    /// `CREATE TABLE` for this table; `qualifier` is prepended to the name (`""` or `pg_temp.`).
    pub(crate) fn create_table_sql(&self, qualifier: &str) -> String {
        let mut lines: Vec<String> = self.columns.iter().map(ColumnDef::ddl).collect();
        lines.extend(self.constraints.iter().map(|c| format!("CONSTRAINT {} {}", c.name, c.definition)));
        format!("CREATE TABLE {qualifier}{} (\n    {}\n);\n", self.name, lines.join(",\n    "))
    }

    pub(crate) fn create_index_sql(&self, index: &IndexDef, qualifier: &str) -> String {
        format!(
            "CREATE {}INDEX {} ON {qualifier}{} {};\n",
            if index.unique { "UNIQUE " } else { "" },
            index.name,
            self.name,
            index.keys
        )
    }

    /// The table, its indexes and its triggers, as a migration would create them.
    pub(crate) fn create_sql(&self, qualifier: &str) -> String {
        let mut sql = self.create_table_sql(qualifier);
        for index in self.indexes {
            sql.push_str(&self.create_index_sql(index, qualifier));
        }
        for trigger in self.triggers {
            sql.push_str(&trigger.create_sql(self.name, qualifier));
        }
        sql
    }
}

impl ColumnDef {
    /// The column as it appears in `CREATE TABLE` or `ADD COLUMN`.
    pub(crate) fn ddl(&self) -> String {
        let mut ddl = format!("{} {}", self.name, self.sql_type);
        if let Some(default) = self.default {
            ddl.push_str(" DEFAULT ");
            ddl.push_str(default);
        }
        if self.not_null {
            ddl.push_str(" NOT NULL");
        }
        ddl
    }
}
