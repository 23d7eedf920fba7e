-- no-transaction
-- 0005-0007: user search by e-mail or id prefix, index-backed (the admin panel's users page).
-- `text_pattern_ops` serves `LIKE 'prefix%'` whatever the database's collation, and equality
-- too, so this index replaces users_email_idx (0006). Built CONCURRENTLY: sign-ins keep
-- writing users meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_prefix_idx ON users (lower(email) text_pattern_ops);
