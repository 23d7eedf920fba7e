//! Users: lookups, deletion, and activity recording. Functions take `impl PgExecutor`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};

use crate::{
    data::{DataError, Page, into_page},
    history::{self, Actor},
    models::{Email, User, UserId},
};

const COLUMNS: &str = "user_id, email, first_seen, last_seen";

/// Events closer than this to the stored `last_seen` (with the same e-mail) write nothing.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(60);

/// A sighting of a user: a login, a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    pub user_id: UserId,
    pub email: Option<Email>,
    pub at: DateTime<Utc>,
}

/// What `record_seen` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeenReport {
    /// Distinct users in the batch.
    pub users: usize,
    pub inserted: usize,
    pub updated: usize,
    /// Users whose row needed no write (debounced, or older news).
    pub unchanged: usize,
}

/// Filters for `list`.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exact address, compared case-insensitively.
    pub email: Option<String>,
    pub seen_after: Option<DateTime<Utc>>,
    pub seen_before: Option<DateTime<Utc>>,
}

pub async fn get(executor: impl PgExecutor<'_>, user_id: &UserId) -> Result<Option<User>, DataError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE user_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str()).fetch_optional(executor).await?)
}

/// Users ordered by `user_id`, one page at a time (keyset).
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &UserFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<User>, DataError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users
          WHERE ($1::text IS NULL OR user_id > $1)
            AND ($2::text IS NULL OR lower(email) = lower($2))
            AND ($3::timestamptz IS NULL OR last_seen >= $3)
            AND ($4::timestamptz IS NULL OR last_seen < $4)
          ORDER BY user_id
          LIMIT $5"
    );
    let rows: Vec<User> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(filter.email.as_deref())
        .bind(filter.seen_after)
        .bind(filter.seen_before)
        .bind(crate::data::check_page_size(limit)? + 1)
        .fetch_all(executor)
        .await?;
    Ok(into_page(rows, limit, |u| u.user_id.clone()))
}

/// Filters for `search`.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// The start of an e-mail address (any case) or of a user id.
    pub prefix: Option<String>,
    pub seen_after: Option<DateTime<Utc>>,
    pub seen_before: Option<DateTime<Utc>>,
}

/// Finds users by the start of their e-mail address (any case) or id, ordered by `user_id`,
/// one page at a time (keyset). Both prefixes are index range scans
/// (`users_email_prefix_idx`, `users_user_id_prefix_idx`) also in a prepared statement's
/// generic plan: the ranges are written out (`~>=~`, `~<~`) instead of `LIKE 'x%'`, whose
/// index use needs the pattern at plan time.
pub async fn search(
    executor: impl PgExecutor<'_>,
    search: &UserSearch,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<User>, DataError> {
    let prefix = search.prefix.as_deref().filter(|p| !p.is_empty());
    let sql = search_sql(prefix.is_some());
    let rows: Vec<User> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(prefix)
        .bind(after)
        .bind(search.seen_after)
        .bind(search.seen_before)
        .bind(crate::data::check_page_size(limit)? + 1)
        .fetch_all(executor)
        .await?;
    Ok(into_page(rows, limit, |u| u.user_id.clone()))
}

/// The statement `search` runs ($1 prefix, $2 after, $3/$4 last-seen range, $5 limit), for
/// `EXPLAIN`. Two fixed statements, chosen by whether there is a prefix: an `OR $1 IS NULL`
/// would keep the planner from using the indexes.
pub fn search_sql(with_prefix: bool) -> String {
    const FILTERS: &str = "($2::text IS NULL OR user_id > $2)
            AND ($3::timestamptz IS NULL OR last_seen >= $3)
            AND ($4::timestamptz IS NULL OR last_seen < $4)";
    if with_prefix {
        // chr(1114111) (U+10FFFF) sorts after every character in text_pattern_ops' byte order.
        // `~<~` binds like `||` (left to right): the parentheses are needed.
        format!(
            "SELECT {COLUMNS} FROM users
              WHERE ((lower(email) ~>=~ lower($1) AND lower(email) ~<~ (lower($1) || chr(1114111))
                      AND starts_with(lower(email), lower($1)))
                  OR (user_id ~>=~ $1 AND user_id ~<~ ($1 || chr(1114111)) AND starts_with(user_id, $1)))
                AND {FILTERS}
              ORDER BY user_id LIMIT $5"
        )
    } else {
        format!("SELECT {COLUMNS} FROM users WHERE $1::text IS NULL AND {FILTERS} ORDER BY user_id LIMIT $5")
    }
}

/// `true` when a user was deleted. The history names `actor` (when given; else the
/// session's actor or role) as the one who deleted it.
pub async fn delete(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    user_id: &UserId,
) -> Result<bool, DataError> {
    let mut tx = history::begin_as(conn, actor).await?;
    let result =
        sqlx::query("DELETE FROM users WHERE user_id = $1").bind(user_id.as_str()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(result.rows_affected() == 1)
}

/// Records sightings in one statement, whatever the batch size, through the database's own
/// `cabinet_record_seen_many` (src/models/activity.rs says what it keeps): the main
/// application and any other writer call the same function, so the rules hold for all.
///
/// - A new user gets `first_seen = last_seen = at`.
/// - Later events keep `first_seen` the earliest and `last_seen` the latest ever seen.
/// - A newer event with a different e-mail updates it; an older one does not.
/// - An event within `debounce` of the stored `last_seen`, with the same e-mail, writes
///   nothing: no WAL and no dead tuple.
/// - An event more than five minutes ahead of the database server's clock is refused.
///
/// It takes no actor: it is the sign-in path's hot loop, one statement on a pooled
/// connection. A user it creates (or whose e-mail it changes) is recorded in the history as
/// done by the connection's `cabinet.actor`, else its role — the service that saw the user.
pub async fn record_seen(
    executor: impl PgExecutor<'_>,
    events: &[SeenEvent],
    debounce: Duration,
) -> Result<SeenReport, DataError> {
    let (mut ids, mut emails, mut times) = (
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
    );
    for event in events {
        ids.push(event.user_id.as_str());
        emails.push(event.email.as_ref().map(Email::as_str));
        times.push(event.at);
    }
    let (users, inserted, updated, unchanged): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT * FROM cabinet_record_seen_many($1::text[], $2::text[], $3::timestamptz[], $4::interval)",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&times)
    .bind(format!("{} milliseconds", debounce.as_millis()))
    .fetch_one(executor)
    .await?;
    let count = |n: i64| usize::try_from(n).unwrap_or_default();
    Ok(SeenReport {
        users: count(users),
        inserted: count(inserted),
        updated: count(updated),
        unchanged: count(unchanged),
    })
}
