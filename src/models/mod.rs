//! The models: the one place that says what the database holds.
//!
//! `schema` describes every table, column, constraint and index declaratively; the
//! migrations must produce exactly that (a test checks it) and `migrate check` / `migrate
//! diff` compare a live database with it. `Site` and `User` are the rows as Rust types.

/// User activity (`cabinet_record_seen`): the one implementation of "a user was seen".
pub(crate) mod activity;
/// Rows of the change history and the conflict an update meets.
pub(crate) mod change;
/// Which characters identifiers and e-mail addresses may hold, for Rust and SQL alike.
pub(crate) mod characters;
/// The shapes of the declarations (`TableDef`, `ColumnDef`, `FunctionDef`, …) and their DDL.
pub(crate) mod definitions;
/// `cabinet_forget_user`: a delete-my-data request, run with its caller's rights.
pub(crate) mod erasure;
/// The change history: its tables, the trigger functions that write it, their triggers.
pub mod history;
/// JSON Schema for a site and a user (`models export --json-schema`).
pub(crate) mod json_schema;
/// The declarative schema: tables, columns, constraints, indexes, triggers, functions.
pub mod schema;
/// A row of `sites`.
pub(crate) mod site;
/// The schema as SQLAlchemy 2.0 models (`models export --sqlalchemy`).
pub(crate) mod sqlalchemy;
/// Timestamps: the accepted range, parsing, and reading them without trusting the database.
pub mod timestamps;
/// A row of `users`.
pub(crate) mod user;
/// Validated values (`SiteId`, `Domain`, `LanguageTag`, `Email`, `UserId`).
pub mod values;

pub use site::Site;
pub use user::User;
pub(crate) use values::FieldError;
pub use values::{Domain, Email, LanguageTag, SiteId, UserId};
