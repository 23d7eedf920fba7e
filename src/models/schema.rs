//! The expected schema, declared once.
//!
//! Integrity lives in PostgreSQL itself because n8n and the admin panel write SQL directly;
//! our own code is only one of the clients. Every constraint is named so that a violation,
//! whoever caused it, maps back to the human sentence in `ConstraintDef::meaning`.
//!
//! Expressions here are written as we would write them in a migration. They are compared
//! with a live database by letting PostgreSQL itself deparse both sides (see
//! `crate::schema_diff::model_snapshot`), so formatting differences never count as drift.

use super::characters::{invisible_or_control_class, line_break_or_control_class, white_space_class};
pub(crate) use super::definitions::{ColumnDef, ConstraintDef, FunctionDef, IndexDef, TableDef, TableKind};

/// `sites_site_id_format` / `users_user_id_format`: 1–200 characters, no control or format
/// character anywhere, no white space at either end (`characters` defines both sets).
macro_rules! identifier_check {
    ($column:literal) => {
        concat!(
            "CHECK (length(",
            $column,
            ") <= 200 AND ",
            $column,
            " ~ '^[^",
            white_space_class!(),
            invisible_or_control_class!(),
            "]([^",
            invisible_or_control_class!(),
            "]*[^",
            white_space_class!(),
            invisible_or_control_class!(),
            "])?$')"
        )
    };
}

/// `sites_*_one_line`: no line break, tab or other control character anywhere (`characters`
/// defines the set). Written as a match of the whole value, so the JSON Schema takes it as is.
macro_rules! one_line_check {
    ($column:literal) => {
        concat!("CHECK (", $column, " ~ '^[^", line_break_or_control_class!(), "]*$')")
    };
}

/// `*_range`: a finite time in the years 1 to 9999 (what RFC 3339 can write and chrono can
/// read; `timestamps::in_range` is the same rule in Rust).
macro_rules! timestamp_range_check {
    ($column:literal) => {
        concat!(
            "CHECK (",
            $column,
            " >= '0001-01-01 00:00:00+00'::timestamptz AND ",
            $column,
            " < '10000-01-01 00:00:00+00'::timestamptz)"
        )
    };
}

const fn column(name: &'static str, sql_type: &'static str) -> ColumnDef {
    ColumnDef { name, sql_type, not_null: false, default: None }
}

const fn required(name: &'static str, sql_type: &'static str) -> ColumnDef {
    ColumnDef { name, sql_type, not_null: true, default: None }
}

const fn required_with_default(
    name: &'static str,
    sql_type: &'static str,
    default: &'static str,
) -> ColumnDef {
    ColumnDef { name, sql_type, not_null: true, default: Some(default) }
}

pub const SITES: TableDef = TableDef {
    name: "sites",
    kind: TableKind::Record,
    triggers: super::history::SITES_TRIGGERS,
    columns: &[
        required("site_id", "text"),
        required("domain", "text"),
        column("ai_script_id", "text"),
        column("ai_prompt", "text"),
        column("brand_name", "text"),
        required_with_default("language", "text", "'en'"),
        column("hubspot_pipeline", "text"),
        column("hubspot_stage", "text"),
        required_with_default("created_at", "timestamptz", "now()"),
    ],
    constraints: &[
        ConstraintDef {
            name: "sites_pkey",
            definition: "PRIMARY KEY (site_id)",
            meaning: "a site with this site_id already exists",
        },
        ConstraintDef {
            name: "sites_site_id_format",
            definition: identifier_check!("site_id"),
            meaning: "site_id must be 1-200 characters, without leading or trailing white space, control or invisible (format) characters",
        },
        ConstraintDef {
            name: "sites_domain_key",
            definition: "UNIQUE (domain)",
            meaning: "another site already uses this domain (domains are compared case-insensitively)",
        },
        ConstraintDef {
            name: "sites_domain_lowercase",
            definition: "CHECK (domain = lower(domain))",
            meaning: "domain must be stored in lower case, e.g. example.com rather than Example.COM",
        },
        ConstraintDef {
            name: "sites_domain_hostname",
            definition: "CHECK (length(domain) <= 253 AND domain ~* '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$')",
            meaning: "domain must be a host name such as example.com or shop.example.co.uk (letters, digits, hyphens and dots; no scheme, port or path)",
        },
        ConstraintDef {
            name: "sites_language_tag",
            definition: "CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$')",
            meaning: "language must be a BCP 47 tag such as en, de or pt-BR",
        },
        ConstraintDef {
            name: "sites_ai_script_id_one_line",
            definition: one_line_check!("ai_script_id"),
            meaning: "ai_script_id must be one line: no line breaks, tabs or other control characters",
        },
        ConstraintDef {
            name: "sites_brand_name_one_line",
            definition: one_line_check!("brand_name"),
            meaning: "brand_name must be one line: no line breaks, tabs or other control characters",
        },
        ConstraintDef {
            name: "sites_hubspot_pipeline_one_line",
            definition: one_line_check!("hubspot_pipeline"),
            meaning: "hubspot_pipeline must be one line: no line breaks, tabs or other control characters",
        },
        ConstraintDef {
            name: "sites_hubspot_stage_one_line",
            definition: one_line_check!("hubspot_stage"),
            meaning: "hubspot_stage must be one line: no line breaks, tabs or other control characters",
        },
        ConstraintDef {
            name: "sites_hubspot_stage_needs_pipeline",
            definition: "CHECK (hubspot_stage IS NULL OR hubspot_pipeline IS NOT NULL)",
            meaning: "hubspot_stage is set but hubspot_pipeline is not: a stage belongs to a pipeline",
        },
        ConstraintDef {
            name: "sites_created_at_range",
            definition: timestamp_range_check!("created_at"),
            meaning: "created_at must be a real point in time between the years 1 and 9999 (not infinity)",
        },
    ],
    indexes: &[],
};

