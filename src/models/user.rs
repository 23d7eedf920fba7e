use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row, postgres::PgRow};

use super::timestamps;

/// A registered user, keyed by the Zitadel `sub`: a row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub(crate) email: Option<String>,
    pub(crate) first_seen: DateTime<Utc>,
    pub(crate) last_seen: DateTime<Utc>,
}

impl User {
    /// The struct's fields in table order; a test holds this equal to the schema model.
    pub(crate) const COLUMNS: [&'static str; 4] = ["user_id", "email", "first_seen", "last_seen"];
}

impl<'r> FromRow<'r, PgRow> for User {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let user_id: String = row.try_get("user_id")?;
        Ok(User {
            first_seen: timestamps::read(row, "users", "user_id", &user_id, "first_seen")?,
            last_seen: timestamps::read(row, "users", "user_id", &user_id, "last_seen")?,
            email: row.try_get("email")?,
            user_id,
        })
    }
}
