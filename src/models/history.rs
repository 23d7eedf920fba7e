//! The change history of `sites` and `users`, kept by PostgreSQL itself for every writer (n8n,
//! the admin panel, psql, our CLI), so it cannot be bypassed by writing SQL directly.
//!
//! - `sites_history`: every `INSERT`, `UPDATE` and `DELETE` of a site, numbered per site
//!   1, 2, 3 … without gaps, with the row before and after, the fields that changed, who
//!   (`cabinet.actor` when the writer set it for the transaction, else the session's role),
//!   from where, and the transaction.
//! - `users_history`: creation, e-mail changes and deletion of a user. Activity
//!   (`first_seen`/`last_seen`, moved by `record_seen`) is not a change of the record and is
//!   not logged.
//!
//! The triggers are statement-level with transition tables: a bulk `COPY` or `INSERT …
//! SELECT` of 10 000 rows is one trigger call and one `INSERT … SELECT` into the history, not
//! 10 000 calls. `TRUNCATE` is refused (recording it meant reading the table as the history's
//! owner, where the table's owner could have attached a policy; `DELETE` removes every row,
//! recorded). A table with a column of a type outside `pg_catalog` is refused too: that type's
//! owner could give it a cast that `to_jsonb` would run with the history's rights. The functions run as
//! their owner (`SECURITY DEFINER`, `search_path` pinned) so writers need no privilege on the
//! history, and the history refuses `UPDATE`, `DELETE` and `TRUNCATE` from everyone —
//! `history prune` and `users forget` are the only ways to change it.
//!
//! Versions: a site's next version is one more than its highest. Concurrent writers of one
//! site are serialised by the row lock their `UPDATE`/`DELETE` takes, and the trigger (run
//! after the statement, with a fresh snapshot under READ COMMITTED) sees the earlier
//! writer's committed version, so numbers never repeat or skip.

use super::{
    characters::{invisible_or_control_class, white_space_class},
    definitions::{ColumnDef, ConstraintDef, FunctionDef, IndexDef, TableDef, TableKind, TriggerDef},
};

const fn column(name: &'static str, sql_type: &'static str) -> ColumnDef {
    ColumnDef { name, sql_type, not_null: false, default: None }
}

const fn required(name: &'static str, sql_type: &'static str) -> ColumnDef {
    ColumnDef { name, sql_type, not_null: true, default: None }
}

/// Who, when, from where: the same columns in both history tables.
macro_rules! context_columns {
    () => {
        [
            ColumnDef {
                name: "changed_at",
                sql_type: "timestamptz",
                not_null: true,
                default: Some("clock_timestamp()"),
            },
            required("actor", "text"),
            required("session_role", "text"),
            ColumnDef { name: "application_name", sql_type: "text", not_null: true, default: Some("''") },
            column("client_addr", "inet"),
            ColumnDef {
                name: "transaction_id",
                sql_type: "xid8",
                not_null: true,
                default: Some("pg_current_xact_id()"),
            },
        ]
    };
}

const SITES_HISTORY_COLUMNS: [ColumnDef; 14] = {
    let context = context_columns!();
    [
        required("site_id", "text"),
        required("version", "bigint"),
        required("operation", "text"),
        context[0],
        context[1],
        context[2],
        context[3],
        context[4],
        context[5],
        column("old_row", "jsonb"),
        column("new_row", "jsonb"),
        ColumnDef { name: "changed_fields", sql_type: "text[]", not_null: true, default: Some("'{}'") },
        // The write's mark (`cabinet.mark`): the version a revert or restore puts back, or the
        // version an edit was made on when it was merged into a newer one.
        column("restores_version", "bigint"),
        column("merges_version", "bigint"),
    ]
};

const USERS_HISTORY_COLUMNS: [ColumnDef; 13] = {
    let context = context_columns!();
    [
        required("user_id", "text"),
        required("version", "bigint"),
        required("operation", "text"),
        context[0],
        context[1],
        context[2],
        context[3],
        context[4],
        context[5],
        column("old_email", "text"),
        column("new_email", "text"),
        column("forgotten_at", "timestamptz"),
        column("forgotten_by", "text"),
    ]
};

