//! Whether the history still tells the whole story: versions without gaps, and every record's
//! newest version equal to the record as it is.
//!
//! No role of ours can change the history (it belongs to the historian role), but the schema's
//! owner owns `sites` and `users` and can disable their history triggers, write, and enable
//! them again; and a superuser can do anything. What that leaves behind is read here:
//!
//! - **A gap in a record's versions** (or a first version above 1) that no recorded prune
//!   explains: history rows were deleted. A prune removes a record's versions older than its
//!   cut-off except the newest, so what survives is contiguous: only a missing beginning can
//!   be a prune's, and only one that ran after the first surviving version was written, which
//!   that version survived honestly (written at or after the cut-off, or the newest then).
//! - **A record that differs from its newest version**, exists with no history, or exists
//!   although its newest version deleted it (or the other way round), and **two consecutive
//!   versions that do not meet** (version N found the record otherwise than N-1 left it): a
//!   write the triggers did not record, whether or not later writes hide it.
//!
//! Times are compared as times: a row recorded by a session in another time zone says
//! `+05:30` where this one says `+00`.
//!
//! They read row data, so they run only on a schema that matches the models (the caller
//! checks the drift first): a column of a type the owner made could carry a cast of the
//! owner's, which would run in this (superuser's) session.
//!
//! A superuser who rewrites rows consistently (history and record alike) is not detected: see
//! docs/security.md.

use sqlx::PgConnection;

use super::check::Check;
use crate::models::history::site_versions_do_not_meet;

/// The most findings named per check: the rest are counted.
const NAMED: usize = 20;

/// Gaps in the versions of each site and user, not explained by a recorded prune.
pub(crate) async fn version_gaps(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH versions AS (
             SELECT 'site' AS kind, site_id AS id, version, changed_at,
                    lag(version) OVER (PARTITION BY site_id ORDER BY version) AS previous,
                    lead(changed_at) OVER (PARTITION BY site_id ORDER BY version) AS next_at,
                    (coalesce(new_row, old_row) ->> 'created_at')::timestamptz AS created_at
               FROM public.sites_history
             UNION ALL
             SELECT 'user', user_id, version, changed_at,
                    lag(version) OVER (PARTITION BY user_id ORDER BY version),
                    lead(changed_at) OVER (PARTITION BY user_id ORDER BY version),
                    NULL
               FROM public.users_history
         )
         SELECT format('%s %s: %s missing (before version %s, written %s), and no recorded prune removed it',
                       v.kind, quote_literal(v.id),
                       CASE WHEN coalesce(v.previous, 0) + 1 = v.version - 1 THEN 'version ' || (v.version - 1)
                            ELSE 'versions ' || (coalesce(v.previous, 0) + 1) || '-' || (v.version - 1) END,
                       v.version, v.changed_at)
           FROM versions v
          WHERE v.version <> coalesce(v.previous, 0) + 1
            -- A prune removes a record's versions older than its cut-off but the newest, so
            -- what survives it is contiguous: a gap after a surviving version is never a
            -- prune's. A missing beginning is, if a prune that removed rows ran after the
            -- first surviving version was written, and that version survived it honestly:
            -- written at or after the cut-off, or the newest when the prune ran.
            AND NOT (v.previous IS NULL AND EXISTS (
                SELECT 1 FROM public.history_prunes p
                 WHERE p.pruned_at >= v.changed_at
                   AND CASE v.kind WHEN 'site' THEN p.sites_rows ELSE p.users_rows END > 0
                   AND (v.changed_at >= p.before OR coalesce(v.next_at, 'infinity') > p.pruned_at)
                   -- A site's first version is its creation: a prune whose cut-off precedes
                   -- it removed none of its versions.
                   AND (v.kind <> 'site' OR v.created_at IS NULL OR v.created_at < p.before)))
          ORDER BY v.kind, v.id, v.version",
    )
    .fetch_all(conn)
    .await
}

