//! `cabinet_forget_user`: a delete-my-data request, for every caller allowed it (the admin
//! panel, `users forget`, psql as `cabinet_admin`).
//!
//! It runs as its caller (no `SECURITY DEFINER`): it deletes the person's user rows — under
//! every id they had — and reads `users` and `sites`, tables the schema's owner owns, with the
//! caller's rights, so nothing the owner attached to them (a trigger, a rule, a policy) ever
//! runs as the history's owner. The history's half, `cabinet_scrub_forgotten`, belongs to the
//! historian and touches the history's own tables only. The historian keeps this function too
//! (roles apply): running as its caller, its owner gives it no rights, but the schema's owner
//! cannot replace it.

use super::definitions::FunctionDef;

pub(crate) const FUNCTIONS: [FunctionDef; 1] = [FunctionDef {
    name: "cabinet_forget_user",
    definition: "CREATE FUNCTION {schema}cabinet_forget_user(forgotten text) RETURNS TABLE (forgotten_id text, user_row_deleted boolean, history_rows bigint, actor_fields bigint, sites_mentioning text[]) LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    ids text[];
    deleted_ids text[];
    address_owners text[];
    address_values text[];
BEGIN
    -- Written by cabinet-db (src/models/erasure.rs): the user goes (the deletion is recorded),
    -- then cabinet_scrub_forgotten removes their addresses from the history. One row per id
    -- the person had: whether a user row was deleted under it, the history rows and the actor
    -- fields scrubbed, and which sites' content — now or in its history — mentions one of
    -- their addresses (not changed: site content is not the user's record).
    -- The person under every id they had: a rename (possible before ids became immutable in
    -- 0011) is recorded as the DELETE of the old id and the INSERT of the new one in one
    -- transaction, with the same e-mail address. Such pairs are followed both ways.
    WITH RECURSIVE person(user_id) AS (
        SELECT forgotten
        UNION
        SELECT other.user_id
          FROM person p
          JOIN public.users_history mine
            ON mine.user_id = p.user_id AND mine.operation IN ('INSERT', 'DELETE')
          JOIN public.users_history other
            ON other.transaction_id = mine.transaction_id
           AND other.user_id <> mine.user_id
           AND other.operation IN ('INSERT', 'DELETE') AND other.operation <> mine.operation
           AND coalesce(mine.old_email, mine.new_email) = coalesce(other.old_email, other.new_email)
    )
    SELECT array_agg(p.user_id ORDER BY p.user_id) INTO ids FROM person p;
    SELECT coalesce(array_agg(a.user_id), '{}'), coalesce(array_agg(a.address), '{}') INTO address_owners, address_values
      FROM (SELECT DISTINCT e.user_id, lower(e.address)
              FROM (SELECT u.user_id, u.email FROM public.users u WHERE u.user_id = ANY (ids)
                    UNION ALL SELECT h.user_id, h.old_email FROM public.users_history h WHERE h.user_id = ANY (ids)
                    UNION ALL SELECT h.user_id, h.new_email FROM public.users_history h WHERE h.user_id = ANY (ids)) AS e(user_id, address)
             WHERE e.address IS NOT NULL) AS a(user_id, address);
    WITH d AS (DELETE FROM public.users u WHERE u.user_id = ANY (ids) RETURNING u.user_id)
    SELECT coalesce(array_agg(d.user_id), '{}') INTO deleted_ids FROM d;
    RETURN QUERY
    SELECT i.id, i.id = ANY (deleted_ids), s.history_rows, s.actor_fields,
           ARRAY(SELECT DISTINCT c.site_id
                   FROM (SELECT t.site_id, lower(pg_catalog.to_jsonb(t)::text) FROM public.sites t
                         UNION ALL
                         SELECT h.site_id, lower(coalesce(h.old_row::text, '') || coalesce(h.new_row::text, ''))
                           FROM public.sites_history h) AS c(site_id, content)
                  WHERE EXISTS (SELECT 1 FROM unnest(address_owners, address_values) AS f(user_id, address)
                                 WHERE f.user_id = i.id AND strpos(c.content, f.address) > 0)
                  ORDER BY c.site_id)
      FROM unnest(ids) AS i(id)
      JOIN public.cabinet_scrub_forgotten(ids) AS s ON s.forgotten_id = i.id
     ORDER BY i.id;
END
$body$",
}];