pub(crate) const SITES_HISTORY: TableDef = TableDef {
    name: "sites_history",
    kind: TableKind::History,
    columns: &SITES_HISTORY_COLUMNS,
    constraints: &[
        ConstraintDef {
            name: "sites_history_pkey",
            definition: "PRIMARY KEY (site_id, version)",
            meaning: "this version of the site is already recorded",
        },
        ConstraintDef {
            name: "sites_history_operation",
            definition: "CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE'))",
            meaning: "a history entry records an INSERT, UPDATE or DELETE",
        },
        ConstraintDef {
            name: "sites_history_version_positive",
            definition: "CHECK (version >= 1)",
            meaning: "versions count from 1",
        },
    ],
    indexes: &[IndexDef { name: "sites_history_changed_at_idx", unique: false, keys: "(changed_at)" }],
    triggers: &[APPEND_ONLY_TRIGGER],
};

pub(crate) const USERS_HISTORY: TableDef = TableDef {
    name: "users_history",
    kind: TableKind::History,
    columns: &USERS_HISTORY_COLUMNS,
    constraints: &[
        ConstraintDef {
            name: "users_history_pkey",
            definition: "PRIMARY KEY (user_id, version)",
            meaning: "this version of the user is already recorded",
        },
        ConstraintDef {
            name: "users_history_operation",
            definition: "CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE'))",
            meaning: "a history entry records an INSERT, UPDATE or DELETE",
        },
        ConstraintDef {
            name: "users_history_version_positive",
            definition: "CHECK (version >= 1)",
            meaning: "versions count from 1",
        },
    ],
    // No index on changed_at: users change far more often than sites (imports, sign-ups), and
    // only `history prune` filters on it (a sequential scan now and then).
    indexes: &[],
    triggers: &[APPEND_ONLY_TRIGGER],
};

/// Every `history prune`: who removed which history, when (append-only like the history).
pub(crate) const HISTORY_PRUNES: TableDef = TableDef {
    name: "history_prunes",
    kind: TableKind::History,
    columns: &[
        ColumnDef {
            name: "pruned_at",
            sql_type: "timestamptz",
            not_null: true,
            default: Some("clock_timestamp()"),
        },
        required("actor", "text"),
        required("session_role", "text"),
        required("before", "timestamptz"),
        required("sites_rows", "bigint"),
        required("users_rows", "bigint"),
    ],
    constraints: &[],
    indexes: &[],
    triggers: &[APPEND_ONLY_TRIGGER],
};

/// On each history table: no `UPDATE`, `DELETE` or `TRUNCATE` outside our maintenance.
const APPEND_ONLY_TRIGGER: TriggerDef = TriggerDef {
    name: "append_only",
    definition: "CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_history_append_only()",
};

pub(crate) const SITES_TRIGGERS: &[TriggerDef] = &[
    TriggerDef {
        name: "immutable_key",
        definition: "CREATE TRIGGER immutable_key BEFORE UPDATE OF site_id ON {table} FOR EACH ROW WHEN (OLD.site_id IS DISTINCT FROM NEW.site_id) EXECUTE FUNCTION {schema}cabinet_immutable_key('site_id')",
    },
    TriggerDef {
        name: "history_insert",
        definition: "CREATE TRIGGER history_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_sites_history()",
    },
    TriggerDef {
        name: "history_update",
        definition: "CREATE TRIGGER history_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_sites_history()",
    },
    TriggerDef {
        name: "history_delete",
        definition: "CREATE TRIGGER history_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_sites_history()",
    },
    TriggerDef {
        name: "history_truncate",
        definition: "CREATE TRIGGER history_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_sites_history()",
    },
];

pub(crate) const USERS_TRIGGERS: &[TriggerDef] = &[
    TriggerDef {
        name: "immutable_key",
        definition: "CREATE TRIGGER immutable_key BEFORE UPDATE OF user_id ON {table} FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION {schema}cabinet_immutable_key('user_id')",
    },
    TriggerDef {
        name: "history_insert",
        definition: "CREATE TRIGGER history_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_users_history()",
    },
    TriggerDef {
        name: "history_update",
        definition: "CREATE TRIGGER history_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_users_history()",
    },
    TriggerDef {
        name: "history_delete",
        definition: "CREATE TRIGGER history_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_users_history()",
    },
    TriggerDef {
        name: "history_truncate",
        definition: "CREATE TRIGGER history_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}cabinet_users_history()",
    },
];