pub const USERS: TableDef = TableDef {
    name: "users",
    kind: TableKind::Record,
    triggers: super::history::USERS_TRIGGERS,
    columns: &[
        required("user_id", "text"),
        column("email", "text"),
        required_with_default("first_seen", "timestamptz", "now()"),
        required_with_default("last_seen", "timestamptz", "now()"),
    ],
    constraints: &[
        ConstraintDef {
            name: "users_pkey",
            definition: "PRIMARY KEY (user_id)",
            meaning: "a user with this user_id already exists",
        },
        ConstraintDef {
            name: "users_user_id_format",
            definition: identifier_check!("user_id"),
            meaning: "user_id (the Zitadel sub) must be 1-200 characters, without leading or trailing white space, control or invisible (format) characters",
        },
        ConstraintDef {
            name: "users_email_format",
            definition: concat!(
                "CHECK (length(email) <= 320 AND email ~ '^[^@",
                white_space_class!(),
                invisible_or_control_class!(),
                "]+@[^@.",
                white_space_class!(),
                invisible_or_control_class!(),
                r"]+(\.[^@.",
                white_space_class!(),
                invisible_or_control_class!(),
                "]+)+$')"
            ),
            meaning: "email must look like name@example.com, without spaces or invisible characters (or be left empty)",
        },
        ConstraintDef {
            name: "users_seen_order",
            definition: "CHECK (first_seen <= last_seen)",
            meaning: "first_seen must not be later than last_seen",
        },
        ConstraintDef {
            name: "users_first_seen_range",
            definition: timestamp_range_check!("first_seen"),
            meaning: "first_seen must be a real point in time between the years 1 and 9999 (not infinity)",
        },
        ConstraintDef {
            name: "users_last_seen_range",
            definition: timestamp_range_check!("last_seen"),
            meaning: "last_seen must be a real point in time between the years 1 and 9999 (not infinity)",
        },
    ],
    indexes: &[
        // text_pattern_ops: prefix searches (`LIKE 'ab%'`) under any collation, equality too.
        IndexDef { name: "users_email_prefix_idx", unique: false, keys: "(lower(email) text_pattern_ops)" },
        IndexDef { name: "users_last_seen_idx", unique: false, keys: "(last_seen)" },
        IndexDef { name: "users_user_id_prefix_idx", unique: false, keys: "(user_id text_pattern_ops)" },
    ],
};

/// Every table the application owns, in creation order.
pub(crate) const TABLES: &[TableDef] = &[
    SITES,
    USERS,
    super::history::SITES_HISTORY,
    super::history::USERS_HISTORY,
    super::history::HISTORY_PRUNES,
];

/// Every function of the schema, created before the tables whose triggers call them.
pub const FUNCTIONS: &[FunctionDef] = &{
    const HISTORY: &[FunctionDef] = super::history::FUNCTIONS;
    const ACTIVITY: &[FunctionDef] = &super::activity::FUNCTIONS;
    const ERASURE: &[FunctionDef] = &super::erasure::FUNCTIONS;
    let mut all = [HISTORY[0]; HISTORY.len() + ACTIVITY.len() + ERASURE.len()];
    let mut i = 0;
    while i < ACTIVITY.len() {
        all[HISTORY.len() + i] = ACTIVITY[i];
        i += 1;
    }
    let mut i = 0;
    while i < ERASURE.len() {
        all[HISTORY.len() + ACTIVITY.len() + i] = ERASURE[i];
        i += 1;
    }
    let mut i = 0;
    while i < HISTORY.len() {
        all[i] = HISTORY[i];
        i += 1;
    }
    all
};

/// The table where the migration runner records what it applied. It lives beside the
/// application tables but is not part of the model.
pub(crate) const MIGRATIONS_TABLE: &str = "cabinet_migrations";

/// The history's tables (they belong to the historian role, not the owner).
pub(crate) fn history_table_names() -> Vec<&'static str> {
    TABLES.iter().filter(|t| t.kind == TableKind::History).map(|t| t.name).collect()
}

pub(crate) fn function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

pub(crate) fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// The constraint of that name in any table of the model.
pub(crate) fn constraint(name: &str) -> Option<&'static ConstraintDef> {
    TABLES.iter().flat_map(|t| t.constraints.iter()).find(|c| c.name == name)
}
