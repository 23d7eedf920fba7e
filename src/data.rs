//! What the data operations (`sites`, `users`, `transfer`) share: their error type and pages.

use serde::Serialize;

use crate::models::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Refused before the round trip.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Refused by one of the schema's named constraints.
    #[error("{message}")]
    Rejected {
        constraint: String,
        message: String,
        #[source]
        source: sqlx::Error,
    },
    /// Refused by one of the schema's functions (e.g. a sighting in the future): the
    /// database's own sentence, and its hint.
    #[error("{message}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Refused {
        message: String,
        hint: Option<String>,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what} not found")]
    NotFound { what: String },
    /// `--expect-version` met a site that moved on.
    #[error("{0}")]
    Conflict(Box<crate::models::change::VersionConflict>),
    /// A stored value this program cannot represent (e.g. a timestamp of `infinity`).
    #[error(transparent)]
    Unreadable(crate::models::timestamps::UnreadableValue),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for DataError {
    fn from(error: sqlx::Error) -> Self {
        let error = match error {
            sqlx::Error::Decode(source) => {
                match source.downcast::<crate::models::timestamps::UnreadableValue>() {
                    Ok(unreadable) => return DataError::Unreadable(*unreadable),
                    Err(other) => sqlx::Error::Decode(other),
                }
            }
            other => other,
        };
        if let Some(db) = error.as_database_error()
            && db.code().as_deref() == Some(crate::models::activity::REFUSAL_SQLSTATE)
        {
            let message = db.message().to_owned();
            let hint = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|e| e.hint())
                .map(str::to_owned);
            return DataError::Refused { message, hint, source: error };
        }
        let constraint = error.as_database_error().and_then(|e| e.constraint()).map(str::to_owned);
        match (constraint, crate::db::violation_message(&error)) {
            (Some(constraint), Some(message)) => DataError::Rejected { constraint, message, source: error },
            _ => DataError::Query(error),
        }
    }
}

/// How much the database holds: the dashboard's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    pub(crate) sites: i64,
    pub(crate) users: i64,
    /// Recorded versions of sites (`sites_history`'s rows).
    pub(crate) site_versions: i64,
}

/// Exact counts: estimates would be cheaper on huge tables, but 10k sites and 1M users (an
/// index-only scan) take milliseconds, and people compare them with other tools.
pub(crate) async fn totals(executor: impl sqlx::PgExecutor<'_>) -> Result<Totals, DataError> {
    let (sites, users, site_versions): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM users), (SELECT count(*) FROM sites_history)",
    )
    .fetch_one(executor)
    .await?;
    Ok(Totals { sites, users, site_versions })
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The default and largest page sizes.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 100;
pub(crate) const MAX_PAGE_SIZE: i64 = 10_000;

/// A page size in 1..=[`MAX_PAGE_SIZE`]: anything else is refused, not silently clamped.
pub(crate) fn check_page_size(limit: i64) -> Result<i64, FieldError> {
    if (1..=MAX_PAGE_SIZE).contains(&limit) {
        Ok(limit)
    } else {
        Err(FieldError::new("limit", &limit.to_string(), format!("must be between 1 and {MAX_PAGE_SIZE}")))
    }
}

/// Fetches `limit + 1` rows to learn whether another page follows.
pub(crate) fn into_page<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit.clamp(1, MAX_PAGE_SIZE) as usize;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    };
    Page { items: rows, next }
}
