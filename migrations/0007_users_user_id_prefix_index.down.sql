-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS users_user_id_prefix_idx;
