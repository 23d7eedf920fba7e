//! Comparing a live database with the models: the drift check (`migrate check`) and the
//! draft migration (`migrate diff`).
//!
//! Both sides are read through the same catalog queries. The model side is materialised as
//! temporary tables inside a transaction that is rolled back, so PostgreSQL deparses our
//! expressions exactly as it deparses the live ones, on whatever server version this is:
//! `CHECK (domain = lower(domain))` and its stored form compare equal without us
//! re-implementing PostgreSQL's printer.

/// Differences between two snapshots and the SQL that removes them.
pub(crate) mod differences;
/// Reading tables, columns, constraints and indexes from the catalog.
pub(crate) mod snapshot;

use sqlx::PgConnection;

pub use differences::{Difference, compare};
pub(crate) use differences::{to_sql, to_steps};
pub use snapshot::live_snapshot;
pub(crate) use snapshot::model_snapshot;

/// What separates the live database (schema `public`) from the models.
pub async fn drift(conn: &mut PgConnection) -> Result<Vec<Difference>, sqlx::Error> {
    let model = model_snapshot(conn).await?;
    let live = live_snapshot(conn).await?;
    Ok(compare(&model, &live))
}
