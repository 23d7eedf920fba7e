use std::fmt;

use serde::Serialize;

use super::snapshot::{IndexSnapshot, RowSecurity, Snapshot, TableSnapshot};
use crate::{db::quote_literal, models::schema};

/// One way the live schema differs from the models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    MissingTable {
        table: String,
    },
    UnexpectedTable {
        table: String,
    },
    MissingColumn {
        table: String,
        column: String,
    },
    UnexpectedColumn {
        table: String,
        column: String,
        data_type: String,
    },
    ColumnType {
        table: String,
        column: String,
        expected: String,
        actual: String,
    },
    Nullability {
        table: String,
        column: String,
        expected_not_null: bool,
    },
    Default {
        table: String,
        column: String,
        expected: Option<String>,
        actual: Option<String>,
    },
    MissingConstraint {
        table: String,
        name: String,
        definition: String,
    },
    UnexpectedConstraint {
        table: String,
        name: String,
        definition: String,
    },
    ConstraintDefinition {
        table: String,
        name: String,
        expected: String,
        actual: String,
    },
    MissingIndex {
        table: String,
        name: String,
        definition: String,
    },
    UnexpectedIndex {
        table: String,
        name: String,
        definition: String,
    },
    IndexDefinition {
        table: String,
        name: String,
        expected: String,
        actual: String,
    },
    MissingTrigger {
        table: String,
        name: String,
        definition: String,
    },
    UnexpectedTrigger {
        table: String,
        name: String,
        definition: String,
    },
    TriggerDefinition {
        table: String,
        name: String,
        expected: String,
        actual: String,
    },
    UnexpectedRule {
        table: String,
        name: String,
        definition: String,
    },
    RowSecurity {
        table: String,
        expected: RowSecurity,
        actual: RowSecurity,
    },
    UnexpectedPolicy {
        table: String,
        name: String,
        definition: String,
    },
    MissingFunction {
        name: String,
    },
    UnexpectedFunction {
        name: String,
    },
    /// The header (owner's rights, `search_path`) or the body differ; both are long, so the
    /// message names the function and `migrate diff` replaces it.
    FunctionDefinition {
        name: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Difference::*;
        match self {
            MissingTable { table } => write!(f, "table {table} is missing"),
            UnexpectedTable { table } => write!(
                f,
                "table {table} exists but is not in the models (chat history, embeddings and n8n data belong in other databases)"
            ),
            MissingColumn { table, column } => write!(f, "{table}.{column} is missing"),
            UnexpectedColumn { table, column, data_type } => {
                write!(f, "{table}.{column} ({data_type}) exists but is not in the models")
            }
            ColumnType { table, column, expected, actual } => {
                write!(f, "{table}.{column} has type {actual}, the models say {expected}")
            }
            Nullability { table, column, expected_not_null: true } => {
                write!(f, "{table}.{column} allows NULL, the models say NOT NULL")
            }
            Nullability { table, column, expected_not_null: false } => {
                write!(f, "{table}.{column} is NOT NULL, the models allow NULL")
            }
            Default { table, column, expected, actual } => write!(
                f,
                "{table}.{column} has default {}, the models say {}",
                actual.as_deref().unwrap_or("(none)"),
                expected.as_deref().unwrap_or("(none)")
            ),
            MissingConstraint { table, name, definition } => {
                write!(f, "{table}: constraint {name} is missing ({definition})")
            }
            UnexpectedConstraint { table, name, definition } => {
                write!(f, "{table}: constraint {name} ({definition}) is not in the models")
            }
            ConstraintDefinition { table, name, expected, actual } => {
                write!(f, "{table}: constraint {name} is {actual}, the models say {expected}")
            }
            MissingIndex { table, name, definition } => {
                write!(f, "{table}: index {name} is missing ({definition})")
            }
            UnexpectedIndex { table, name, definition } => {
                write!(f, "{table}: index {name} ({definition}) is not in the models")
            }
            IndexDefinition { table, name, expected, actual } => {
                write!(f, "{table}: index {name} is {actual}, the models say {expected}")
            }
            MissingTrigger { table, name, definition } => {
                write!(f, "{table}: trigger {name} is missing ({definition})")
            }
            UnexpectedTrigger { table, name, definition } => write!(
                f,
                "{table}: trigger {name} ({definition}) is not in the models: it runs on every write, whoever writes"
            ),
            TriggerDefinition { table, name, expected, actual } => {
                write!(f, "{table}: trigger {name} is {actual}, the models say {expected}")
            }
            UnexpectedRule { table, name, definition } => write!(
                f,
                "{table}: rule {name} ({definition}) is not in the models: it rewrites what clients' statements do"
            ),
            RowSecurity { table, actual, .. } => write!(
                f,
                "{table}: row-level security is {}{}, the models have it off: rows can silently disappear from clients' results",
                if actual.enabled { "on" } else { "off" },
                if actual.forced { " and forced" } else { "" }
            ),
            UnexpectedPolicy { table, name, definition } => {
                write!(f, "{table}: row-level security policy {name} ({definition}) is not in the models")
            }
            MissingFunction { name } => write!(f, "function {name} is missing"),
            UnexpectedFunction { name } => write!(f, "function {name} exists but is not in the models"),
            FunctionDefinition { name } => write!(
                f,
                "function {name} differs from the models (its body, owner's rights or search_path): someone replaced it"
            ),
        }
    }
}

