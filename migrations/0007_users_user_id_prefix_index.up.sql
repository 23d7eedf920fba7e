-- no-transaction
-- The primary key's index serves user_id prefixes only under the C collation; this one does
-- under any.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_user_id_prefix_idx ON users (user_id text_pattern_ops);
