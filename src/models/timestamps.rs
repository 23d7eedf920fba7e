//! Timestamps: the range the schema accepts, parsing and printing them, and reading them from
//! the database without trusting what is stored.
//!
//! PostgreSQL's `timestamptz` also holds `infinity`, `-infinity` and years up to 294276 AD,
//! which chrono cannot represent (sqlx's own decoder panics on them). The schema refuses them
//! (`*_range` constraints, migration 0002), but a database restored from elsewhere, or one
//! whose constraint a superuser dropped, may still hold one: readers here turn it into an
//! error naming the row and column instead of a crash.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{
    Decode, Postgres, Row, Type,
    error::BoxDynError,
    postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef},
};

/// What a violation of a `*_range` constraint means.
pub(crate) const RANGE_MEANING: &str =
    "must be a real point in time between the years 1 and 9999 (not infinity)";

/// Whether a time lies in the schema's range (years 1 to 9999, UTC: what RFC 3339's
/// four-digit years can write).
pub(crate) fn in_range(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&t.year())
}

/// RFC 3339, or PostgreSQL's own output (`2026-01-15 09:00:00.123456+00`). A leap second
/// (`…:59:60`) is read as PostgreSQL reads it: the first instant of the next minute.
pub(crate) fn parse(value: &str) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value).ok().or_else(|| {
        ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
            .into_iter()
            .find_map(|format| DateTime::parse_from_str(value, format).ok())
    })?;
    Some(without_leap_second(parsed.with_timezone(&Utc)))
}

/// chrono keeps a leap second as second 59 with 1–2 s of nanoseconds; PostgreSQL (and so every
/// reader of what we store) has no leap seconds and rolls over to the next minute.
fn without_leap_second(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    match t.nanosecond().checked_sub(1_000_000_000) {
        Some(rest) => t.with_nanosecond(rest).map_or(t, |t| t + chrono::Duration::seconds(1)),
        None => t,
    }
}

/// Parses and range-checks a time given by a person: the reason when it is refused.
pub fn parse_in_range(value: &str) -> Result<DateTime<Utc>, String> {
    let t = parse(value).ok_or_else(|| {
        "is not a timestamp with a time zone; write RFC 3339, e.g. 2026-01-15T09:00:00Z or 2026-01-15 09:00:00.123456+00"
            .to_owned()
    })?;
    if in_range(t) { Ok(t) } else { Err(RANGE_MEANING.to_owned()) }
}

/// UTC with microseconds: exactly what PostgreSQL keeps.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamptz` read without panicking: `infinity`, `-infinity` and times chrono cannot
/// represent are decode errors that say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked(pub DateTime<Utc>);

/// Why a stored timestamp cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unrepresentable {
    #[error("holds {0}")]
    Infinite(&'static str),
    #[error("holds a time outside the years cabinet-db can represent ({0})")]
    OutOfRange(String),
}

impl Type<Postgres> for Checked {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Checked {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let bytes: [u8; 8] = value.as_bytes()?.try_into()?;
                let micros = i64::from_be_bytes(bytes);
                match micros {
                    i64::MAX => Err(Box::new(Unrepresentable::Infinite("infinity"))),
                    i64::MIN => Err(Box::new(Unrepresentable::Infinite("-infinity"))),
                    _ => micros
                        .checked_add(POSTGRES_EPOCH_MICROS)
                        .and_then(DateTime::from_timestamp_micros)
                        .map(Checked)
                        .ok_or_else(|| {
                            Box::new(Unrepresentable::OutOfRange(format!("{micros} µs from 2000-01-01")))
                                as BoxDynError
                        }),
                }
            }
            PgValueFormat::Text => {
                let text = value.as_str()?;
                match text {
                    "infinity" | "-infinity" => {
                        Err(Box::new(Unrepresentable::Infinite(if text.starts_with('-') {
                            "-infinity"
                        } else {
                            "infinity"
                        })))
                    }
                    _ => parse(text)
                        .map(Checked)
                        .ok_or_else(|| Box::new(Unrepresentable::OutOfRange(text.to_owned())) as BoxDynError),
                }
            }
        }
    }
}

/// A value in a row that cannot be read, said so that it can be found and fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{table} row {key_column} = {key:?}: column {column} {problem}; set a real time (UPDATE {table} SET {column} = … WHERE {key_column} = …), which the schema's range constraint requires of new rows anyway"
)]
pub struct UnreadableValue {
    pub(crate) table: &'static str,
    pub(crate) key_column: &'static str,
    pub(crate) key: String,
    pub(crate) column: &'static str,
    pub(crate) problem: String,
}

/// Reads a timestamp column of a row whose key is already known; an unreadable value becomes
/// [`UnreadableValue`] (inside `sqlx::Error::Decode`).
pub(crate) fn read(
    row: &PgRow,
    table: &'static str,
    key_column: &'static str,
    key: &str,
    column: &'static str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    match row.try_get::<Checked, _>(column) {
        Ok(Checked(t)) => Ok(t),
        Err(sqlx::Error::ColumnDecode { source, .. }) => {
            let problem = match source.downcast::<Unrepresentable>() {
                Ok(reason) => reason.to_string(),
                Err(other) => format!("cannot be read: {other}"),
            };
            Err(sqlx::Error::Decode(Box::new(UnreadableValue {
                table,
                key_column,
                key: key.to_owned(),
                column,
                problem,
            })))
        }
        Err(other) => Err(other),
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_second_is_the_next_minute_as_postgresql_reads_it() {
        let at = |text: &str| parse(text).map(format);
        assert_eq!(at("2016-12-31T23:59:60Z").as_deref(), Some("2017-01-01T00:00:00.000000Z"));
        assert_eq!(at("2026-06-30 12:34:60.25+02").as_deref(), Some("2026-06-30T10:35:00.250000Z"));
        assert_eq!(at("2026-06-30T12:34:59.999999Z").as_deref(), Some("2026-06-30T12:34:59.999999Z"));
        assert_eq!(parse("2026-06-30T12:34:61Z"), None);
    }

    #[test]
    fn timestamps_in_both_spellings() {
        let a = parse("2026-01-15T09:00:00.123456Z").unwrap();
        let b = parse("2026-01-15 10:00:00.123456+01").unwrap();
        assert_eq!(a, b);
        assert_eq!(format(a), "2026-01-15T09:00:00.123456Z");
        assert!(parse("2026-01-15 09:00").is_none(), "a zone is required");
    }

    #[test]
    fn the_range_is_years_1_to_9999() {
        assert!(parse_in_range("0001-01-01T00:00:00Z").is_ok());
        assert!(parse_in_range("9999-12-31T23:59:59.999999Z").is_ok());
        assert!(parse_in_range("0000-12-31T23:59:59Z").unwrap_err().contains("between the years 1 and 9999"));
        assert!(parse_in_range("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