/// Records that differ from their newest recorded version.
pub(crate) async fn unrecorded_writes(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH site_heads AS (
             SELECT DISTINCT ON (site_id) site_id, version, operation, new_row
               FROM public.sites_history ORDER BY site_id, version DESC
         ), user_heads AS (
             SELECT DISTINCT ON (user_id) user_id, version, operation, new_email, forgotten_at
               FROM public.users_history ORDER BY user_id, version DESC
         )
         SELECT format('site %s: %s', quote_literal(coalesce(s.site_id, h.site_id)),
                       CASE WHEN h.site_id IS NULL THEN 'exists but has no history'
                            WHEN s.site_id IS NULL THEN format('is gone but its newest version (%s) is an %s', h.version, h.operation)
                            WHEN h.operation = 'DELETE' THEN format('exists but its newest version (%s) deleted it', h.version)
                            ELSE format('differs from its newest version (%s) in %s', h.version,
                                        (SELECT string_agg(e.key, ', ' ORDER BY e.key) FROM pg_catalog.jsonb_each(h.new_row) e
                                          WHERE CASE WHEN e.key = 'created_at'
                                                     THEN s.created_at IS DISTINCT FROM (e.value #>> '{}')::timestamptz
                                                     ELSE pg_catalog.to_jsonb(s) -> e.key IS DISTINCT FROM e.value END)) END)
           FROM public.sites s FULL JOIN site_heads h ON h.site_id = s.site_id
          WHERE h.site_id IS NULL OR (s.site_id IS NULL) <> (h.operation = 'DELETE')
             OR (s.site_id IS NOT NULL AND NOT (pg_catalog.to_jsonb(s) - 'created_at') @> (h.new_row - 'created_at'))
             OR (s.site_id IS NOT NULL AND h.new_row ? 'created_at' AND s.created_at IS DISTINCT FROM (h.new_row ->> 'created_at')::timestamptz)
         UNION ALL
         SELECT format('user %s: %s', quote_literal(coalesce(u.user_id, h.user_id)),
                       CASE WHEN h.user_id IS NULL THEN 'exists but has no history'
                            WHEN u.user_id IS NULL THEN format('is gone but its newest version (%s) is an %s', h.version, h.operation)
                            WHEN h.operation = 'DELETE' THEN format('exists but its newest version (%s) deleted it', h.version)
                            ELSE format('has an e-mail address its newest version (%s) does not record', h.version) END)
           FROM public.users u FULL JOIN user_heads h ON h.user_id = u.user_id
          WHERE h.user_id IS NULL OR (u.user_id IS NULL) <> (h.operation = 'DELETE')
             OR (u.user_id IS NOT NULL AND h.forgotten_at IS NULL AND u.email IS DISTINCT FROM h.new_email)
          ORDER BY 1",
    )
    .fetch_all(conn)
    .await
}

/// Whether the history's tables are there to be read (a missing one is drift, reported as
/// such by the schema check, not an error here).
pub(crate) async fn present(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT to_regclass('public.sites_history') IS NOT NULL AND to_regclass('public.users_history') IS NOT NULL
            AND to_regclass('public.history_prunes') IS NOT NULL",
    )
    .fetch_one(conn)
    .await
}

/// Both readings, or nothing when the tables are missing (drift says so).
pub(crate) async fn findings(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    if !present(conn).await? {
        return Ok(Vec::new());
    }
    let mut all = version_gaps(conn).await?;
    all.extend(unrecorded_writes(conn).await?);
    all.extend(broken_links(conn).await?);
    Ok(all)
}

