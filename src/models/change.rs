//! Rows of the change history (`sites_history`, `users_history`) as Rust types, and the
//! conflict an update that names a version meets: what the library reads back and every
//! layer above shows.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Row, postgres::PgRow};

use super::timestamps;

/// One recorded change of a site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SiteChange {
    pub(crate) site_id: String,
    pub(crate) version: i64,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub(crate) operation: String,
    pub(crate) changed_at: DateTime<Utc>,
    pub(crate) actor: String,
    /// The role the writer connected as.
    pub(crate) session_role: String,
    pub(crate) application_name: String,
    pub(crate) client_addr: Option<String>,
    pub(crate) changed_fields: Vec<String>,
    /// Set when this change put an earlier version back (`sites revert`, `sites restore`).
    pub(crate) restores_version: Option<i64>,
    /// Set when this change is an edit made on that older version, merged into the version
    /// before this one (the admin panel's save after someone else's).
    pub(crate) merges_version: Option<i64>,
    pub(crate) old_row: Option<serde_json::Value>,
    pub(crate) new_row: Option<serde_json::Value>,
}

impl<'r> sqlx::FromRow<'r, PgRow> for SiteChange {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let site_id: String = row.try_get("site_id")?;
        Ok(SiteChange {
            changed_at: timestamps::read(row, "sites_history", "site_id", &site_id, "changed_at")?,
            site_id,
            version: row.try_get("version")?,
            operation: row.try_get("operation")?,
            actor: row.try_get("actor")?,
            session_role: row.try_get("session_role")?,
            application_name: row.try_get("application_name")?,
            client_addr: row.try_get("client_addr")?,
            changed_fields: row.try_get("changed_fields")?,
            restores_version: row.try_get("restores_version")?,
            merges_version: row.try_get("merges_version")?,
            old_row: row.try_get("old_row")?,
            new_row: row.try_get("new_row")?,
        })
    }
}

/// One recorded change of a user: creation, e-mail change or deletion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UserChange {
    pub(crate) user_id: String,
    pub(crate) version: i64,
    pub(crate) operation: String,
    pub(crate) changed_at: DateTime<Utc>,
    pub(crate) actor: String,
    pub(crate) session_role: String,
    pub(crate) old_email: Option<String>,
    pub(crate) new_email: Option<String>,
    /// Set once the user was forgotten: the e-mail addresses above are gone.
    pub(crate) forgotten_at: Option<DateTime<Utc>>,
    pub(crate) forgotten_by: Option<String>,
}

impl<'r> sqlx::FromRow<'r, PgRow> for UserChange {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let user_id: String = row.try_get("user_id")?;
        let forgotten: Option<timestamps::Checked> = row.try_get("forgotten_at")?;
        Ok(UserChange {
            changed_at: timestamps::read(row, "users_history", "user_id", &user_id, "changed_at")?,
            user_id,
            version: row.try_get("version")?,
            operation: row.try_get("operation")?,
            actor: row.try_get("actor")?,
            session_role: row.try_get("session_role")?,
            old_email: row.try_get("old_email")?,
            new_email: row.try_get("new_email")?,
            forgotten_at: forgotten.map(|c| c.0),
            forgotten_by: row.try_get("forgotten_by")?,
        })
    }
}

/// The conflict an `--expect-version` update met: what happened since.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionConflict {
    pub(crate) site_id: String,
    pub(crate) expected: i64,
    pub(crate) current: i64,
    /// The change that made the current version (absent for a site never recorded).
    pub(crate) latest: Option<SiteChange>,
}

impl fmt::Display for VersionConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "site {} is at version {}, not {}", self.site_id, self.current, self.expected)?;
        if let Some(change) = &self.latest {
            write!(
                f,
                ": {} by {} at {}",
                change.operation.to_lowercase(),
                change.actor,
                change.changed_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
            if !change.changed_fields.is_empty() {
                write!(f, " changed {}", change.changed_fields.join(", "))?;
            }
        }
        write!(
            f,
            ". Nothing was written: read it again (cabinet-db sites get {}) and redo your change on version {}",
            self.site_id, self.current
        )
    }
}
