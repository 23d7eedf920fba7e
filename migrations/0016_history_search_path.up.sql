-- 0016: the history's functions resolve names only in pg_catalog (search_path = pg_catalog,
-- pg_temp; every table they touch is named with its schema): the owner role, which may create
-- in public, could otherwise plant a closer match there (public.to_jsonb(record)) and have it run
-- as the history's owner. They refuse a table with a column of a type outside pg_catalog (its
-- owner's cast to json would run as the history's owner; the models use built-in types only),
-- and refuse TRUNCATE (recording it meant reading the table as the history's owner, where the
-- table's owner could have attached a row-level policy): DELETE removes every row, recorded.
-- And an actor that is only white space of any kind is refused, as the CLI refuses it; and a
-- prune refuses to remove a version that the next one does not meet (the only trace of a write
-- past the triggers).
-- cabinet-db: changes the history
-- Generated from src/models/history.rs (the functions' bodies must stay byte for byte as
-- there: migrate check compares them).
CREATE OR REPLACE FUNCTION cabinet_sites_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    -- One mark per transaction, set by the writer: 'restores:V' (a revert or restore puts
    -- version V back) or 'merges:V' (an edit made on version V, merged into the newer one).
    mark text := coalesce(current_setting('cabinet.mark', true), '');
    mark_restores bigint := CASE WHEN mark ~ '^restores:[0-9]{1,18}$' THEN substr(mark, 10)::bigint END;
    mark_merges bigint := CASE WHEN mark ~ '^merges:[0-9]{1,18}$' THEN substr(mark, 8)::bigint END;
BEGIN
    IF nullif(current_setting('cabinet.actor', true), '') IS NOT NULL
       AND (char_length(current_setting('cabinet.actor', true)) > 200
            OR current_setting('cabinet.actor', true) ~ '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000]*$'
            OR current_setting('cabinet.actor', true) ~ '[\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]') THEN
        RAISE EXCEPTION 'cabinet.actor must be 1-200 visible characters, e.g. alice@example.com (it has %)',
            char_length(current_setting('cabinet.actor', true))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                  AND t.typnamespace <> 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION '% has a column of a type outside pg_catalog: the history records built-in types only', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = 'cabinet-db migrate check names the drift';
    END IF;
    -- A mark must be true: a write marked as restoring version V writes V's values (the
    -- columns V had; created_at never changes), one marked as merging an edit made on version V
    -- follows a V the history holds. Only reverts and restores set the first, only the panel's
    -- merged save the second; a session setting cabinet.mark itself gets no false record.
    -- (Nested: new_rows exists only for INSERT and UPDATE, and a statement is planned when reached.)
    IF mark_restores IS NOT NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (
            SELECT 1 FROM new_rows n
             WHERE NOT EXISTS (
                SELECT 1 FROM public.sites_history h
                 WHERE h.site_id = n.site_id AND h.version = mark_restores
                   AND (coalesce(h.new_row, h.old_row) - 'created_at') <@ (to_jsonb(n) - 'created_at')))
        THEN
            RAISE EXCEPTION 'cabinet.mark says this write restores version %, but what it writes is not that version''s row', mark_restores
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'cabinet-db sites revert and sites restore set this mark; a write of your own needs none';
        END IF;
    END IF;
    IF mark_merges IS NOT NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (
            SELECT 1 FROM new_rows n
             WHERE NOT EXISTS (
                SELECT 1 FROM public.sites_history h
                 WHERE h.site_id = n.site_id AND h.version = mark_merges
                   AND h.operation <> 'DELETE'))
        THEN
            RAISE EXCEPTION 'cabinet.mark says this write merges an edit made on version %, which the history does not hold', mark_merges
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'the admin panel sets this mark for a merged save; a write of your own needs none';
        END IF;
    END IF;
    -- Written by cabinet-db (src/models/history.rs): one call per statement, whatever its size.
    -- Each CTE is MATERIALIZED: every row's next version is looked up before the first
    -- history row is written, so a lookup never scans rows this statement adds.
    IF TG_OP = 'INSERT' THEN
        WITH r AS MATERIALIZED (
            SELECT n.site_id, to_jsonb(n) AS new_row, coalesce(v.version, 0) + 1 AS version
              FROM new_rows n
              LEFT JOIN (SELECT h.site_id, max(h.version) AS version FROM public.sites_history h
                          WHERE h.site_id IN (SELECT site_id FROM new_rows) GROUP BY h.site_id) v
                ON v.site_id = n.site_id)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, new_row, changed_fields, restores_version, merges_version)
        SELECT r.site_id, r.version, 'INSERT', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
               r.new_row, ARRAY(SELECT e.key FROM jsonb_each(r.new_row) e WHERE e.value <> 'null' ORDER BY e.key), mark_restores, mark_merges
          FROM r;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Rows matched by site_id; an id that changed is the deletion of one and the creation
        -- of the other. An UPDATE that changed nothing is not a new version.
        WITH r AS MATERIALIZED (
            SELECT c.*, coalesce((SELECT max(h.version) FROM public.sites_history h WHERE h.site_id = c.site_id), 0) + 1 AS version
              FROM (SELECT coalesce(n.site_id, o.site_id) AS site_id,
                           CASE WHEN o.site_id IS NOT NULL THEN to_jsonb(o) END AS old_row,
                           CASE WHEN n.site_id IS NOT NULL THEN to_jsonb(n) END AS new_row
                      FROM old_rows o FULL JOIN new_rows n ON n.site_id = o.site_id) c
             WHERE c.old_row IS DISTINCT FROM c.new_row)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row, new_row, changed_fields, restores_version, merges_version)
        SELECT r.site_id, r.version,
               CASE WHEN r.old_row IS NULL THEN 'INSERT' WHEN r.new_row IS NULL THEN 'DELETE' ELSE 'UPDATE' END, coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
               r.old_row, r.new_row,
               ARRAY(SELECT k.key FROM jsonb_object_keys(coalesce(r.new_row, r.old_row)) k(key)
                      WHERE r.new_row -> k.key IS DISTINCT FROM r.old_row -> k.key ORDER BY k.key),
               mark_restores, mark_merges
          FROM r;
    ELSIF TG_OP = 'DELETE' THEN
        WITH r AS MATERIALIZED (
            SELECT o.site_id, to_jsonb(o) AS old_row,
                   coalesce((SELECT max(h.version) FROM public.sites_history h WHERE h.site_id = o.site_id), 0) + 1 AS version
              FROM old_rows o)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row)
        SELECT r.site_id, r.version, 'DELETE', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.old_row
          FROM r;
    ELSE
        -- TRUNCATE: recording it would mean reading the table as the history's owner, where
        -- the table's owner could have attached a row-level policy: refused instead.
        RAISE EXCEPTION 'TRUNCATE of % is refused: the history records every row it removes', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = format('DELETE FROM %s removes every row, recorded', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$body$;
CREATE OR REPLACE FUNCTION cabinet_users_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF nullif(current_setting('cabinet.actor', true), '') IS NOT NULL
       AND (char_length(current_setting('cabinet.actor', true)) > 200
            OR current_setting('cabinet.actor', true) ~ '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000]*$'
            OR current_setting('cabinet.actor', true) ~ '[\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]') THEN
        RAISE EXCEPTION 'cabinet.actor must be 1-200 visible characters, e.g. alice@example.com (it has %)',
            char_length(current_setting('cabinet.actor', true))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                  AND t.typnamespace <> 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION '% has a column of a type outside pg_catalog: the history records built-in types only', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = 'cabinet-db migrate check names the drift';
    END IF;
    -- Written by cabinet-db (src/models/history.rs): creation, e-mail changes and deletion;
    -- first_seen/last_seen (activity) are not a change of the record. Versions are looked up
    -- before anything is written (MATERIALIZED), as for sites.
    IF TG_OP = 'INSERT' THEN
        -- One join with the versions these ids already have (usually none): the planner
        -- knows the batch's size and picks probes or a hash join.
        WITH r AS MATERIALIZED (
            SELECT n.user_id, n.email, coalesce(v.version, 0) + 1 AS version
              FROM new_rows n
              LEFT JOIN (SELECT h.user_id, max(h.version) AS version FROM public.users_history h
                          WHERE h.user_id IN (SELECT user_id FROM new_rows) GROUP BY h.user_id) v
                ON v.user_id = n.user_id)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, new_email)
        SELECT r.user_id, r.version, 'INSERT', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.email
          FROM r;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH r AS MATERIALIZED (
            SELECT coalesce(n.user_id, o.user_id) AS user_id, o.user_id AS old_id, n.user_id AS new_id,
                   o.email AS old_email, n.email AS new_email,
                   coalesce((SELECT max(h.version) FROM public.users_history h WHERE h.user_id = coalesce(n.user_id, o.user_id)), 0) + 1 AS version
              FROM old_rows o FULL JOIN new_rows n ON n.user_id = o.user_id
             WHERE o.user_id IS NULL OR n.user_id IS NULL OR o.email IS DISTINCT FROM n.email)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, old_email, new_email)
        SELECT r.user_id, r.version,
               CASE WHEN r.old_id IS NULL THEN 'INSERT' WHEN r.new_id IS NULL THEN 'DELETE' ELSE 'UPDATE' END, coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.old_email, r.new_email
          FROM r;
    ELSIF TG_OP = 'DELETE' THEN
        WITH r AS MATERIALIZED (
            SELECT o.user_id, o.email,
                   coalesce((SELECT max(h.version) FROM public.users_history h WHERE h.user_id = o.user_id), 0) + 1 AS version
              FROM old_rows o)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, old_email)
        SELECT r.user_id, r.version, 'DELETE', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.email
          FROM r;
    ELSE
        -- TRUNCATE: recording it would mean reading the table as the history's owner, where
        -- the table's owner could have attached a row-level policy: refused instead.
        RAISE EXCEPTION 'TRUNCATE of % is refused: the history records every row it removes', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = format('DELETE FROM %s removes every row, recorded', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$body$;
CREATE OR REPLACE FUNCTION cabinet_immutable_key() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    -- Written by cabinet-db (src/models/history.rs): ids never change. n8n and the other
    -- services hold site_id; user_id is Zitadel's sub, which never changes either; and the
    -- history, and forgetting a person, follow a record by its id.
    RAISE EXCEPTION '%.% cannot change (from % to %): ids are permanent', TG_TABLE_NAME, TG_ARGV[0],
        quote_literal(to_jsonb(OLD) ->> TG_ARGV[0]), quote_literal(to_jsonb(NEW) ->> TG_ARGV[0])
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'delete the record and create it again under the new id (its history stays under the old one)';
END
$body$;
CREATE OR REPLACE FUNCTION cabinet_prune_history(before timestamptz) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    sites_rows bigint;
    users_rows bigint;
    broken text;
BEGIN
    -- Written by cabinet-db (src/models/history.rs): removes history older than `before`,
    -- keeping each site's and user's newest version (numbering continues from it), and
    -- records the prune itself. Only the owner and superusers may run it.
    -- A version it would remove that the next one does not meet is the only trace of a write
    -- past the triggers: the prune refuses rather than remove it.
    SELECT format('site %s, versions %s and %s', quote_literal(c.site_id), c.version - 1, c.version) INTO broken
      FROM (SELECT h.site_id, h.version, h.operation, h.old_row, h.changed_at,
                   lag(h.version) OVER w AS previous, lag(h.operation) OVER w AS previous_operation,
                   lag(h.new_row) OVER w AS previous_row, lag(h.changed_at) OVER w AS previous_at
              FROM public.sites_history h
            WINDOW w AS (PARTITION BY h.site_id ORDER BY h.version)) AS c
     WHERE c.previous = c.version - 1 AND c.previous_at < before
       AND ((c.operation = 'INSERT') <> (c.previous_operation = 'DELETE')
            OR (c.operation <> 'INSERT' AND NOT (c.old_row - 'created_at') @> (c.previous_row - 'created_at'))
            OR (c.operation <> 'INSERT'
                AND (c.old_row ->> 'created_at')::timestamptz IS DISTINCT FROM (c.previous_row ->> 'created_at')::timestamptz))
     LIMIT 1;
    IF broken IS NOT NULL THEN
        RAISE EXCEPTION 'history prune refused: % do not meet (a write between them was not recorded), and pruning would remove the evidence', broken
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'cabinet-db migrate check names it; find who in the server log, then prune with an earlier cut-off';
    END IF;
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    DELETE FROM public.sites_history h
     WHERE h.changed_at < before
       AND h.version < (SELECT max(n.version) FROM public.sites_history n WHERE n.site_id = h.site_id);
    GET DIAGNOSTICS sites_rows = ROW_COUNT;
    DELETE FROM public.users_history h
     WHERE h.changed_at < before
       AND h.version < (SELECT max(n.version) FROM public.users_history n WHERE n.user_id = h.user_id);
    GET DIAGNOSTICS users_rows = ROW_COUNT;
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    INSERT INTO public.history_prunes (actor, session_role, before, sites_rows, users_rows)
    VALUES (coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, before, sites_rows, users_rows);
    RETURN sites_rows + users_rows;
END
$body$;
