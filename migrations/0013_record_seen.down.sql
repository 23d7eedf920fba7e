-- Reverts 0013: activity is recorded by cabinet-db's own statement only (users::record_seen).
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_record_seen(text, text, timestamptz, interval);
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_record_seen_many(text[], text[], timestamptz[], interval);
