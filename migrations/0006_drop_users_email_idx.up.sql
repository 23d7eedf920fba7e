-- no-transaction
-- users_email_prefix_idx (0005) serves every lookup this one did.
DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;
