-- 0004: the change history of sites and users, kept by PostgreSQL for every writer.
-- Generated from src/models/history.rs (the functions' bodies must stay byte for byte as
-- there: migrate check compares them). Statement-level triggers with transition tables log
-- a bulk write in one statement; the history refuses UPDATE, DELETE and TRUNCATE except
-- through cabinet_forget_user and cabinet_prune_history, which leave a record of their own.
CREATE FUNCTION cabinet_sites_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
DECLARE
    restores text := current_setting('cabinet.restores_version', true);
    restores_version bigint := CASE WHEN restores ~ '^[0-9]{1,18}$' THEN restores::bigint END;
BEGIN
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
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, new_row, changed_fields, restores_version)
        SELECT r.site_id, r.version, 'INSERT', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
               r.new_row, ARRAY(SELECT e.key FROM jsonb_each(r.new_row) e WHERE e.value <> 'null' ORDER BY e.key), restores_version
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
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row, new_row, changed_fields, restores_version)
        SELECT r.site_id, r.version,
               CASE WHEN r.old_row IS NULL THEN 'INSERT' WHEN r.new_row IS NULL THEN 'DELETE' ELSE 'UPDATE' END, coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
               r.old_row, r.new_row,
               ARRAY(SELECT k.key FROM jsonb_object_keys(coalesce(r.new_row, r.old_row)) k(key)
                      WHERE r.new_row -> k.key IS DISTINCT FROM r.old_row -> k.key ORDER BY k.key),
               restores_version
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
        -- TRUNCATE, before it happens: the deletion of every row.
        WITH r AS MATERIALIZED (
            SELECT s.site_id, to_jsonb(s) AS old_row,
                   coalesce((SELECT max(h.version) FROM public.sites_history h WHERE h.site_id = s.site_id), 0) + 1 AS version
              FROM public.sites s)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row)
        SELECT r.site_id, r.version, 'DELETE', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.old_row
          FROM r;
    END IF;
    RETURN NULL;
END
$body$;

CREATE FUNCTION cabinet_users_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
BEGIN
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
        -- TRUNCATE, before it happens: the deletion of every row.
        WITH r AS MATERIALIZED (
            SELECT u.user_id, u.email,
                   coalesce((SELECT max(h.version) FROM public.users_history h WHERE h.user_id = u.user_id), 0) + 1 AS version
              FROM public.users u)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, old_email)
        SELECT r.user_id, r.version, 'DELETE', coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), r.email
          FROM r;
    END IF;
    RETURN NULL;
END
$body$;

CREATE FUNCTION cabinet_forget_user(forgotten text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
DECLARE
    scrubbed bigint;
    forgetter text := coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text);
BEGIN
    -- Written by cabinet-db (src/models/history.rs): a delete-my-data request. The user
    -- goes (the deletion is recorded), then every e-mail address in that user's history is
    -- removed; the rows stay, saying when and by whom the user was forgotten.
    DELETE FROM public.users WHERE user_id = forgotten;
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    UPDATE public.users_history
       SET old_email = NULL, new_email = NULL, forgotten_at = clock_timestamp(), forgotten_by = forgetter
     WHERE user_id = forgotten;
    GET DIAGNOSTICS scrubbed = ROW_COUNT;
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    RETURN scrubbed;
END
$body$;

CREATE FUNCTION cabinet_prune_history(before timestamptz) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
DECLARE
    sites_rows bigint;
    users_rows bigint;
BEGIN
    -- Written by cabinet-db (src/models/history.rs): removes history older than `before`,
    -- keeping each site's and user's newest version (numbering continues from it), and
    -- records the prune itself. Only the owner and superusers may run it.
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

CREATE FUNCTION cabinet_history_append_only() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
BEGIN
    -- Written by cabinet-db (src/models/history.rs). Only the owner (and superusers) hold
    -- UPDATE/DELETE/TRUNCATE on the history at all; even they are refused unless our
    -- maintenance (history prune, users forget) set cabinet.history_maintenance for its
    -- transaction.
    IF current_setting('cabinet.history_maintenance', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the change history is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'cabinet-db history prune and cabinet-db users forget are the ways to change it';
END
$body$;

CREATE TABLE sites_history (
    site_id text NOT NULL,
    version bigint NOT NULL,
    operation text NOT NULL,
    changed_at timestamptz DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    session_role text NOT NULL,
    application_name text DEFAULT '' NOT NULL,
    client_addr inet,
    transaction_id xid8 DEFAULT pg_current_xact_id() NOT NULL,
    old_row jsonb,
    new_row jsonb,
    changed_fields text[] DEFAULT '{}' NOT NULL,
    restores_version bigint,
    CONSTRAINT sites_history_pkey PRIMARY KEY (site_id, version),
    CONSTRAINT sites_history_operation CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    CONSTRAINT sites_history_version_positive CHECK (version >= 1)
);
CREATE INDEX sites_history_changed_at_idx ON sites_history (changed_at);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON sites_history FOR EACH STATEMENT EXECUTE FUNCTION cabinet_history_append_only();

CREATE TABLE users_history (
    user_id text NOT NULL,
    version bigint NOT NULL,
    operation text NOT NULL,
    changed_at timestamptz DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    session_role text NOT NULL,
    application_name text DEFAULT '' NOT NULL,
    client_addr inet,
    transaction_id xid8 DEFAULT pg_current_xact_id() NOT NULL,
    old_email text,
    new_email text,
    forgotten_at timestamptz,
    forgotten_by text,
    CONSTRAINT users_history_pkey PRIMARY KEY (user_id, version),
    CONSTRAINT users_history_operation CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    CONSTRAINT users_history_version_positive CHECK (version >= 1)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON users_history FOR EACH STATEMENT EXECUTE FUNCTION cabinet_history_append_only();

CREATE TABLE history_prunes (
    pruned_at timestamptz DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    session_role text NOT NULL,
    before timestamptz NOT NULL,
    sites_rows bigint NOT NULL,
    users_rows bigint NOT NULL
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON history_prunes FOR EACH STATEMENT EXECUTE FUNCTION cabinet_history_append_only();

CREATE TRIGGER history_insert AFTER INSERT ON sites REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_sites_history();
CREATE TRIGGER history_update AFTER UPDATE ON sites REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_sites_history();
CREATE TRIGGER history_delete AFTER DELETE ON sites REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_sites_history();
CREATE TRIGGER history_truncate BEFORE TRUNCATE ON sites FOR EACH STATEMENT EXECUTE FUNCTION cabinet_sites_history();
CREATE TRIGGER history_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_users_history();
CREATE TRIGGER history_update AFTER UPDATE ON users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_users_history();
CREATE TRIGGER history_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cabinet_users_history();
CREATE TRIGGER history_truncate BEFORE TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION cabinet_users_history();

-- What exists when the history begins is each row's version 1.
INSERT INTO sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, new_row, changed_fields)
SELECT s.site_id, 1, 'INSERT', 'cabinet-db (history begins)', session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
       to_jsonb(s), ARRAY(SELECT e.key FROM jsonb_each(to_jsonb(s)) e WHERE e.value <> 'null' ORDER BY e.key)
  FROM sites s;
INSERT INTO users_history (user_id, version, operation, actor, session_role, application_name, client_addr, new_email)
SELECT u.user_id, 1, 'INSERT', 'cabinet-db (history begins)', session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), u.email
  FROM users u;
