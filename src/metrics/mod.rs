//! Metrics of what only cabinet-db knows, in Prometheus' text format: `cabinet-db metrics`
//! prints them (for node_exporter's textfile collector and for people). What postgres_exporter
//! and Patroni's own `/metrics` export is left to them.

/// What the database says: connections per role against their limits, migrations, history.
mod database;
/// Prometheus' text format, label values escaped.
pub(crate) mod exposition;

use crate::{db::DatabaseUrl, roles::Roles};

/// One scrape's text: every family cabinet-db exports from here.
pub(crate) async fn scrape(url: &DatabaseUrl, roles: &Roles) -> String {
    exposition::render(&database::families(url, roles).await)
}