/// What it takes to turn `live` into `model`.
pub fn compare(model: &Snapshot, live: &Snapshot) -> Vec<Difference> {
    let mut out = Vec::new();
    for (name, expected) in &model.tables {
        match live.tables.get(name) {
            None => out.push(Difference::MissingTable { table: name.clone() }),
            Some(actual) => compare_table(name, expected, actual, &mut out),
        }
    }
    for name in live.tables.keys().filter(|n| !model.tables.contains_key(*n)) {
        out.push(Difference::UnexpectedTable { table: name.clone() });
    }
    for (name, expected) in &model.functions {
        match live.functions.get(name) {
            None => out.push(Difference::MissingFunction { name: name.clone() }),
            Some(actual) if actual != expected => {
                out.push(Difference::FunctionDefinition { name: name.clone() })
            }
            Some(_) => {}
        }
    }
    for name in live.functions.keys().filter(|n| !model.functions.contains_key(*n)) {
        out.push(Difference::UnexpectedFunction { name: name.clone() });
    }
    out
}

fn compare_table(table: &str, expected: &TableSnapshot, actual: &TableSnapshot, out: &mut Vec<Difference>) {
    let t = || table.to_owned();
    for column in &expected.columns {
        let Some(live) = actual.column(&column.name) else {
            out.push(Difference::MissingColumn { table: t(), column: column.name.clone() });
            continue;
        };
        if live.data_type != column.data_type {
            out.push(Difference::ColumnType {
                table: t(),
                column: column.name.clone(),
                expected: column.data_type.clone(),
                actual: live.data_type.clone(),
            });
        }
        if live.not_null != column.not_null {
            out.push(Difference::Nullability {
                table: t(),
                column: column.name.clone(),
                expected_not_null: column.not_null,
            });
        }
        if live.default != column.default {
            out.push(Difference::Default {
                table: t(),
                column: column.name.clone(),
                expected: column.default.clone(),
                actual: live.default.clone(),
            });
        }
    }
    for column in actual.columns.iter().filter(|c| expected.column(&c.name).is_none()) {
        out.push(Difference::UnexpectedColumn {
            table: t(),
            column: column.name.clone(),
            data_type: column.data_type.clone(),
        });
    }
    for (name, definition) in &expected.constraints {
        match actual.constraints.get(name) {
            None => out.push(Difference::MissingConstraint {
                table: t(),
                name: name.clone(),
                definition: definition.clone(),
            }),
            Some(live) if live != definition => out.push(Difference::ConstraintDefinition {
                table: t(),
                name: name.clone(),
                expected: definition.clone(),
                actual: live.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, definition) in
        actual.constraints.iter().filter(|(n, _)| !expected.constraints.contains_key(*n))
    {
        out.push(Difference::UnexpectedConstraint {
            table: t(),
            name: name.clone(),
            definition: definition.clone(),
        });
    }
    for (name, index) in &expected.indexes {
        match actual.indexes.get(name) {
            None => out.push(Difference::MissingIndex {
                table: t(),
                name: name.clone(),
                definition: describe(index),
            }),
            Some(live) if live != index => out.push(Difference::IndexDefinition {
                table: t(),
                name: name.clone(),
                expected: describe(index),
                actual: describe(live),
            }),
            Some(_) => {}
        }
    }
    for (name, index) in actual.indexes.iter().filter(|(n, _)| !expected.indexes.contains_key(*n)) {
        out.push(Difference::UnexpectedIndex { table: t(), name: name.clone(), definition: describe(index) });
    }
    for (name, definition) in &expected.triggers {
        match actual.triggers.get(name) {
            None => out.push(Difference::MissingTrigger {
                table: t(),
                name: name.clone(),
                definition: definition.clone(),
            }),
            Some(live) if live != definition => out.push(Difference::TriggerDefinition {
                table: t(),
                name: name.clone(),
                expected: definition.clone(),
                actual: live.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, definition) in actual.triggers.iter().filter(|(n, _)| !expected.triggers.contains_key(*n)) {
        out.push(Difference::UnexpectedTrigger {
            table: t(),
            name: name.clone(),
            definition: definition.clone(),
        });
    }
    for (name, definition) in actual.rules.iter().filter(|(n, _)| !expected.rules.contains_key(*n)) {
        out.push(Difference::UnexpectedRule {
            table: t(),
            name: name.clone(),
            definition: definition.clone(),
        });
    }
    if actual.row_security != expected.row_security {
        out.push(Difference::RowSecurity {
            table: t(),
            expected: expected.row_security,
            actual: actual.row_security,
        });
    }
    for (name, definition) in actual.policies.iter().filter(|(n, _)| !expected.policies.contains_key(*n)) {
        out.push(Difference::UnexpectedPolicy {
            table: t(),
            name: name.clone(),
            definition: definition.clone(),
        });
    }
}

fn describe(index: &IndexSnapshot) -> String {
    if index.unique { format!("UNIQUE {}", index.definition) } else { index.definition.clone() }
}

/// SQL that brings the live schema to the models: a reviewed draft for a new migration.
///
/// Statements are ordered so each one can succeed: functions and new tables first, then constraints and
/// indexes that will change are dropped, columns are added and converted, and the model's
/// constraints and indexes are created last, once the data has its final types. Steps that
/// lose data are marked `DESTRUCTIVE` and come at the very end.
///
/// `assume_timezone` says what zone `timestamp without time zone` values were written in when
/// they become `timestamptz`.
pub(crate) fn to_sql(differences: &[Difference], assume_timezone: &str) -> String {
    to_steps(differences, assume_timezone).concat()
}

/// The same, as steps to run one after the other: each is one statement, or a table with
/// its indexes and triggers (a function's body holds `;` of its own, so the text cannot be
/// split on them).
pub(crate) fn to_steps(differences: &[Difference], assume_timezone: &str) -> Vec<String> {
    use Difference::*;
    let mut phases: [Vec<String>; 9] = [(); 9].map(|_| Vec::new());
    let (functions, create, drop_old, add_columns, convert, defaults, nullability, add_new, destructive) =
        (0, 1, 2, 3, 4, 5, 6, 7, 8);
    for d in differences {
        match d {
            MissingTable { table } => {
                if let Some(def) = schema::table(table) {
                    phases[create].push(def.create_sql(""));
                }
            }
            UnexpectedTable { table } => phases[destructive]
                .push(format!("-- DESTRUCTIVE: drops table {table} and all its rows\nDROP TABLE {table};\n")),
            MissingColumn { table, column } => {
                if let Some(def) = schema::table(table).and_then(|t| t.columns.iter().find(|c| c.name == column)) {
                    phases[add_columns].push(format!("ALTER TABLE {table} ADD COLUMN {};\n", def.ddl()));
                }
            }
            UnexpectedColumn { table, column, .. } => phases[destructive].push(format!(
                "-- DESTRUCTIVE: drops column {table}.{column} and its values\nALTER TABLE {table} DROP COLUMN {column};\n"
            )),
            ColumnType { table, column, expected, actual } => {
                let using = if actual.starts_with("timestamp without time zone")
                    && expected.starts_with("timestamp with time zone")
                {
                    format!("{column} AT TIME ZONE {}", quote_literal(assume_timezone))
                } else {
                    format!("{column}::{expected}")
                };
                phases[convert]
                    .push(format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE {expected} USING {using};\n"));
            }
            Nullability { table, column, expected_not_null: true } => {
                // Rows written before the column was required get the model's default,
                // the value they would have had; without a default they must be fixed by hand.
                let default = schema::table(table)
                    .and_then(|t| t.columns.iter().find(|c| c.name == column))
                    .and_then(|c| c.default);
                if let Some(expr) = default {
                    phases[nullability]
                        .push(format!("UPDATE {table} SET {column} = {expr} WHERE {column} IS NULL;\n"));
                }
                phases[nullability].push(format!("ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\n"));
            }
            Nullability { table, column, expected_not_null: false } => {
                phases[nullability].push(format!("ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;\n"))
            }
            Default { table, column, expected, .. } => phases[defaults].push(match expected {
                Some(expr) => format!("ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {expr};\n"),
                None => format!("ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT;\n"),
            }),
            MissingConstraint { table, name, definition } => {
                phases[add_new].push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition};\n"))
            }
            UnexpectedConstraint { table, name, .. } => {
                phases[drop_old].push(format!("ALTER TABLE {table} DROP CONSTRAINT {name};\n"))
            }
            ConstraintDefinition { table, name, expected, .. } => {
                phases[drop_old].push(format!("ALTER TABLE {table} DROP CONSTRAINT {name};\n"));
                phases[add_new].push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {expected};\n"));
            }
            MissingIndex { table, name, .. } => phases[add_new].extend(create_index(table, name)),
            UnexpectedIndex { name, .. } => phases[drop_old].push(format!("DROP INDEX {name};\n")),
            IndexDefinition { table, name, .. } => {
                phases[drop_old].push(format!("DROP INDEX {name};\n"));
                phases[add_new].extend(create_index(table, name));
            }
            MissingTrigger { table, name, .. } => phases[add_new].extend(create_trigger(table, name)),
            UnexpectedTrigger { table, name, .. } => {
                phases[drop_old].push(format!("DROP TRIGGER {name} ON {table};\n"))
            }
            TriggerDefinition { table, name, .. } => {
                phases[drop_old].push(format!("DROP TRIGGER {name} ON {table};\n"));
                phases[add_new].extend(create_trigger(table, name));
            }
            // Functions come before the tables whose triggers call them.
            MissingFunction { name } => phases[functions].extend(model_function(name).map(|f| f.create_sql(""))),
            FunctionDefinition { name } => phases[functions].extend(
                model_function(name)
                    .map(|f| f.create_sql("").replacen("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)),
            ),
            UnexpectedFunction { name } => phases[drop_old].push(format!("DROP FUNCTION {name};\n")),
            UnexpectedRule { table, name, .. } => phases[drop_old].push(format!("DROP RULE {name} ON {table};\n")),
            RowSecurity { table, expected, actual } => {
                if actual.forced && !expected.forced {
                    phases[drop_old].push(format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;\n"));
                }
                if actual.enabled && !expected.enabled {
                    phases[drop_old].push(format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;\n"));
                }
            }
            UnexpectedPolicy { table, name, .. } => {
                phases[drop_old].push(format!("DROP POLICY {name} ON {table};\n"))
            }
        }
    }
    phases.concat()
}

fn create_trigger(table: &str, name: &str) -> Option<String> {
    let trigger = schema::table(table)?.triggers.iter().find(|t| t.name == name)?;
    Some(trigger.create_sql(table, ""))
}

/// The model's function for a snapshot name such as `cabinet_sites_history()`.
fn model_function(name: &str) -> Option<&'static schema::FunctionDef> {
    schema::function(name.split('(').next().unwrap_or(name))
}

fn create_index(table: &str, name: &str) -> Option<String> {
    let def = schema::table(table)?;
    let index = def.indexes.iter().find(|i| i.name == name)?;
    Some(def.create_index_sql(index, ""))
}
