//! Users: lookups, deletion, and activity recording. Functions take `impl PgExecutor`.

use std::{collections::HashMap, time::Duration};

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

/// One user's events of a batch, merged.
struct Merged {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    /// The e-mail of the newest event that carried one, and when that was.
    email: Option<(DateTime<Utc>, String)>,
}

/// Records sightings in one statement, whatever the batch size.
///
/// - A new user gets `first_seen = last_seen = at`.
/// - Later events keep `first_seen` the earliest and `last_seen` the latest ever seen: an old
///   event arriving late never moves `last_seen` back.
/// - A newer event with a different e-mail updates it; an older one does not.
/// - An event within `debounce` of the stored `last_seen`, with the same e-mail, writes
///   nothing: the row is neither updated nor locked, so no WAL and no dead tuple.
///
/// Events of one user in a batch are merged first (PostgreSQL refuses to update a row twice
/// in one `ON CONFLICT` statement), and the batch travels as arrays (`UNNEST`). Rows are
/// written in `user_id` order, so concurrent callers never deadlock on shared users.
///
/// It takes no actor: it is the sign-in path's hot loop, one statement on a pooled
/// connection. A user it creates (or whose e-mail it changes) is recorded in the history as
/// done by the connection's `cabinet.actor`, else its role — the service that saw the user.
pub async fn record_seen(
    executor: impl PgExecutor<'_>,
    events: &[SeenEvent],
    debounce: Duration,
) -> Result<SeenReport, DataError> {
    let mut merged: HashMap<&str, Merged> = HashMap::with_capacity(events.len());
    for event in events {
        let entry = merged.entry(event.user_id.as_str()).or_insert(Merged {
            first_seen: event.at,
            last_seen: event.at,
            email: None,
        });
        entry.first_seen = entry.first_seen.min(event.at);
        entry.last_seen = entry.last_seen.max(event.at);
        if let Some(email) = &event.email
            && entry.email.as_ref().is_none_or(|(at, _)| event.at >= *at)
        {
            entry.email = Some((event.at, email.as_str().to_owned()));
        }
    }
    // Rows are written in user_id order, so concurrent batches lock shared rows in the same
    // order and cannot deadlock.
    let mut merged: Vec<(&str, Merged)> = merged.into_iter().collect();
    merged.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let n = merged.len();
    let (mut ids, mut emails, mut email_ats, mut firsts, mut lasts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, m) in merged {
        ids.push(id);
        emails.push(m.email.as_ref().map(|(_, e)| e.clone()));
        email_ats.push(m.email.as_ref().map(|(at, _)| *at));
        firsts.push(m.first_seen);
        lasts.push(m.last_seen);
    }
    // `needed` reads the stored rows without locking them and keeps only the users whose row
    // must change; the upsert then handles rows inserted concurrently in between.
    // Only the two counts come back, not a row per user.
    let (inserted, written): (i64, i64) = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
                 AS i(user_id, email, email_at, first_seen, last_seen)
         ), needed AS (
             SELECT i.user_id,
                    CASE WHEN u.user_id IS NULL OR i.email_at >= u.last_seen THEN i.email END AS email,
                    i.first_seen, i.last_seen
               FROM input i LEFT JOIN users u ON u.user_id = i.user_id
              WHERE u.user_id IS NULL
                 OR i.first_seen < u.first_seen
                 OR i.last_seen > u.last_seen + $6::interval
                 OR (i.email IS NOT NULL AND i.email IS DISTINCT FROM u.email AND i.email_at >= u.last_seen)
         ), written AS (
             INSERT INTO users AS u (user_id, email, first_seen, last_seen)
             SELECT user_id, email, first_seen, last_seen FROM needed ORDER BY user_id
             ON CONFLICT (user_id) DO UPDATE SET
                 first_seen = LEAST(u.first_seen, EXCLUDED.first_seen),
                 last_seen = GREATEST(u.last_seen, EXCLUDED.last_seen),
                 email = CASE WHEN EXCLUDED.email IS NOT NULL AND EXCLUDED.last_seen >= u.last_seen
                              THEN EXCLUDED.email ELSE u.email END
             RETURNING (xmax = 0) AS inserted
         )
         SELECT count(*) FILTER (WHERE inserted), count(*) FROM written",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&email_ats)
    .bind(&firsts)
    .bind(&lasts)
    .bind(format!("{} milliseconds", debounce.as_millis()))
    .fetch_one(executor)
    .await?;
    let (inserted, written) = (inserted as usize, written as usize);
    Ok(SeenReport { users: n, inserted, updated: written - inserted, unchanged: n - written })
}
