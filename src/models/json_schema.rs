//! `models export --json-schema`: JSON Schema (2020-12) for a site and a user as the database
//! stores them, for clients that validate before they write. Every pattern and length comes
//! from the named constraint's own expression, so the two cannot drift apart.
//!
//! Regular expressions are written in the subset ECMA-262 (with the `u` flag, as JSON Schema
//! validators use it) and Python's `re` read alike: code points of the Basic Multilingual Plane
//! as `\uXXXX`, the others as the characters themselves.

use serde_json::{Value, json};

use super::schema;

/// `~ '…'` (or `~* '…'`) of a CHECK expression: the regular expression, in PostgreSQL's syntax.
fn regex_of(constraint: &str) -> &'static str {
    let definition = schema::constraint(constraint).map_or("", |c| c.definition);
    let start = definition
        .find("~ '")
        .or_else(|| definition.find("~* '"))
        .map(|i| definition[i..].find('\'').unwrap() + i + 1);
    let Some(start) = start else { return "" };
    let end = definition.rfind('\'').unwrap_or(definition.len());
    &definition[start..end]
}

/// `length(column) <= N` of a CHECK expression.
fn max_length_of(constraint: &str) -> Option<u64> {
    let definition = schema::constraint(constraint)?.definition;
    let rest = &definition[definition.find(") <= ")? + 5..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// PostgreSQL's `\UXXXXXXXX` escapes become the characters themselves (ECMA-262 has no `\U`,
/// Python's `re` no `\u{…}`); `\uXXXX` and the rest stay as they are; a final `$` anchors at
/// the very end in every dialect.
pub(crate) fn portable_regex(postgresql: &str) -> String {
    let mut out = String::with_capacity(postgresql.len());
    let mut rest = postgresql;
    while let Some(at) = rest.find("\\U") {
        let (before, escape) = rest.split_at(at);
        out.push_str(before);
        let code =
            escape.get(2..10).and_then(|hex| u32::from_str_radix(hex, 16).ok()).and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &escape[10..];
            }
            None => {
                out.push_str("\\U");
                rest = &escape[2..];
            }
        }
    }
    out.push_str(rest);
    // Python's `$` also matches before a final newline; PostgreSQL's and ECMA-262's only at the
    // end. `(?!\n)` makes all three agree.
    if out.ends_with('$') && !out.ends_with("\\$") {
        out.push_str("(?!\\n)");
    }
    out
}

/// Text PostgreSQL can store: anything but NUL.
fn text() -> Value {
    json!({"type": "string", "pattern": "^[^\\u0000]*$"})
}

/// One line of text (the `sites_*_one_line` constraints).
fn one_line(constraint: &str) -> Value {
    json!({"type": "string", "pattern": portable_regex(regex_of(constraint)), "description": "One line: no line breaks, tabs or other control characters"})
}

fn nullable(mut schema: Value) -> Value {
    schema["type"] = json!(["string", "null"]);
    schema
}

/// A timestamp: RFC 3339, in the years 1 to 9999 (the `*_range` constraints).
fn timestamp(description: &str) -> Value {
    json!({
        "type": "string",
        "format": "date-time",
        "pattern": "^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$(?!\\n)",
        "description": description,
        "$comment": "An offset that moves the time across year 1 or year 9999 in UTC is refused by the database but not by this pattern.",
    })
}

fn identifier(constraint: &str, description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max_length_of(constraint),
        "pattern": portable_regex(regex_of(constraint)),
        "description": description,
    })
}

/// Both schemas, as `$defs` of one document: `#/$defs/site`, `#/$defs/user`.
pub(crate) fn render() -> String {
    let site = json!({
        "type": "object",
        "description": "A row of sites, as the database stores it (the import and the admin panel lower-case a domain for you).",
        "additionalProperties": false,
        "required": ["site_id", "domain"],
        "properties": {
            "site_id": identifier("sites_site_id_format", "1–200 characters, no control or invisible character, no white space at either end"),
            "domain": {
                "type": "string",
                "maxLength": max_length_of("sites_domain_hostname"),
                // The database compares case-insensitively and also requires lower case.
                "pattern": portable_regex(regex_of("sites_domain_hostname")),
                "description": "A host name in lower case, e.g. shop.example.co.uk",
            },
            "ai_script_id": nullable(one_line("sites_ai_script_id_one_line")),
            "ai_prompt": nullable(text()),
            "brand_name": nullable(one_line("sites_brand_name_one_line")),
            "language": {"type": "string", "pattern": portable_regex(regex_of("sites_language_tag")), "default": "en", "description": "A BCP 47 tag such as en, de or pt-BR"},
            "hubspot_pipeline": nullable(one_line("sites_hubspot_pipeline_one_line")),
            "hubspot_stage": nullable(one_line("sites_hubspot_stage_one_line")),
            "created_at": timestamp("When the site was added (the database sets it when absent)"),
        },
        // sites_hubspot_stage_needs_pipeline
        "if": {"required": ["hubspot_stage"], "properties": {"hubspot_stage": {"type": "string"}}},
        "then": {"required": ["hubspot_pipeline"], "properties": {"hubspot_pipeline": {"type": "string"}}},
    });
    let user = json!({
        "type": "object",
        "description": "A row of users, as the database stores it.",
        "$comment": "users_seen_order (first_seen <= last_seen) compares two fields, which JSON Schema cannot: the database refuses such a row.",
        "additionalProperties": false,
        "required": ["user_id"],
        "properties": {
            "user_id": identifier("users_user_id_format", "The Zitadel sub: 1–200 characters, no control or invisible character, no white space at either end"),
            "email": {
                "type": ["string", "null"],
                "maxLength": max_length_of("users_email_format"),
                "pattern": portable_regex(regex_of("users_email_format")),
            },
            "first_seen": timestamp("The first sign-in (the database sets it when absent)"),
            "last_seen": timestamp("The latest sign-in (the database sets it when absent)"),
        },
    });
    let document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://aicabinet.invalid/cabinet-db/schema.json",
        "title": format!("cabinet-db {}: a site and a user", env!("CARGO_PKG_VERSION")),
        "$defs": {"site": site, "user": user},
    });
    format!("{}\n", serde_json::to_string_pretty(&document).expect("static JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_lengths_come_from_the_constraints() {
        assert_eq!(max_length_of("sites_site_id_format"), Some(200));
        assert_eq!(max_length_of("users_email_format"), Some(320));
        assert_eq!(regex_of("sites_language_tag"), "^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$");
        assert!(regex_of("sites_domain_hostname").starts_with("^([a-z0-9]"));
        assert_eq!(portable_regex(r"[\u0009\U000110bd-\U000110cd]"), "[\\u0009\u{110bd}-\u{110cd}]");
        assert_eq!(portable_regex("^a$"), "^a$(?!\\n)");
    }

    #[test]
    fn every_column_has_a_property() {
        let document: Value = serde_json::from_str(&render()).unwrap();
        for (name, table) in [("site", schema::SITES), ("user", schema::USERS)] {
            let properties = document["$defs"][name]["properties"].as_object().unwrap();
            let mut columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
            columns.sort_unstable();
            assert_eq!(properties.keys().map(String::as_str).collect::<Vec<_>>(), columns, "{name}");
        }
    }
}
