use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row, postgres::PgRow};

use super::timestamps;

/// One client site's configuration: a row of `sites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub site_id: String,
    pub domain: String,
    pub ai_script_id: Option<String>,
    pub ai_prompt: Option<String>,
    pub brand_name: Option<String>,
    pub language: String,
    pub(crate) hubspot_pipeline: Option<String>,
    pub(crate) hubspot_stage: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Its newest version in `sites_history` (not a column: every read carries it, so an
    /// update can say which version it changes, `--expect-version`).
    pub(crate) version: i64,
}

impl Site {
    /// The struct's fields in table order; a test holds this equal to the schema model.
    pub(crate) const COLUMNS: [&'static str; 9] = [
        "site_id",
        "domain",
        "ai_script_id",
        "ai_prompt",
        "brand_name",
        "language",
        "hubspot_pipeline",
        "hubspot_stage",
        "created_at",
    ];
}

impl<'r> FromRow<'r, PgRow> for Site {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let site_id: String = row.try_get("site_id")?;
        Ok(Site {
            created_at: timestamps::read(row, "sites", "site_id", &site_id, "created_at")?,
            site_id,
            domain: row.try_get("domain")?,
            ai_script_id: row.try_get("ai_script_id")?,
            ai_prompt: row.try_get("ai_prompt")?,
            brand_name: row.try_get("brand_name")?,
            language: row.try_get("language")?,
            hubspot_pipeline: row.try_get("hubspot_pipeline")?,
            hubspot_stage: row.try_get("hubspot_stage")?,
            version: row.try_get("version")?,
        })
    }
}