/// The context every history row carries, as SQL expressions in the order of the context
/// columns after `operation`: actor, session role, application, client address.
macro_rules! context_values {
    () => {
        "coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr()"
    };
}

/// The actor a writer named (`cabinet.actor`) follows the CLI's rules (`history::Actor`): 1–200
/// characters, not blank, no control or invisible character — it is printed to terminals and
/// shown in the panel, so SQL must not be able to set what the CLI refuses.
macro_rules! actor_check {
    () => {
        concat!(
            "    IF nullif(current_setting('cabinet.actor', true), '') IS NOT NULL
       AND (char_length(current_setting('cabinet.actor', true)) > 200
            OR current_setting('cabinet.actor', true) ~ '^[",
            white_space_class!(),
            "]*$'
            OR current_setting('cabinet.actor', true) ~ '[",
            invisible_or_control_class!(),
            "]') THEN
        RAISE EXCEPTION 'cabinet.actor must be 1-200 visible characters, e.g. alice@example.com (it has %)',
            char_length(current_setting('cabinet.actor', true))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
"
        )
    };
}

/// Two consecutive versions of a site (`c.previous_*` the earlier) that do not meet: the later
/// one found the row otherwise than the earlier left it (times compared as times), created it
/// again without a deletion between, or changed one that was deleted. The one rule for
/// `history prune` (which refuses to remove such a version) and the audit (which names it).
macro_rules! site_versions_do_not_meet {
    () => {
        "((c.operation = 'INSERT') <> (c.previous_operation = 'DELETE')
            OR (c.operation <> 'INSERT' AND NOT (c.old_row - 'created_at') @> (c.previous_row - 'created_at'))
            OR (c.operation <> 'INSERT'
                AND (c.old_row ->> 'created_at')::timestamptz IS DISTINCT FROM (c.previous_row ->> 'created_at')::timestamptz))"
    };
}
pub(crate) use site_versions_do_not_meet;

/// The history's trigger functions run as its owner and turn rows into JSON: a column of a
/// type outside `pg_catalog` (one the table's owner made, with a cast to json or text of its
/// own) would run that owner's code with the history's rights. Such a table (drift: the
/// models use built-in types only) is refused before any row is read.
macro_rules! trusted_columns_check {
    () => {
        "    IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                  AND t.typnamespace <> 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION '% has a column of a type outside pg_catalog: the history records built-in types only', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = 'cabinet-db migrate check names the drift';
    END IF;
"
    };
}

pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "cabinet_sites_history",
        definition: concat!(
            "CREATE FUNCTION {schema}cabinet_sites_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    -- One mark per transaction, set by the writer: 'restores:V' (a revert or restore puts
    -- version V back) or 'merges:V' (an edit made on version V, merged into the newer one).
    mark text := coalesce(current_setting('cabinet.mark', true), '');
    mark_restores bigint := CASE WHEN mark ~ '^restores:[0-9]{1,18}$' THEN substr(mark, 10)::bigint END;
    mark_merges bigint := CASE WHEN mark ~ '^merges:[0-9]{1,18}$' THEN substr(mark, 8)::bigint END;
