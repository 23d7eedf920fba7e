//! How a failed command is told: the error, what caused it, the hint, and for imports the
//! list of problem rows — as text on stderr, or as one JSON object on stdout with `--json`.
//!
//! A PostgreSQL error is shown once, by its message, detail and hint: sqlx's own `Display`
//! wraps it twice and appends the server's C source line ("at line 3655"), which means
//! nothing to the person reading it.

use serde::Serialize;
use sqlx::postgres::PgDatabaseError;

use crate::transfer::problems::{ImportError, RowError};

/// A failure, ready to print.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureReport {
    pub error: String,
    /// What led to it, outermost first, each said once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    /// How to fix it, when the failure says (PostgreSQL's hint, or ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For imports: every problem row found (line, column, value, message).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<RowError>,
}

impl FailureReport {
    pub fn from_error(error: &anyhow::Error) -> FailureReport {
        let mut report = FailureReport { error: error.to_string(), ..FailureReport::default() };
        let mut said = vec![report.error.clone()];
        for cause in error.chain().skip(1) {
            if let Some(ImportError::Invalid { errors, .. }) = cause.downcast_ref::<ImportError>() {
                report.problems = errors.clone();
                report.hint.get_or_insert_with(|| "fix the rows named and run the import again".to_owned());
            }
            if let Some(sqlx::Error::Database(db)) = cause.downcast_ref::<sqlx::Error>() {
                let pg = db.try_downcast_ref::<PgDatabaseError>();
                if let Some(hint) = pg.and_then(PgDatabaseError::hint) {
                    report.hint.get_or_insert_with(|| hint.to_owned());
                }
                let text = match pg.and_then(PgDatabaseError::detail) {
                    Some(detail) => format!("{} ({detail})", db.message()),
                    None => db.message().to_owned(),
                };
                if !said.iter().any(|s| s.contains(&text)) {
                    report.causes.push(text);
                }
                // What follows in the chain is the same server error again.
                break;
            }
            let text = cause.to_string();
            if !said.iter().any(|s| s.contains(&text)) {
                said.push(text.clone());
                report.causes.push(text);
            }
        }
        if let Some(ImportError::Invalid { errors, .. }) = error.downcast_ref::<ImportError>() {
            report.problems = errors.clone();
        }
        report
    }

    /// The text form, for stderr.
    pub fn to_text(&self) -> String {
        let mut text = format!("error: {}\n", self.error);
        for cause in &self.causes {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
        if let Some(hint) = &self.hint
            && !self.error.contains(hint.as_str())
        {
            text.push_str(&format!("  hint: {hint}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_said_are_not_repeated() {
        let inner = anyhow::anyhow!("disk full");
        let error = inner.context("cannot write out.csv").context("exporting users: disk full");
        let report = FailureReport::from_error(&error);
        assert_eq!(report.error, "exporting users: disk full");
        assert_eq!(report.causes, vec!["cannot write out.csv"]);
        assert!(report.to_text().starts_with("error: exporting users: disk full\n"));
    }
}
