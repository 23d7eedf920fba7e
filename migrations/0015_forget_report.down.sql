-- Reverts 0015: cabinet_forget_user is the historian's own, deletes the user and returns the
-- number of history rows scrubbed (as 0011 wrote it).
-- cabinet-db: changes the history
SELECT set_config('cabinet.forget_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'cabinet_forget_user(text)'::regprocedure
   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0;
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_forget_user(text);
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_scrub_forgotten(text[]);
CREATE FUNCTION cabinet_forget_user(forgotten text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $body$
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
REVOKE ALL ON FUNCTION cabinet_forget_user(text) FROM PUBLIC;
DO $grants$
BEGIN
    IF current_setting('cabinet.forget_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION cabinet_forget_user(text) TO %s', current_setting('cabinet.forget_grantees'));
    END IF;
END
$grants$;
