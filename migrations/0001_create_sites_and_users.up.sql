-- 0001: the two tables this database is the single source of truth for.
-- Generated from src/models/schema.rs; every rule is a named constraint so that any
-- client's violation maps to a clear message.
CREATE TABLE sites (
    site_id text NOT NULL,
    domain text NOT NULL,
    ai_script_id text,
    ai_prompt text,
    brand_name text,
    language text DEFAULT 'en' NOT NULL,
    hubspot_pipeline text,
    hubspot_stage text,
    created_at timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT sites_pkey PRIMARY KEY (site_id),
    CONSTRAINT sites_site_id_format CHECK (length(site_id) <= 200 AND site_id ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]*[^[:space:][:cntrl:]])?$'),
    CONSTRAINT sites_domain_key UNIQUE (domain),
    CONSTRAINT sites_domain_lowercase CHECK (domain = lower(domain)),
    CONSTRAINT sites_domain_hostname CHECK (length(domain) <= 253 AND domain ~* '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT sites_language_tag CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$'),
    CONSTRAINT sites_hubspot_stage_needs_pipeline CHECK (hubspot_stage IS NULL OR hubspot_pipeline IS NOT NULL)
);

CREATE TABLE users (
    user_id text NOT NULL,
    email text,
    first_seen timestamptz DEFAULT now() NOT NULL,
    last_seen timestamptz DEFAULT now() NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_user_id_format CHECK (length(user_id) <= 200 AND user_id ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]*[^[:space:][:cntrl:]])?$'),
    CONSTRAINT users_email_format CHECK (length(email) <= 320 AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$'),
    CONSTRAINT users_seen_order CHECK (first_seen <= last_seen)
);
-- The table is new and empty, so a plain (non-concurrent) build blocks nobody.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX users_email_idx ON users (lower(email));
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX users_last_seen_idx ON users (last_seen);
