//! Metrics of what only cabinet-db knows, in Prometheus' text format: `cabinet-db metrics`
//! prints them (for node_exporter's textfile collector and for people). What postgres_exporter
//! and Patroni's own `/metrics` export is left to them.

/// The newest recorded audit: when, checks by verdict, each failing check.
mod audit;
/// What the database says: connections per role against their limits, migrations, history.
mod database;
/// The drills' record: the newest drill, whether it passed, the newest that did.
mod drills;
/// Prometheus' text format, label values escaped.
pub(crate) mod exposition;

use std::path::Path;

use crate::{db::DatabaseUrl, roles::Roles};

/// One scrape's text: every family cabinet-db exports from here (`backup_config`: pgBackRest's
/// configuration, whose state directory holds the drills' record).
pub(crate) async fn scrape(url: &DatabaseUrl, roles: &Roles, backup_config: &Path) -> String {
    let mut families = database::families(url, roles).await;
    families.extend(drills::families(backup_config));
    exposition::render(&families)
}
