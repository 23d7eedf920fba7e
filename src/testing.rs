//! What only the integration tests and the benchmark use — ways in that the program itself never
//! takes, kept in this one place so the rest of the library says what it is.

use std::process::Command;

use crate::{
    backup::{pgbackrest::PgBackRest, secrets::include_dir},
    models::{
        Site, User,
        definitions::TableDef,
        schema::{FUNCTIONS, TABLES},
    },
};

/// The model's SQL for the whole schema, in creation order: functions, then tables (a database
/// built without the migrations, to compare with one built by them).
pub fn create_all_sql() -> String {
    FUNCTIONS
        .iter()
        .map(|f| f.create_sql(""))
        .chain(TABLES.iter().map(|t| t.create_sql("")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table's columns in the model's order.
pub fn column_names(table: &TableDef) -> Vec<&'static str> {
    table.columns.iter().map(|c| c.name).collect()
}

/// `Site`'s fields in table order; a test holds them equal to the schema model.
pub const SITE_FIELDS: [&str; 9] = Site::COLUMNS;

/// `User`'s fields in table order.
pub const USER_FIELDS: [&str; 4] = User::COLUMNS;

/// `pgbackrest server`: a host's TLS server for the other host (no stanza: it serves what its
/// configuration admits), as systemd runs it from `backup schedule`'s unit.
pub fn pgbackrest_server(pgbackrest: &PgBackRest) -> Command {
    let mut cmd = pgbackrest.run_as.command(&pgbackrest.program);
    cmd.arg(format!("--config={}", pgbackrest.config.display()))
        .arg(format!("--config-include-path={}", include_dir(&pgbackrest.config).display()))
        .arg("server");
    cmd
}
