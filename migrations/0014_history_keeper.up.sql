-- 0014: the history belongs to a role of its own. roles apply hands the history's tables and the
-- functions that write them to <prefix>historian, which no login role and no session acting as
-- the owner is; the append-only trigger now runs as whoever issued the statement and lets an
-- UPDATE or DELETE of the history through only for the history's owner inside history prune or
-- users forget: setting cabinet.history_maintenance alone opens nothing.
-- cabinet-db: changes the history
-- Generated from src/models/history.rs (the functions' bodies must stay byte for byte as
-- there: migrate check compares them).
CREATE OR REPLACE FUNCTION cabinet_history_append_only() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    -- Written by cabinet-db (src/models/history.rs). The history belongs to a role no login
    -- role and no session acting as the schema's owner is (roles apply: <prefix>historian),
    -- so only its own functions (history prune, users forget) reach an UPDATE or DELETE of it;
    -- this trigger runs as whoever issued the statement (no SECURITY DEFINER) and lets it
    -- through only when that is the history's owner inside such a function, which set
    -- cabinet.history_maintenance for its transaction. A setting alone opens nothing.
    IF current_setting('cabinet.history_maintenance', true) = 'on'
       AND current_user::regrole = (SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the change history is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'cabinet-db history prune and cabinet-db users forget are the ways to change it';
END
$body$;
