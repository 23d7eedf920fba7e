-- Reverts 0001: drops both tables and all their rows.
-- squawk-ignore ban-drop-table
DROP TABLE users;
-- squawk-ignore ban-drop-table
DROP TABLE sites;