/// Consecutive versions that do not meet: version N found the record otherwise than version
/// N-1 left it (or inserted one N-1 had not deleted, or changed one N-1 had deleted) — a write
/// between them bypassed the history, even if later writes hide it from the newest version.
pub(crate) async fn broken_links(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "WITH sites_chain AS (
             SELECT h.site_id, h.version, h.operation, h.old_row,
                    lag(h.version) OVER w AS previous, lag(h.operation) OVER w AS previous_operation,
                    lag(h.new_row) OVER w AS previous_row
               FROM public.sites_history h
             WINDOW w AS (PARTITION BY h.site_id ORDER BY h.version)
         ), users_chain AS (
             SELECT h.user_id, h.version, h.operation, h.old_email, h.forgotten_at,
                    lag(h.version) OVER w AS previous, lag(h.operation) OVER w AS previous_operation,
                    lag(h.new_email) OVER w AS previous_email
               FROM public.users_history h
             WINDOW w AS (PARTITION BY h.user_id ORDER BY h.version)
         )
         SELECT format('site %s: version %s %s', quote_literal(c.site_id), c.version,
                       CASE WHEN c.operation = 'INSERT' THEN format('creates it again, but version %s had not deleted it: a deletion was not recorded', c.previous)
                            WHEN c.previous_operation = 'DELETE' THEN format('changes it, but version %s had deleted it: a creation was not recorded', c.previous)
                            ELSE format('found it otherwise than version %s left it (in %s): a write between them was not recorded', c.previous,
                                        (SELECT string_agg(e.key, ', ' ORDER BY e.key) FROM pg_catalog.jsonb_each(c.previous_row) e
                                          WHERE CASE WHEN e.key = 'created_at'
                                                     THEN (c.old_row ->> 'created_at')::timestamptz IS DISTINCT FROM (e.value #>> '{}')::timestamptz
                                                     ELSE c.old_row -> e.key IS DISTINCT FROM e.value END)) END)
           FROM sites_chain c
          WHERE c.previous = c.version - 1
            AND ",
        site_versions_do_not_meet!(),
        "
         UNION ALL
         SELECT format('user %s: version %s %s', quote_literal(c.user_id), c.version,
                       CASE WHEN c.operation = 'INSERT' THEN format('creates it again, but version %s had not deleted it: a deletion was not recorded', c.previous)
                            WHEN c.previous_operation = 'DELETE' THEN format('changes it, but version %s had deleted it: a creation was not recorded', c.previous)
                            ELSE format('found another e-mail address than version %s left: a write between them was not recorded', c.previous) END)
           FROM users_chain c
          WHERE c.previous = c.version - 1
            AND ((c.operation = 'INSERT') <> (c.previous_operation = 'DELETE')
                 OR (c.operation <> 'INSERT' AND c.forgotten_at IS NULL AND c.old_email IS DISTINCT FROM c.previous_email))
          ORDER BY 1"
    ))
    .fetch_all(conn)
    .await
}

/// The audit's two checks.
pub(crate) async fn checks(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    if !present(conn).await? {
        return Ok(vec![Check::fail(
            "history.versions",
            "the history's tables are missing, so whether it is whole cannot be read".to_owned(),
            "see schema.drift",
        )]);
    }
    let gaps = version_gaps(conn).await?;
    let mut unrecorded = unrecorded_writes(conn).await?;
    unrecorded.extend(broken_links(conn).await?);
    Ok(vec![
        Check::from_problems(
            "history.versions",
            named(gaps),
            "every site's and user's versions follow each other, or a recorded prune explains the gap",
            "history rows were deleted by a superuser: restore them from a backup (cabinet-db backup restore --target-dir, then copy the rows)",
        ),
        Check::from_problems(
            "history.heads",
            named(unrecorded),
            "every site and user is as its newest version records it",
            "a write bypassed the history (its trigger disabled by the owner or a superuser): find who in the server log; to undo it, cabinet-db sites revert ID --to NEWEST_VERSION puts the recorded state back; to keep it, change the field through cabinet-db sites set (an unchanged value records nothing)",
        ),
    ])
}

/// At most [`NAMED`] findings, then how many more.
fn named(mut findings: Vec<String>) -> Vec<String> {
    if findings.len() > NAMED {
        let more = findings.len() - NAMED;
        findings.truncate(NAMED);
        findings.push(format!("and {more} more"));
    }
    findings
}
