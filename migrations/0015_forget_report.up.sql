-- 0015: users forget follows the person's addresses, says what it scrubbed, and never runs the
-- owner's code as the history's owner. cabinet_forget_user now runs as its caller: it deletes the
-- person's user rows (under every id a rename before 0011 linked) and reads users and sites with
-- the caller's rights; the history's half, cabinet_scrub_forgotten (the historian's), touches
-- only the history's tables: it scrubs the addresses from the users history and replaces every
-- actor, forgotten_by or application_name holding one of them with 'a forgotten user'. The
-- result: one row per id (user row deleted, history rows and actor fields scrubbed, and the
-- sites whose content, now or in its history, mentions an address: not changed).
-- cabinet-db: changes the history
-- Generated from src/models/history.rs and src/models/erasure.rs (the functions' bodies must
-- stay byte for byte as there: migrate check compares them).
-- A different result type needs DROP and CREATE: who may call it (EXECUTE) is carried over, to
-- both functions.
SELECT set_config('cabinet.forget_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'cabinet_forget_user(text)'::regprocedure
   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0;
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_forget_user(text);
CREATE FUNCTION cabinet_scrub_forgotten(ids text[]) RETURNS TABLE (forgotten_id text, history_rows bigint, actor_fields bigint) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    gone text;
    address_owners text[];
    address_patterns text[];
    patterns text[];
    scrubbed_ids text[];
    actor_hits text[];
    forgetter text := coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text);
BEGIN
    IF nullif(current_setting('cabinet.actor', true), '') IS NOT NULL
       AND (char_length(current_setting('cabinet.actor', true)) > 200
            OR current_setting('cabinet.actor', true) ~ '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000]*$'
            OR current_setting('cabinet.actor', true) ~ '[\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]') THEN
        RAISE EXCEPTION 'cabinet.actor must be 1-200 visible characters, e.g. alice@example.com (it has %)',
            char_length(current_setting('cabinet.actor', true))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Written by cabinet-db (src/models/history.rs): the history's half of a delete-my-data
    -- request (cabinet_forget_user deletes the users first, as its caller). It reads and
    -- writes the history's own tables only — never a table the schema's owner owns, whose
    -- triggers, rules or policies would run as this function's owner. Each id must be gone:
    -- its newest version a DELETE. Every e-mail address in their history is removed (the rows
    -- stay, saying when and by whom), and every actor, forgotten_by or application_name that
    -- holds one of their addresses (in any case, e.g. 'Alice <alice@example.com>') becomes
    -- 'a forgotten user', and so does a session role named after one. Rows already forgotten
    -- keep when and by whom. One row per id: history rows and such fields scrubbed.
    SELECT i.id INTO gone
      FROM unnest(ids) AS i(id)
     WHERE NOT EXISTS (SELECT 1 FROM public.users_history h
                        WHERE h.user_id = i.id AND h.operation = 'DELETE'
                          AND h.version = (SELECT max(n.version) FROM public.users_history n WHERE n.user_id = i.id))
       AND EXISTS (SELECT 1 FROM public.users_history h WHERE h.user_id = i.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'user % is not deleted: its history is scrubbed only once the user is gone', quote_literal(gone)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'cabinet-db users forget deletes the user first';
    END IF;
    -- Every address, as a pattern that matches it alone (not inside a longer address).
    SELECT coalesce(array_agg(a.user_id), '{}'),
           coalesce(array_agg('(^|[^a-z0-9._%+-])' || regexp_replace(a.address, '([.+*?^$(){}|\[\]\\])', '\\\1', 'g') || '(?![a-z0-9-]|\.[a-z0-9-])'), '{}')
      INTO address_owners, address_patterns
      FROM (SELECT DISTINCT h.user_id, lower(e.address)
              FROM public.users_history h, LATERAL (VALUES (h.old_email), (h.new_email)) AS e(address)
             WHERE h.user_id = ANY (ids) AND e.address IS NOT NULL) AS a(user_id, address);
    patterns := ARRAY(SELECT DISTINCT p FROM unnest(address_patterns) AS p);
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    WITH s AS (
        UPDATE public.users_history h
           SET old_email = NULL, new_email = NULL, forgotten_at = clock_timestamp(), forgotten_by = forgetter
         WHERE h.user_id = ANY (ids) AND h.forgotten_at IS NULL
        RETURNING h.user_id
    )
    SELECT coalesce(array_agg(s.user_id), '{}') INTO scrubbed_ids FROM s;
    -- Which pattern each scrubbed field matched, counted before it is replaced.
    SELECT coalesce(array_agg(m.p), '{}') INTO actor_hits
      FROM (SELECT lower(h.actor) AS v FROM public.sites_history h
            UNION ALL SELECT lower(h.application_name) FROM public.sites_history h
            UNION ALL SELECT lower(h.session_role) FROM public.sites_history h
            UNION ALL SELECT lower(h.actor) FROM public.users_history h
            UNION ALL SELECT lower(h.application_name) FROM public.users_history h
            UNION ALL SELECT lower(h.session_role) FROM public.users_history h
            UNION ALL SELECT lower(h.forgotten_by) FROM public.users_history h
            UNION ALL SELECT lower(h.actor) FROM public.history_prunes h
            UNION ALL SELECT lower(h.session_role) FROM public.history_prunes h) AS f, unnest(patterns) AS m(p)
     WHERE f.v ~ m.p;
    UPDATE public.sites_history h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           application_name = CASE WHEN lower(h.application_name) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.application_name END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.application_name) ~ ANY (patterns) OR lower(h.session_role) ~ ANY (patterns);
    UPDATE public.users_history h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           application_name = CASE WHEN lower(h.application_name) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.application_name END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END,
           forgotten_by = CASE WHEN lower(h.forgotten_by) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.forgotten_by END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.application_name) ~ ANY (patterns)
        OR lower(h.session_role) ~ ANY (patterns) OR lower(h.forgotten_by) ~ ANY (patterns);
    UPDATE public.history_prunes h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.session_role) ~ ANY (patterns);
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    RETURN QUERY
    SELECT i.id,
           (SELECT count(*) FROM unnest(scrubbed_ids) AS x(id) WHERE x.id = i.id),
           (SELECT count(*) FROM unnest(actor_hits) AS r(p)
             WHERE r.p IN (SELECT o.p FROM unnest(address_owners, address_patterns) AS o(user_id, p) WHERE o.user_id = i.id))
      FROM unnest(ids) AS i(id)
     ORDER BY i.id;
END
$body$;
CREATE FUNCTION cabinet_forget_user(forgotten text) RETURNS TABLE (forgotten_id text, user_row_deleted boolean, history_rows bigint, actor_fields bigint, sites_mentioning text[]) LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
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
$body$;
REVOKE ALL ON FUNCTION cabinet_scrub_forgotten(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION cabinet_forget_user(text) FROM PUBLIC;
DO $grants$
BEGIN
    IF current_setting('cabinet.forget_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION cabinet_scrub_forgotten(text[]) TO %s', current_setting('cabinet.forget_grantees'));
    END IF;
END
$grants$;
DO $grants$
BEGIN
    IF current_setting('cabinet.forget_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION cabinet_forget_user(text) TO %s', current_setting('cabinet.forget_grantees'));
    END IF;
END
$grants$;
