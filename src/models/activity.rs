//! User activity in the database: `cabinet_record_seen` and `cabinet_record_seen_many`, the
//! one implementation of "a user was seen" for every writer — our CLI (`users::record_seen`
//! calls the batch form), the main application (through models.py's `record_seen`), psql.
//!
//! - A new user gets `first_seen = last_seen = seen_at`.
//! - Later sightings keep `first_seen` the earliest and `last_seen` the latest ever seen: an
//!   old event arriving late never moves `last_seen` back.
//! - A newer sighting with a different e-mail updates it; an older one does not. Within a
//!   batch, of two sightings of one user at the same instant the later one in array order
//!   wins the e-mail.
//! - A sighting within `debounce` of the stored `last_seen`, with the same e-mail, writes
//!   nothing: the row is neither updated nor locked, so no WAL and no dead tuple.
//! - A time more than `future_tolerance!()` ahead of the database server's clock is
//!   refused, as is one outside the years 1–9999: one wrong clock must not freeze a user
//!   ("older news" until 2099).
//!
//! The functions run as their owner (`SECURITY DEFINER`, `search_path` pinned), so a caller
//! needs EXECUTE on them and nothing on `users`: the main application's role may record
//! activity without being able to write anything else. A user they create (or whose e-mail
//! they change) is recorded in the history as done by the session's `cabinet.actor`, else its
//! login role.

use super::definitions::FunctionDef;

/// How far ahead of the database server's clock a sighting may be (clocks of the hosts that
/// report sightings drift by seconds, not minutes), as a literal for `concat!` into the
/// function's text.
macro_rules! future_tolerance {
    () => {
        "5 minutes"
    };
}

/// The SQLSTATE the functions refuse bad input with (`invalid_parameter_value`).
pub(crate) const REFUSAL_SQLSTATE: &str = "22023";

