-- Reverts 0002: the new rules go, the format rules of 0001 come back (every row that passes
-- the new rules passes the old ones, so they validate).
-- A downgrade is maintenance: the brief write lock of re-adding a checked constraint is
-- accepted there.
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_last_seen_range;
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_first_seen_range;
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_email_format;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_email_format CHECK (length(email) <= 320 AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$');
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_user_id_format;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_user_id_format CHECK (length(user_id) <= 200 AND user_id ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]*[^[:space:][:cntrl:]])?$');
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_created_at_range;
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_site_id_format;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE sites ADD CONSTRAINT sites_site_id_format CHECK (length(site_id) <= 200 AND site_id ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]*[^[:space:][:cntrl:]])?$');
