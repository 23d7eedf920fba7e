//! The columns an import may carry, and how each value is checked and normalised.
//!
//! A value can be given, given as NULL, or absent (a JSON key left out, a CSV column the
//! header does not name). Absent means "leave it": an existing row keeps what it has, a new
//! row gets the column's default. NULL in a column that cannot be NULL but has a default
//! (`language`, the timestamps) means the same, so an empty CSV cell never overwrites a
//! stored time with "now".

use crate::models::{
    Domain, Email, LanguageTag, SiteId, UserId,
    schema::{self, TableDef},
    timestamps,
    values::{FieldError, check_one_line, check_text},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Table {
    Sites,
    Users,
}

/// How a column's text is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SiteId,
    UserId,
    Domain,
    Language,
    Email,
    /// Free text (the prompt): anything PostgreSQL can store.
    Text,
    /// One line (`sites_*_one_line`): no line break, tab or other control character.
    OneLine,
    Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Cannot be NULL and has no default: a new row must give it.
    pub(crate) required: bool,
    /// What a new row gets when the value is not given (`None`: NULL, or `now` for times).
    pub(crate) default: Option<Default>,
}

/// A column's default for new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Default {
    /// This text.
    Text(&'static str),
    /// The import transaction's start time, as `now()` gives it.
    Now,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, required: false, default: None }
}

const SITE_COLUMNS: &[Column] = &[
    Column { required: true, ..col("site_id", Kind::SiteId) },
    Column { required: true, ..col("domain", Kind::Domain) },
    col("ai_script_id", Kind::OneLine),
    col("ai_prompt", Kind::Text),
    col("brand_name", Kind::OneLine),
    Column { default: Some(Default::Text("en")), ..col("language", Kind::Language) },
    col("hubspot_pipeline", Kind::OneLine),
    col("hubspot_stage", Kind::OneLine),
    Column { default: Some(Default::Now), ..col("created_at", Kind::Timestamp) },
];

const USER_COLUMNS: &[Column] = &[
    Column { required: true, ..col("user_id", Kind::UserId) },
    col("email", Kind::Email),
    Column { default: Some(Default::Now), ..col("first_seen", Kind::Timestamp) },
    Column { default: Some(Default::Now), ..col("last_seen", Kind::Timestamp) },
];

/// One value as a file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    /// The key or column is not in the file (for this line).
    Absent,
    /// JSON `null`, or an unquoted empty CSV field.
    Null,
    Value(String),
}