pub(crate) const FUNCTIONS: [FunctionDef; 2] = [
    FunctionDef {
        name: "cabinet_record_seen_many",
        definition: concat!("CREATE FUNCTION {schema}cabinet_record_seen_many(user_ids text[], emails text[], seen_at timestamptz[], debounce interval DEFAULT '60 seconds') RETURNS TABLE (users bigint, inserted bigint, updated bigint, unchanged bigint) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    server_clock timestamptz := clock_timestamp();
    bad record;
BEGIN
    -- Written by cabinet-db (src/models/activity.rs): sightings of users (logins, requests),
    -- many in one statement. user_ids[i] was seen at seen_at[i] with emails[i] (NULL: no
    -- e-mail known; emails itself may be NULL).
    IF user_ids IS NULL OR seen_at IS NULL THEN
        RAISE EXCEPTION 'cabinet_record_seen_many: user_ids and seen_at are required (arrays of equal length)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_ndims(user_ids) > 1 OR array_ndims(emails) > 1 OR array_ndims(seen_at) > 1 THEN
        RAISE EXCEPTION 'cabinet_record_seen_many: user_ids, emails and seen_at must be one-dimensional arrays (one entry per sighting)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(seen_at) <> cardinality(user_ids) OR cardinality(emails) <> cardinality(user_ids) THEN
        RAISE EXCEPTION 'cabinet_record_seen_many: % user ids, % e-mails and % times: the arrays must be equally long',
            cardinality(user_ids), coalesce(cardinality(emails)::text, 'no'), cardinality(seen_at)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'pass one e-mail (or NULL) and one time per user id, or NULL for every e-mail';
    END IF;
    IF debounce IS NULL OR debounce < interval '0' THEN
        RAISE EXCEPTION 'cabinet_record_seen_many: debounce % must be zero or more', coalesce(debounce::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'the default is 60 seconds';
    END IF;
    SELECT i.n, i.user_id, i.at INTO bad
      FROM unnest(user_ids, seen_at) WITH ORDINALITY AS i(user_id, at, n)
     WHERE i.user_id IS NULL OR i.at IS NULL
        OR NOT (i.at >= timestamptz '0001-01-01 00:00:00+00' AND i.at < timestamptz '10000-01-01 00:00:00+00')
        OR i.at > server_clock + interval '", future_tolerance!(), "'
     ORDER BY i.n
     LIMIT 1;
    IF FOUND THEN
        IF bad.user_id IS NULL THEN
            RAISE EXCEPTION 'cabinet_record_seen_many: sighting % has no user id', bad.n
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF bad.at IS NULL THEN
            RAISE EXCEPTION 'cabinet_record_seen_many: sighting % (user %) has no time', bad.n, quote_literal(bad.user_id)
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF bad.at > server_clock + interval '", future_tolerance!(), "' AND bad.at < timestamptz '10000-01-01 00:00:00+00' THEN
            RAISE EXCEPTION 'sighting % (user %) at % is in the future: the database server''s clock reads %, and sightings may be at most ", future_tolerance!(), " ahead of it',
                bad.n, quote_literal(bad.user_id), bad.at, server_clock
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'check the clock of the host that reported it (timedatectl), or the database server''s';
        ELSE
            RAISE EXCEPTION 'sighting % (user %) at % must be a point in time between the years 1 and 9999 AD (not infinity, not BC)',
                bad.n, quote_literal(bad.user_id), bad.at
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- One user's sightings are merged first (PostgreSQL refuses to update a row twice in one
    -- ON CONFLICT statement). `needed` reads the stored rows without locking them and keeps
    -- only the users whose row must change; the upsert then handles rows inserted
    -- concurrently in between. Rows are written in user_id order, so concurrent batches lock
    -- shared rows in the same order and cannot deadlock.
    RETURN QUERY
    WITH input AS (
        SELECT i.user_id, i.email, i.at, i.n
          FROM unnest(user_ids, coalesce(emails, array_fill(NULL::text, ARRAY[cardinality(user_ids)])), seen_at)
               WITH ORDINALITY AS i(user_id, email, at, n)
    ), merged AS (
        -- Per user: the earliest and latest sighting, and the e-mail of the newest one that
        -- carried one (of two at one instant, the later in the array). One sort serves the
        -- window and DISTINCT ON.
        SELECT DISTINCT ON (i.user_id) i.user_id, min(i.at) OVER w AS first_at, max(i.at) OVER w AS last_at,
               i.email, CASE WHEN i.email IS NOT NULL THEN i.at END AS email_at
          FROM input i
        WINDOW w AS (PARTITION BY i.user_id ORDER BY (i.email IS NOT NULL) DESC, i.at DESC, i.n DESC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
         ORDER BY i.user_id, (i.email IS NOT NULL) DESC, i.at DESC, i.n DESC
    ), needed AS (
        SELECT m.user_id,
               CASE WHEN u.user_id IS NULL OR m.email_at >= u.last_seen THEN m.email END AS email,
               m.first_at, m.last_at
          FROM merged m LEFT JOIN public.users u ON u.user_id = m.user_id
         WHERE u.user_id IS NULL
            OR m.first_at < u.first_seen
            OR m.last_at > u.last_seen + debounce
            OR (m.email IS NOT NULL AND m.email IS DISTINCT FROM u.email AND m.email_at >= u.last_seen)
    ), written AS (
        INSERT INTO public.users AS u (user_id, email, first_seen, last_seen)
        SELECT d.user_id, d.email, d.first_at, d.last_at FROM needed d ORDER BY d.user_id
        ON CONFLICT (user_id) DO UPDATE SET
            first_seen = LEAST(u.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(u.last_seen, EXCLUDED.last_seen),
            email = CASE WHEN EXCLUDED.email IS NOT NULL AND EXCLUDED.last_seen >= u.last_seen
                         THEN EXCLUDED.email ELSE u.email END
        RETURNING (u.xmax = 0) AS is_new
    ), counts AS (
        SELECT (SELECT count(*) FROM merged) AS all_users,
               count(*) FILTER (WHERE w.is_new) AS new_users,
               count(*) AS written_users
          FROM written w
    )
    SELECT c.all_users, c.new_users, c.written_users - c.new_users, c.all_users - c.written_users FROM counts c;
END
$body$"),
    },
    FunctionDef {
        name: "cabinet_record_seen",
        definition: "CREATE FUNCTION {schema}cabinet_record_seen(user_id text, email text, seen_at timestamptz, debounce interval DEFAULT '60 seconds') RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    r record;
BEGIN
    -- Written by cabinet-db (src/models/activity.rs): one sighting; says what it did:
    -- 'inserted' (a new user), 'updated', or 'unchanged' (within the debounce window, or
    -- older news).
    SELECT * INTO r FROM public.cabinet_record_seen_many(ARRAY[user_id], ARRAY[email], ARRAY[seen_at], debounce);
    RETURN CASE WHEN r.inserted = 1 THEN 'inserted' WHEN r.updated = 1 THEN 'updated' ELSE 'unchanged' END;
END
$body$",
    },
];
