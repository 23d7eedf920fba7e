-- Reverts 0011: ids may change again; users forget looks at the one id it is given.
DROP TRIGGER immutable_key ON users;
DROP TRIGGER immutable_key ON sites;
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_immutable_key();
CREATE OR REPLACE FUNCTION cabinet_forget_user(forgotten text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
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
