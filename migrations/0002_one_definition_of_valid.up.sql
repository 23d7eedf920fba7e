-- 0002: one definition of valid, the same in the database as in cabinet-db.
--
-- * Identifiers and e-mail addresses: the character classes are spelled out as Unicode
--   ranges (src/models/characters.rs) instead of [:space:] and [:cntrl:], whose meaning
--   depends on the database's locale (under C.UTF-8 a no-break space is not a space). Control
--   and invisible format characters (zero-width, bidi overrides, the BOM) are refused
--   anywhere in an id, Unicode white space at either end; an e-mail host is dot-separated,
--   non-empty labels ("a@b.c." no longer passes).
-- * Timestamps: finite and within the years 1-9999. 'infinity' and far-future years used to
--   be accepted from any SQL client and then crashed every reader.
--
-- The constraints are added NOT VALID: this takes the tables' lock only for an instant, and
-- every row written from now on is checked. Migration 0003 checks the older rows (naming any
-- that break a rule) and validates the constraints without blocking writers.
-- Replaced in this transaction by the stricter rule below: no moment without one.
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_site_id_format;
ALTER TABLE sites ADD CONSTRAINT sites_site_id_format CHECK (((length(site_id) <= 200) AND (site_id ~ '^[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]([^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]*[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f])?$'::text))) NOT VALID;
ALTER TABLE sites ADD CONSTRAINT sites_created_at_range CHECK (((created_at >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (created_at < '10000-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;
-- Replaced in this transaction by the stricter rule below: no moment without one.
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_user_id_format;
ALTER TABLE users ADD CONSTRAINT users_user_id_format CHECK (((length(user_id) <= 200) AND (user_id ~ '^[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]([^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]*[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f])?$'::text))) NOT VALID;
-- Replaced in this transaction by the stricter rule below: no moment without one.
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_email_format;
ALTER TABLE users ADD CONSTRAINT users_email_format CHECK (((length(email) <= 320) AND (email ~ '^[^@\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+@[^@.\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+(\.[^@.\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+)+$'::text))) NOT VALID;
ALTER TABLE users ADD CONSTRAINT users_first_seen_range CHECK (((first_seen >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (first_seen < '10000-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;
ALTER TABLE users ADD CONSTRAINT users_last_seen_range CHECK (((last_seen >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (last_seen < '10000-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;