BEGIN
",
            actor_check!(),
            trusted_columns_check!(),
            "    -- A mark must be true: a write marked as restoring version V writes V's values (the
    -- columns V had; created_at never changes), one marked as merging an edit made on version V
    -- follows a V the history holds. Only reverts and restores set the first, only the panel's
    -- merged save the second; a session setting cabinet.mark itself gets no false record.
    -- (Nested: new_rows exists only for INSERT and UPDATE, and a statement is planned when reached.)
    IF mark_restores IS NOT NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (
            SELECT 1 FROM new_rows n
             WHERE NOT EXISTS (
                SELECT 1 FROM public.sites_history h
                 WHERE h.site_id = n.site_id AND h.version = mark_restores
                   AND (coalesce(h.new_row, h.old_row) - 'created_at') <@ (to_jsonb(n) - 'created_at')))
        THEN
            RAISE EXCEPTION 'cabinet.mark says this write restores version %, but what it writes is not that version''s row', mark_restores
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'cabinet-db sites revert and sites restore set this mark; a write of your own needs none';
        END IF;
    END IF;
    IF mark_merges IS NOT NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (
            SELECT 1 FROM new_rows n
             WHERE NOT EXISTS (
                SELECT 1 FROM public.sites_history h
                 WHERE h.site_id = n.site_id AND h.version = mark_merges
                   AND h.operation <> 'DELETE'))
        THEN
            RAISE EXCEPTION 'cabinet.mark says this write merges an edit made on version %, which the history does not hold', mark_merges
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'the admin panel sets this mark for a merged save; a write of your own needs none';
        END IF;
    END IF;
    -- Written by cabinet-db (src/models/history.rs): one call per statement, whatever its size.
    -- Each CTE is MATERIALIZED: every row's next version is looked up before the first
    -- history row is written, so a lookup never scans rows this statement adds.
    IF TG_OP = 'INSERT' THEN
        WITH r AS MATERIALIZED (
            SELECT n.site_id, to_jsonb(n) AS new_row, coalesce(v.version, 0) + 1 AS version
              FROM new_rows n
              LEFT JOIN (SELECT h.site_id, max(h.version) AS version FROM public.sites_history h
                          WHERE h.site_id IN (SELECT site_id FROM new_rows) GROUP BY h.site_id) v
                ON v.site_id = n.site_id)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, new_row, changed_fields, restores_version, merges_version)
        SELECT r.site_id, r.version, 'INSERT', ",
            context_values!(),
            ",
               r.new_row, ARRAY(SELECT e.key FROM jsonb_each(r.new_row) e WHERE e.value <> 'null' ORDER BY e.key), mark_restores, mark_merges
          FROM r;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Rows matched by site_id; an id that changed is the deletion of one and the creation
        -- of the other. An UPDATE that changed nothing is not a new version.
        WITH r AS MATERIALIZED (
            SELECT c.*, coalesce((SELECT max(h.version) FROM public.sites_history h WHERE h.site_id = c.site_id), 0) + 1 AS version
              FROM (SELECT coalesce(n.site_id, o.site_id) AS site_id,
                           CASE WHEN o.site_id IS NOT NULL THEN to_jsonb(o) END AS old_row,
                           CASE WHEN n.site_id IS NOT NULL THEN to_jsonb(n) END AS new_row
                      FROM old_rows o FULL JOIN new_rows n ON n.site_id = o.site_id) c
             WHERE c.old_row IS DISTINCT FROM c.new_row)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row, new_row, changed_fields, restores_version, merges_version)
        SELECT r.site_id, r.version,
               CASE WHEN r.old_row IS NULL THEN 'INSERT' WHEN r.new_row IS NULL THEN 'DELETE' ELSE 'UPDATE' END, ",
            context_values!(),
            ",
               r.old_row, r.new_row,
               ARRAY(SELECT k.key FROM jsonb_object_keys(coalesce(r.new_row, r.old_row)) k(key)
                      WHERE r.new_row -> k.key IS DISTINCT FROM r.old_row -> k.key ORDER BY k.key),
               mark_restores, mark_merges
          FROM r;
    ELSIF TG_OP = 'DELETE' THEN
        WITH r AS MATERIALIZED (
            SELECT o.site_id, to_jsonb(o) AS old_row,
                   coalesce((SELECT max(h.version) FROM public.sites_history h WHERE h.site_id = o.site_id), 0) + 1 AS version
              FROM old_rows o)
        INSERT INTO public.sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, old_row)
        SELECT r.site_id, r.version, 'DELETE', ",
            context_values!(),
            ", r.old_row
          FROM r;
    ELSE
        -- TRUNCATE: recording it would mean reading the table as the history's owner, where
        -- the table's owner could have attached a row-level policy: refused instead.
        RAISE EXCEPTION 'TRUNCATE of % is refused: the history records every row it removes', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = format('DELETE FROM %s removes every row, recorded', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$body$"
        ),
    },
    FunctionDef {
        name: "cabinet_users_history",
        definition: concat!(
            "CREATE FUNCTION {schema}cabinet_users_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
",
            actor_check!(),
            trusted_columns_check!(),
            "    -- Written by cabinet-db (src/models/history.rs): creation, e-mail changes and deletion;
    -- first_seen/last_seen (activity) are not a change of the record. Versions are looked up
    -- before anything is written (MATERIALIZED), as for sites.
    IF TG_OP = 'INSERT' THEN
        -- One join with the versions these ids already have (usually none): the planner
        -- knows the batch's size and picks probes or a hash join.
        WITH r AS MATERIALIZED (
            SELECT n.user_id, n.email, coalesce(v.version, 0) + 1 AS version
              FROM new_rows n
              LEFT JOIN (SELECT h.user_id, max(h.version) AS version FROM public.users_history h
                          WHERE h.user_id IN (SELECT user_id FROM new_rows) GROUP BY h.user_id) v
                ON v.user_id = n.user_id)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, new_email)
        SELECT r.user_id, r.version, 'INSERT', ",
            context_values!(),
            ", r.email
          FROM r;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH r AS MATERIALIZED (
            SELECT coalesce(n.user_id, o.user_id) AS user_id, o.user_id AS old_id, n.user_id AS new_id,
                   o.email AS old_email, n.email AS new_email,
                   coalesce((SELECT max(h.version) FROM public.users_history h WHERE h.user_id = coalesce(n.user_id, o.user_id)), 0) + 1 AS version
              FROM old_rows o FULL JOIN new_rows n ON n.user_id = o.user_id
             WHERE o.user_id IS NULL OR n.user_id IS NULL OR o.email IS DISTINCT FROM n.email)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, old_email, new_email)
        SELECT r.user_id, r.version,
               CASE WHEN r.old_id IS NULL THEN 'INSERT' WHEN r.new_id IS NULL THEN 'DELETE' ELSE 'UPDATE' END, ",
            context_values!(),
            ", r.old_email, r.new_email
          FROM r;
    ELSIF TG_OP = 'DELETE' THEN
        WITH r AS MATERIALIZED (
            SELECT o.user_id, o.email,
                   coalesce((SELECT max(h.version) FROM public.users_history h WHERE h.user_id = o.user_id), 0) + 1 AS version
              FROM old_rows o)
        INSERT INTO public.users_history (user_id, version, operation, actor, session_role, application_name, client_addr, old_email)
        SELECT r.user_id, r.version, 'DELETE', ",
            context_values!(),
            ", r.email
          FROM r;
    ELSE
        -- TRUNCATE: recording it would mean reading the table as the history's owner, where
        -- the table's owner could have attached a row-level policy: refused instead.
        RAISE EXCEPTION 'TRUNCATE of % is refused: the history records every row it removes', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege', HINT = format('DELETE FROM %s removes every row, recorded', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$body$"
        ),
    },
    FunctionDef {
        name: "cabinet_scrub_forgotten",
        definition: concat!(
            "CREATE FUNCTION {schema}cabinet_scrub_forgotten(ids text[]) RETURNS TABLE (forgotten_id text, history_rows bigint, actor_fields bigint) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    gone text;
    address_owners text[];
    address_patterns text[];
    patterns text[];
    scrubbed_ids text[];
    actor_hits text[];
    forgetter text := coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text);
BEGIN
",
            actor_check!(),
            "    -- Written by cabinet-db (src/models/history.rs): the history's half of a delete-my-data
    -- request (cabinet_forget_user deletes the users first, as its caller). It reads and
    -- writes the history's own tables only — never a table the schema's owner owns, whose
    -- triggers, rules or policies would run as this function's owner. Each id must be gone:
    -- its newest version a DELETE. Every e-mail address in their history is removed (the rows
    -- stay, saying when and by whom), and every actor, forgotten_by or application_name that
    -- holds one of their addresses (in any case, e.g. 'Alice <alice@example.com>') becomes
    -- 'a forgotten user', and so does a session role named after one. Rows already forgotten
    -- keep when and by whom. One row per id: history rows and such fields scrubbed.
    SELECT i.id INTO gone
      FROM unnest(ids) AS i(id)
     WHERE NOT EXISTS (SELECT 1 FROM public.users_history h
                        WHERE h.user_id = i.id AND h.operation = 'DELETE'
                          AND h.version = (SELECT max(n.version) FROM public.users_history n WHERE n.user_id = i.id))
       AND EXISTS (SELECT 1 FROM public.users_history h WHERE h.user_id = i.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'user % is not deleted: its history is scrubbed only once the user is gone', quote_literal(gone)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'cabinet-db users forget deletes the user first';
    END IF;
    -- Every address, as a pattern that matches it alone (not inside a longer address).
    SELECT coalesce(array_agg(a.user_id), '{}'),
           coalesce(array_agg('(^|[^a-z0-9._%+-])' || regexp_replace(a.address, '([.+*?^$(){}|\\[\\]\\\\])', '\\\\\\1', 'g') || '(?![a-z0-9-]|\\.[a-z0-9-])'), '{}')
      INTO address_owners, address_patterns
      FROM (SELECT DISTINCT h.user_id, lower(e.address)
              FROM public.users_history h, LATERAL (VALUES (h.old_email), (h.new_email)) AS e(address)
             WHERE h.user_id = ANY (ids) AND e.address IS NOT NULL) AS a(user_id, address);
    patterns := ARRAY(SELECT DISTINCT p FROM unnest(address_patterns) AS p);
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    WITH s AS (
        UPDATE public.users_history h
           SET old_email = NULL, new_email = NULL, forgotten_at = clock_timestamp(), forgotten_by = forgetter
         WHERE h.user_id = ANY (ids) AND h.forgotten_at IS NULL
        RETURNING h.user_id
    )
    SELECT coalesce(array_agg(s.user_id), '{}') INTO scrubbed_ids FROM s;
    -- Which pattern each scrubbed field matched, counted before it is replaced.
    SELECT coalesce(array_agg(m.p), '{}') INTO actor_hits
      FROM (SELECT lower(h.actor) AS v FROM public.sites_history h
            UNION ALL SELECT lower(h.application_name) FROM public.sites_history h
            UNION ALL SELECT lower(h.session_role) FROM public.sites_history h
            UNION ALL SELECT lower(h.actor) FROM public.users_history h
            UNION ALL SELECT lower(h.application_name) FROM public.users_history h
            UNION ALL SELECT lower(h.session_role) FROM public.users_history h
            UNION ALL SELECT lower(h.forgotten_by) FROM public.users_history h
            UNION ALL SELECT lower(h.actor) FROM public.history_prunes h
            UNION ALL SELECT lower(h.session_role) FROM public.history_prunes h) AS f, unnest(patterns) AS m(p)
     WHERE f.v ~ m.p;
    UPDATE public.sites_history h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           application_name = CASE WHEN lower(h.application_name) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.application_name END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.application_name) ~ ANY (patterns) OR lower(h.session_role) ~ ANY (patterns);
    UPDATE public.users_history h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           application_name = CASE WHEN lower(h.application_name) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.application_name END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END,
           forgotten_by = CASE WHEN lower(h.forgotten_by) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.forgotten_by END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.application_name) ~ ANY (patterns)
        OR lower(h.session_role) ~ ANY (patterns) OR lower(h.forgotten_by) ~ ANY (patterns);
    UPDATE public.history_prunes h
       SET actor = CASE WHEN lower(h.actor) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.actor END,
           session_role = CASE WHEN lower(h.session_role) ~ ANY (patterns) THEN 'a forgotten user' ELSE h.session_role END
     WHERE lower(h.actor) ~ ANY (patterns) OR lower(h.session_role) ~ ANY (patterns);
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    RETURN QUERY
    SELECT i.id,
           (SELECT count(*) FROM unnest(scrubbed_ids) AS x(id) WHERE x.id = i.id),
           (SELECT count(*) FROM unnest(actor_hits) AS r(p)
             WHERE r.p IN (SELECT o.p FROM unnest(address_owners, address_patterns) AS o(user_id, p) WHERE o.user_id = i.id))
      FROM unnest(ids) AS i(id)
     ORDER BY i.id;
