//! `migrate sql`: the exact SQL an upgrade or downgrade runs, without a database (Alembic's
//! `--sql` mode), for review or for a DBA to run by hand.

use super::{
    error::MigrateError,
    ledger::{self, hex},
    runner::{Direction, RunnerOptions, migration_actor},
    source::{MigrationSet, format_version},
};
use crate::db::quote_literal;

/// The script moving a database from version `from` to version `to` (either direction).
pub(crate) fn render(
    set: &MigrationSet,
    from: i64,
    to: i64,
    options: &RunnerOptions,
) -> Result<String, MigrateError> {
    for version in [from, to] {
        if version != 0 && set.get(version).is_none() {
            return Err(MigrateError::UnknownTarget { version, head: set.head() });
        }
    }
    let mut out = format!(
        "-- cabinet-db migrate sql: from {} to {} ({} migrations)\n\\set ON_ERROR_STOP on\n\n",
        format_version(from),
        format_version(to),
        set.origin()
    );
    if from == 0 && to > 0 {
        out.push_str(ledger::CREATE_TABLE_SQL);
        out.push('\n');
    }
    // `LOCAL` inside a migration's transaction, session-wide (then reset) outside one.
    let settings = |scope: &str, actor: String| {
        format!(
            "SET {scope}lock_timeout = '{}ms';\nSET {scope}statement_timeout = '{}ms';\nSET {scope}cabinet.actor = {};\n",
            options.ddl_lock_timeout.as_millis(),
            options.statement_timeout.as_millis(),
            quote_literal(&actor),
        )
    };
    let steps: Vec<_> = if to >= from {
        set.iter().filter(|m| m.version > from && m.version <= to).map(|m| (m, true)).collect()
    } else {
        set.iter().rev().filter(|m| m.version > to && m.version <= from).map(|m| (m, false)).collect()
    };
    for (migration, is_up) in steps {
        let script = if is_up { &migration.up } else { &migration.down };
        let bookkeeping = if is_up {
            format!(
                "INSERT INTO cabinet_migrations (version, name, checksum, execution_ms) VALUES ({}, {}, '\\x{}', 0);\n",
                migration.version,
                quote_literal(&migration.name),
                hex(&migration.up.checksum)
            )
        } else {
            format!("DELETE FROM cabinet_migrations WHERE version = {};\n", migration.version)
        };
        out.push_str(&format!("-- {}\n", script.file));
        let direction = if is_up { Direction::Up } else { Direction::Down };
        let actor = migration_actor(migration, direction, options.actor.as_ref());
        if script.no_transaction {
            out.push_str(&settings("", actor));
            out.push_str(script.sql.trim_end());
            out.push('\n');
            out.push_str(&bookkeeping);
            out.push_str("RESET lock_timeout;\nRESET statement_timeout;\nRESET cabinet.actor;\n\n");
        } else {
            out.push_str("BEGIN;\n");
            out.push_str(&settings("LOCAL ", actor));
            out.push_str(script.sql.trim_end());
            out.push('\n');
            out.push_str(&bookkeeping);
            out.push_str("COMMIT;\n\n");
        }
    }
    Ok(out)
}
