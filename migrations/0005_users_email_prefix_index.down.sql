-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS users_email_prefix_idx;
