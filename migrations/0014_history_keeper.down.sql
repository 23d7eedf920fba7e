-- Reverts 0014: the append-only trigger runs as its owner and lets through whatever set
-- cabinet.history_maintenance (as 0004 wrote it).
-- cabinet-db: changes the history
CREATE OR REPLACE FUNCTION cabinet_history_append_only() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
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
