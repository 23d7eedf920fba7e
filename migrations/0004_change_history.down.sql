-- Reverts 0004: the triggers, then the history (all of it) and its functions.
DROP TRIGGER history_insert ON sites;
DROP TRIGGER history_update ON sites;
DROP TRIGGER history_delete ON sites;
DROP TRIGGER history_truncate ON sites;
DROP TRIGGER history_insert ON users;
DROP TRIGGER history_update ON users;
DROP TRIGGER history_delete ON users;
DROP TRIGGER history_truncate ON users;
-- squawk-ignore ban-drop-table
DROP TABLE history_prunes;
-- squawk-ignore ban-drop-table
DROP TABLE users_history;
-- squawk-ignore ban-drop-table
DROP TABLE sites_history;
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_history_append_only();
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_prune_history(timestamptz);
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_forget_user(text);
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_users_history();
-- squawk-ignore ban-drop-function
DROP FUNCTION cabinet_sites_history();