/// A value ready for the database, and whether the file gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalized {
    /// What a new row stores: the value, the default, or NULL.
    pub(crate) value: Option<String>,
    /// The file gave it: an existing row takes it (otherwise it keeps its own).
    pub(crate) given: bool,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Sites => "sites",
            Table::Users => "users",
        }
    }

    pub(crate) fn columns(self) -> &'static [Column] {
        match self {
            Table::Sites => SITE_COLUMNS,
            Table::Users => USER_COLUMNS,
        }
    }

    /// The model of this table.
    pub(crate) fn def(self) -> &'static TableDef {
        schema::table(self.name()).expect("import tables are in the models")
    }

    pub(crate) fn key(self) -> &'static str {
        self.columns()[0].name
    }

    #[cfg(test)]
    pub(crate) fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The column an existing row never takes from a file (`created_at`).
    pub(crate) fn is_immutable(self, name: &str) -> bool {
        name == "created_at"
    }

    /// Rules across columns of one row, on normalised values in column order. Only pairs whose
    /// values are both known are checked: for an existing row a value not given is the
    /// stored one, which the database checks when the rows are merged.
    pub(crate) fn check_row(self, row: &[Normalized], all_known: bool) -> Result<(), FieldError> {
        let get = |name: &str| {
            let index = self.columns().iter().position(|c| c.name == name)?;
            let cell = &row[index];
            (cell.given || all_known).then_some(cell.value.as_deref())
        };
        match self {
            Table::Sites => {
                if let (Some(Some(stage)), Some(None)) = (get("hubspot_stage"), get("hubspot_pipeline")) {
                    return Err(FieldError::new(
                        "hubspot_stage",
                        stage,
                        "is set but hubspot_pipeline is not: a stage belongs to a pipeline",
                    ));
                }
            }
            Table::Users => {
                if let (Some(Some(first)), Some(Some(last))) = (get("first_seen"), get("last_seen"))
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

/// Checks and normalises one value; `now` is what a defaulted timestamp becomes (the import
/// transaction's `now()`, formatted).
pub(crate) fn normalize(column: &Column, cell: &Cell, now: &str) -> Result<Normalized, FieldError> {
    let not_given = |column: &Column| Normalized {
        value: match column.default {
            Some(Default::Text(text)) => Some(text.to_owned()),
            Some(Default::Now) => Some(now.to_owned()),
            None => None,
        },
        given: false,
    };
    let value = match cell {
        Cell::Absent if column.kind == Kind::SiteId || column.kind == Kind::UserId => {
            return Err(FieldError::new(column.name, "", "is required: every row names its key"));
        }
        Cell::Absent => return Ok(not_given(column)),
        Cell::Null if column.required => {
            return Err(FieldError::new(
                column.name,
                "",
                "cannot be empty; give a value (or leave the column out to keep the stored one)",
            ));
        }
        // NOT NULL with a default: an empty value means "not given".
        Cell::Null if column.default.is_some() => return Ok(not_given(column)),
        Cell::Null => return Ok(Normalized { value: None, given: true }),
        Cell::Value(value) => value,
    };
    check_text(column.name, value)?;
    let normalized = match column.kind {
        Kind::SiteId => SiteId::parse(value)?.into_inner(),
        Kind::UserId => UserId::parse(value)?.into_inner(),
        Kind::Domain => Domain::parse(value)?.into_inner(),
        Kind::Language => LanguageTag::parse(value)?.into_inner(),
        Kind::Email => Email::parse(value)?.into_inner(),
        Kind::Text => value.clone(),
        Kind::OneLine => {
            check_one_line(column.name, value)?;
            value.clone()
        }
        Kind::Timestamp => timestamps::format(
            timestamps::parse_in_range(value)
                .map_err(|reason| FieldError::new(column.name, value, reason))?,
        ),
    };
    Ok(Normalized { value: Some(normalized), given: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-27T10:00:00.000000Z";

    fn norm(table: Table, name: &str, cell: Cell) -> Result<Normalized, FieldError> {
        normalize(table.column(name).unwrap(), &cell, NOW)
    }

    #[test]
    fn absent_values_are_not_given_and_take_defaults_for_new_rows() {
        let language = norm(Table::Sites, "language", Cell::Absent).unwrap();
        assert_eq!(language, Normalized { value: Some("en".into()), given: false });
        let prompt = norm(Table::Sites, "ai_prompt", Cell::Absent).unwrap();
        assert_eq!(prompt, Normalized { value: None, given: false });
        let seen = norm(Table::Users, "first_seen", Cell::Null).unwrap();
        assert_eq!(
            seen,
            Normalized { value: Some(NOW.into()), given: false },
            "NULL in NOT NULL = not given"
        );
        assert!(norm(Table::Sites, "site_id", Cell::Absent).is_err());
        assert!(norm(Table::Sites, "domain", Cell::Null).is_err());
        assert!(!norm(Table::Sites, "domain", Cell::Absent).unwrap().given);
    }

    #[test]
    fn the_columns_agree_with_the_models() {
        for table in [Table::Sites, Table::Users] {
            let model = table.def();
            assert_eq!(table.columns().len(), model.columns.len());
            for (column, def) in table.columns().iter().zip(model.columns) {
                assert_eq!(column.name, def.name);
                assert_eq!(column.required, def.not_null && def.default.is_none(), "{}", def.name);
                let default = column.default.map(|d| match d {
                    Default::Text(text) => format!("'{text}'"),
                    Default::Now => "now()".to_owned(),
                });
                assert_eq!(default.as_deref(), def.default, "{}", def.name);
            }
        }
    }

    #[test]
    fn explicit_null_clears_a_nullable_column() {
        assert_eq!(
            norm(Table::Sites, "brand_name", Cell::Null).unwrap(),
            Normalized { value: None, given: true }
        );
    }

    #[test]
    fn cross_column_rules_need_both_values_known() {
        let row = |stage: Option<&str>, pipeline_given: bool| {
            let mut row: Vec<Normalized> =
                Table::Sites.columns().iter().map(|_| Normalized { value: None, given: false }).collect();
            row[7] = Normalized { value: stage.map(str::to_owned), given: true };
            row[6].given = pipeline_given;
            row
        };
        assert!(Table::Sites.check_row(&row(Some("s1"), true), false).is_err());
        assert!(Table::Sites.check_row(&row(Some("s1"), false), false).is_ok(), "the stored pipeline counts");
        assert!(Table::Sites.check_row(&row(Some("s1"), false), true).is_err(), "a new row has none");
    }
}
