-- 0011: ids are permanent, for every writer: an UPDATE that changes site_id or user_id is
-- refused (delete and create again). n8n and other services hold site_id, user_id is
-- Zitadel's `sub`, and the history and `users forget` follow a record by its id.
-- And `users forget` follows renames made before this: a DELETE of one id and an INSERT of
-- another in one transaction with the same e-mail address are one person, in both directions.
-- Generated from src/models/history.rs (the functions' bodies must stay byte for byte as
-- there: migrate check compares them).
CREATE OR REPLACE FUNCTION cabinet_forget_user(forgotten text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
DECLARE
    scrubbed bigint;
    ids text[];
    forgetter text := coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text);
BEGIN
    -- Written by cabinet-db (src/models/history.rs): a delete-my-data request. The user
    -- goes (the deletion is recorded), then every e-mail address in that user's history is
    -- removed; the rows stay, saying when and by whom the user was forgotten.
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
    SELECT array_agg(user_id) INTO ids FROM person;
    DELETE FROM public.users WHERE user_id = ANY (ids);
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    UPDATE public.users_history
       SET old_email = NULL, new_email = NULL, forgotten_at = clock_timestamp(), forgotten_by = forgetter
     WHERE user_id = ANY (ids);
    GET DIAGNOSTICS scrubbed = ROW_COUNT;
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    RETURN scrubbed;
END
$body$;
CREATE FUNCTION cabinet_immutable_key() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $body$
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
CREATE TRIGGER immutable_key BEFORE UPDATE OF site_id ON sites FOR EACH ROW WHEN (OLD.site_id IS DISTINCT FROM NEW.site_id) EXECUTE FUNCTION cabinet_immutable_key('site_id');
CREATE TRIGGER immutable_key BEFORE UPDATE OF user_id ON users FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION cabinet_immutable_key('user_id');
