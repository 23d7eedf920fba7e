use chrono::{DateTime, SecondsFormat, Utc};

use crate::models::{
    Domain, Email, LanguageTag, SiteId, UserId,
    values::{FieldError, check_text},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Sites,
    Users,
}

/// How a column's text is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SiteId,
    UserId,
    Domain,
    Language,
    Email,
    Text,
    Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Must be present and not NULL.
    pub required: bool,
    /// Filled in when absent or NULL (the schema's default); `now` for timestamps.
    pub default: Option<&'static str>,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, required: false, default: None }
}

const SITE_COLUMNS: &[Column] = &[
    Column { required: true, ..col("site_id", Kind::SiteId) },
    Column { required: true, ..col("domain", Kind::Domain) },
    col("ai_script_id", Kind::Text),
    col("ai_prompt", Kind::Text),
    col("brand_name", Kind::Text),
    Column { default: Some("en"), ..col("language", Kind::Language) },
    col("hubspot_pipeline", Kind::Text),
    col("hubspot_stage", Kind::Text),
    Column { default: Some("now"), ..col("created_at", Kind::Timestamp) },
];

const USER_COLUMNS: &[Column] = &[
    Column { required: true, ..col("user_id", Kind::UserId) },
    col("email", Kind::Email),
    Column { default: Some("now"), ..col("first_seen", Kind::Timestamp) },
    Column { default: Some("now"), ..col("last_seen", Kind::Timestamp) },
];

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Sites => "sites",
            Table::Users => "users",
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Sites => SITE_COLUMNS,
            Table::Users => USER_COLUMNS,
        }
    }

    pub fn key(self) -> &'static str {
        self.columns()[0].name
    }

    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// Columns an upsert overwrites: all but the key and `created_at`, which never changes.
    pub fn updatable(self, present: &[&'static Column]) -> Vec<&'static str> {
        present.iter().map(|c| c.name).filter(|n| *n != self.key() && *n != "created_at").collect()
    }

    /// Rules across columns of one row, on normalised values in `present` order.
    pub fn check_row(self, present: &[&'static Column], values: &[Option<String>]) -> Result<(), FieldError> {
        let get = |name: &str| present.iter().position(|c| c.name == name).and_then(|i| values[i].as_deref());
        match self {
            Table::Sites => {
                if let (Some(stage), None) = (get("hubspot_stage"), get("hubspot_pipeline")) {
                    return Err(FieldError::new(
                        "hubspot_stage",
                        stage,
                        "is set but hubspot_pipeline is not: a stage belongs to a pipeline",
                    ));
                }
            }
            Table::Users => {
                if let (Some(first), Some(last)) = (get("first_seen"), get("last_seen"))
                    && first > last
                {
                    return Err(FieldError::new(
                        "first_seen",
                        first,
                        format!(
                            "is later than last_seen ({last}); first_seen must not be later than last_seen"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks and normalises one value; `now` is what a defaulted timestamp becomes.
pub fn normalize(column: &Column, value: Option<&str>, now: &str) -> Result<Option<String>, FieldError> {
    let value = match (value, column.default) {
        (None, Some("now")) => return Ok(Some(now.to_owned())),
        (None, Some(default)) => return Ok(Some(default.to_owned())),
        (None, None) if column.required => {
            return Err(FieldError::new(column.name, "", "is required; give a value"));
        }
        (None, None) => return Ok(None),
        (Some(v), _) => v,
    };
    check_text(column.name, value)?;
    let normalized = match column.kind {
        Kind::SiteId => SiteId::parse(value)?.into_inner(),
        Kind::UserId => UserId::parse(value)?.into_inner(),
        Kind::Domain => Domain::parse(value)?.into_inner(),
        Kind::Language => LanguageTag::parse(value)?.into_inner(),
        Kind::Email => Email::parse(value)?.into_inner(),
        Kind::Text => value.to_owned(),
        Kind::Timestamp => format_timestamp(parse_timestamp(value).ok_or_else(|| {
            FieldError::new(
                column.name,
                value,
                "is not a timestamp with a time zone; write RFC 3339, e.g. 2026-01-15T09:00:00Z or 2026-01-15 09:00:00.123456+00",
            )
        })?),
    };
    Ok(Some(normalized))
}

/// RFC 3339, or PostgreSQL's own output (`2026-01-15 09:00:00.123456+00`).
pub fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(value, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// UTC with microseconds: exactly what PostgreSQL keeps.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_both_spellings() {
        let a = parse_timestamp("2026-01-15T09:00:00.123456Z").unwrap();
        let b = parse_timestamp("2026-01-15 10:00:00.123456+01").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_timestamp(a), "2026-01-15T09:00:00.123456Z");
        assert!(parse_timestamp("2026-01-15 09:00").is_none(), "a zone is required");
    }
}
