-- 0015: users forget follows the person's addresses and says what it scrubbed: it also replaces
-- any actor field naming one of their addresses (a change they made themselves) with 'a
-- forgotten user', and cabinet_forget_user returns one row per id the person had (the one asked
-- for, and ids linked to it by a rename before 0011): whether a user row was deleted under it,
-- how many history rows and actor fields were scrubbed, and which sites' content still mentions
-- one of the addresses (not changed: site content is not the user's record).
-- Generated from src/models/history.rs (the functions' bodies must stay byte for byte as
-- there: migrate check compares them).
-- cabinet-db: changes the history
-- A different result type needs DROP and CREATE: who may call it (EXECUTE) is carried over.
SELECT set_config('cabinet.forget_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'cabinet_forget_user(text)'::regprocedure
   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0;
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_forget_user(text);
CREATE FUNCTION cabinet_forget_user(forgotten text) RETURNS TABLE (forgotten_id text, user_row_deleted boolean, history_rows bigint, actor_fields bigint, sites_mentioning text[]) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    ids text[];
    addresses text[];
    address_owners text[];
    address_values text[];
    deleted_ids text[];
    scrubbed_ids text[];
    actor_rows text[];
    forgetter text := coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text);
BEGIN
    -- Written by cabinet-db (src/models/history.rs): a delete-my-data request. The user
    -- goes (the deletion is recorded), then every e-mail address in that user's history is
    -- removed, and so is any actor field naming one of their addresses (a change they made
    -- themselves); the rows stay, saying when and by whom the user was forgotten. One row per
    -- id the person had: whether a user row was deleted under it, how many history rows were
    -- scrubbed, how many actor fields, and which sites' content still mentions one of the
    -- addresses (site content is not ours to rewrite: the report says where it is).
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
    -- Every address the person had, by id, before anything is scrubbed.
    SELECT coalesce(array_agg(a.user_id), '{}'), coalesce(array_agg(a.address), '{}') INTO address_owners, address_values
      FROM (SELECT DISTINCT e.user_id, lower(e.address)
              FROM (SELECT u.user_id, u.email FROM public.users u WHERE u.user_id = ANY (ids)
                    UNION ALL SELECT h.user_id, h.old_email FROM public.users_history h WHERE h.user_id = ANY (ids)
                    UNION ALL SELECT h.user_id, h.new_email FROM public.users_history h WHERE h.user_id = ANY (ids)) AS e(user_id, address)
             WHERE e.address IS NOT NULL) AS a(user_id, address);
    addresses := ARRAY(SELECT DISTINCT v FROM unnest(address_values) AS v);
    -- Two statements: the deletion's history row (written when the DELETE ends) is scrubbed too.
    WITH d AS (DELETE FROM public.users u WHERE u.user_id = ANY (ids) RETURNING u.user_id)
    SELECT coalesce(array_agg(d.user_id), '{}') INTO deleted_ids FROM d;
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    WITH s AS (
        UPDATE public.users_history h
           SET old_email = NULL, new_email = NULL, forgotten_at = clock_timestamp(), forgotten_by = forgetter
         WHERE h.user_id = ANY (ids)
        RETURNING h.user_id
    )
    SELECT coalesce(array_agg(s.user_id), '{}') INTO scrubbed_ids FROM s;
    SELECT coalesce(array_agg(x.address), '{}') INTO actor_rows
      FROM (SELECT lower(h.actor) FROM public.sites_history h WHERE lower(h.actor) = ANY (addresses)
            UNION ALL SELECT lower(h.actor) FROM public.users_history h WHERE lower(h.actor) = ANY (addresses)
            UNION ALL SELECT lower(h.forgotten_by) FROM public.users_history h WHERE lower(h.forgotten_by) = ANY (addresses)
            UNION ALL SELECT lower(h.actor) FROM public.history_prunes h WHERE lower(h.actor) = ANY (addresses)) AS x(address);
    UPDATE public.sites_history h SET actor = 'a forgotten user' WHERE lower(h.actor) = ANY (addresses);
    UPDATE public.users_history h
       SET actor = CASE WHEN lower(h.actor) = ANY (addresses) THEN 'a forgotten user' ELSE h.actor END,
           forgotten_by = CASE WHEN lower(h.forgotten_by) = ANY (addresses) THEN 'a forgotten user' ELSE h.forgotten_by END
     WHERE lower(h.actor) = ANY (addresses) OR lower(h.forgotten_by) = ANY (addresses);
    UPDATE public.history_prunes h SET actor = 'a forgotten user' WHERE lower(h.actor) = ANY (addresses);
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    RETURN QUERY
    SELECT i.id, i.id = ANY (deleted_ids),
           (SELECT count(*) FROM unnest(scrubbed_ids) AS x(id) WHERE x.id = i.id),
           (SELECT count(*) FROM unnest(actor_rows) AS r(address)
             WHERE r.address IN (SELECT f.address FROM unnest(address_owners, address_values) AS f(user_id, address)
                                  WHERE f.user_id = i.id)),
           ARRAY(SELECT s.site_id FROM public.sites s
                  WHERE EXISTS (SELECT 1 FROM unnest(address_owners, address_values) AS f(user_id, address)
                                 WHERE f.user_id = i.id AND strpos(lower(pg_catalog.to_jsonb(s)::text), f.address) > 0)
                  ORDER BY s.site_id)
      FROM unnest(ids) AS i(id)
     ORDER BY i.id;
END
$body$;
REVOKE ALL ON FUNCTION cabinet_forget_user(text) FROM PUBLIC;
DO $grants$
BEGIN
    IF current_setting('cabinet.forget_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION cabinet_forget_user(text) TO %s', current_setting('cabinet.forget_grantees'));
    END IF;
END
$grants$;
