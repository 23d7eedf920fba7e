//! The reference for `record_seen` through the database function: the statement cabinet-db
//! sent itself before 0013 (events merged in Rust, then one upsert), kept here only to be
//! measured against in the same run.

use std::{collections::HashMap, time::Duration};

use cabinet_db::users::SeenEvent;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// One user's events of a batch, merged.
struct Merged {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    email: Option<(DateTime<Utc>, String)>,
}

/// `users::record_seen` as it was: returns the rows written.
pub async fn record_seen_by_statement(
    executor: impl PgExecutor<'_>,
    events: &[SeenEvent],
    debounce: Duration,
) -> i64 {
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
    let (_inserted, written): (i64, i64) = sqlx::query_as(
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
    .await
    .unwrap();
    written
}