END
$body$"
        ),
    },
    FunctionDef {
        name: "cabinet_immutable_key",
        definition: "CREATE FUNCTION {schema}cabinet_immutable_key() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    -- Written by cabinet-db (src/models/history.rs): ids never change. n8n and the other
    -- services hold site_id; user_id is Zitadel's sub, which never changes either; and the
    -- history, and forgetting a person, follow a record by its id.
    RAISE EXCEPTION '%.% cannot change (from % to %): ids are permanent', TG_TABLE_NAME, TG_ARGV[0],
        quote_literal(to_jsonb(OLD) ->> TG_ARGV[0]), quote_literal(to_jsonb(NEW) ->> TG_ARGV[0])
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'delete the record and create it again under the new id (its history stays under the old one)';
END
$body$",
    },
    FunctionDef {
        name: "cabinet_prune_history",
        definition: concat!(
            "CREATE FUNCTION {schema}cabinet_prune_history(before timestamptz) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    sites_rows bigint;
    users_rows bigint;
    broken text;
BEGIN
    -- Written by cabinet-db (src/models/history.rs): removes history older than `before`,
    -- keeping each site's and user's newest version (numbering continues from it), and
    -- records the prune itself. Only the owner and superusers may run it.
    -- A version it would remove that the next one does not meet is the only trace of a write
    -- past the triggers: the prune refuses rather than remove it.
    SELECT format('site %s, versions %s and %s', quote_literal(c.site_id), c.version - 1, c.version) INTO broken
      FROM (SELECT h.site_id, h.version, h.operation, h.old_row, h.changed_at,
                   lag(h.version) OVER w AS previous, lag(h.operation) OVER w AS previous_operation,
                   lag(h.new_row) OVER w AS previous_row, lag(h.changed_at) OVER w AS previous_at
              FROM public.sites_history h
            WINDOW w AS (PARTITION BY h.site_id ORDER BY h.version)) AS c
     WHERE c.previous = c.version - 1 AND c.previous_at < before
       AND ",
            site_versions_do_not_meet!(),
            "
     LIMIT 1;
    IF broken IS NOT NULL THEN
        RAISE EXCEPTION 'history prune refused: % do not meet (a write between them was not recorded), and pruning would remove the evidence', broken
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'cabinet-db migrate check names it; find who in the server log, then prune with an earlier cut-off';
    END IF;
    PERFORM set_config('cabinet.history_maintenance', 'on', true);
    DELETE FROM public.sites_history h
     WHERE h.changed_at < before
       AND h.version < (SELECT max(n.version) FROM public.sites_history n WHERE n.site_id = h.site_id);
    GET DIAGNOSTICS sites_rows = ROW_COUNT;
    DELETE FROM public.users_history h
     WHERE h.changed_at < before
       AND h.version < (SELECT max(n.version) FROM public.users_history n WHERE n.user_id = h.user_id);
    GET DIAGNOSTICS users_rows = ROW_COUNT;
    PERFORM set_config('cabinet.history_maintenance', 'off', true);
    INSERT INTO public.history_prunes (actor, session_role, before, sites_rows, users_rows)
    VALUES (coalesce(nullif(current_setting('cabinet.actor', true), ''), session_user::text), session_user::text, before, sites_rows, users_rows);
    RETURN sites_rows + users_rows;
END
$body$"
        ),
    },
    FunctionDef {
        name: "cabinet_history_append_only",
        definition: "CREATE FUNCTION {schema}cabinet_history_append_only() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    -- Written by cabinet-db (src/models/history.rs). The history belongs to a role no login
    -- role and no session acting as the schema's owner is (roles apply: <prefix>historian),
    -- so only its own functions (history prune, users forget) reach an UPDATE or DELETE of it;
    -- this trigger runs as whoever issued the statement (no SECURITY DEFINER) and lets it
    -- through only when that is the history's owner inside such a function, which set
    -- cabinet.history_maintenance for its transaction. A setting alone opens nothing.
    IF current_setting('cabinet.history_maintenance', true) = 'on'
       AND current_user::regrole = (SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the change history is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'cabinet-db history prune and cabinet-db users forget are the ways to change it';
END
$body$",
    },
];

/// What exists when the history begins becomes each row's version 1 (migration 0004 ends with
/// this, and adopting an Alembic database runs it after creating the history).
pub const BACKFILL_SQL: &str = "-- What exists when the history begins is each row's version 1.
INSERT INTO sites_history (site_id, version, operation, actor, session_role, application_name, client_addr, new_row, changed_fields)
SELECT s.site_id, 1, 'INSERT', 'cabinet-db (history begins)', session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(),
       to_jsonb(s), ARRAY(SELECT e.key FROM jsonb_each(to_jsonb(s)) e WHERE e.value <> 'null' ORDER BY e.key)
  FROM sites s;
INSERT INTO users_history (user_id, version, operation, actor, session_role, application_name, client_addr, new_email)
SELECT u.user_id, 1, 'INSERT', 'cabinet-db (history begins)', session_user::text, coalesce(current_setting('application_name', true), ''), inet_client_addr(), u.email
  FROM users u;
";
