//! Sites: the library API the CLI uses, for other Rust services too. Every function takes
//! `impl PgExecutor` — a pool, a connection or a transaction: the caller owns transactions.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};

use crate::{
    data::{DataError, Page, into_page},
    history::{self, Actor},
    models::change::VersionConflict,
    models::{
        Domain, LanguageTag, Site, SiteId,
        values::{FieldError, check_one_line, check_text},
    },
};

/// The columns of `Site`, in order; a macro so the lookup queries are `&'static str` built at
/// compile time (nothing is formatted on the hot path).
macro_rules! site_columns {
    () => {
        "site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage, created_at, \
         (SELECT coalesce(max(h.version), 0) FROM sites_history h WHERE h.site_id = sites.site_id) AS version"
    };
}
const COLUMNS: &str = site_columns!();

/// A site to create; `created_at` is set by the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSite {
    pub site_id: SiteId,
    pub domain: Domain,
    pub ai_script_id: Option<String>,
    pub ai_prompt: Option<String>,
    pub brand_name: Option<String>,
    pub language: LanguageTag,
    pub hubspot_pipeline: Option<String>,
    pub hubspot_stage: Option<String>,
}

/// The free-text fields, as (name, value) pairs, for the NUL check and the stage rule.
/// The free-text fields' rules: the prompt may hold any text PostgreSQL can store; the others
/// are one line (`sites_*_one_line`).
fn check_free_text(fields: &[(&'static str, Option<&str>)]) -> Result<(), FieldError> {
    for (name, value) in fields {
        match (*name, value) {
            (_, None) => {}
            ("ai_prompt", Some(value)) => check_text(name, value)?,
            (_, Some(value)) => check_one_line(name, value)?,
        }
    }
    Ok(())
}

impl NewSite {
    /// Checks the rules that span fields and the free text (the typed fields are valid by
    /// construction).
    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        check_free_text(&[
            ("ai_script_id", self.ai_script_id.as_deref()),
            ("ai_prompt", self.ai_prompt.as_deref()),
            ("brand_name", self.brand_name.as_deref()),
            ("hubspot_pipeline", self.hubspot_pipeline.as_deref()),
            ("hubspot_stage", self.hubspot_stage.as_deref()),
        ])?;
        if let (Some(stage), None) = (&self.hubspot_stage, &self.hubspot_pipeline) {
            return Err(FieldError::new(
                "hubspot_stage",
                stage,
                "is set but hubspot_pipeline is not: a stage belongs to a pipeline",
            ));
        }
        Ok(())
    }
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears an optional one.
/// `site_id` and `created_at` cannot change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePatch {
    pub domain: Option<Domain>,
    pub ai_script_id: Option<Option<String>>,
    pub ai_prompt: Option<Option<String>>,
    pub brand_name: Option<Option<String>>,
    pub language: Option<LanguageTag>,
    pub hubspot_pipeline: Option<Option<String>>,
    pub hubspot_stage: Option<Option<String>>,
}

impl SitePatch {
    pub(crate) fn is_empty(&self) -> bool {
        *self == SitePatch::default()
    }

    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        let inner = |v: &Option<Option<String>>| v.as_ref().and_then(|v| v.as_deref()).map(str::to_owned);
        let (a, b, c, d, e) = (
            inner(&self.ai_script_id),
            inner(&self.ai_prompt),
            inner(&self.brand_name),
            inner(&self.hubspot_pipeline),
            inner(&self.hubspot_stage),
        );
        check_free_text(&[
            ("ai_script_id", a.as_deref()),
            ("ai_prompt", b.as_deref()),
            ("brand_name", c.as_deref()),
            ("hubspot_pipeline", d.as_deref()),
            ("hubspot_stage", e.as_deref()),
        ])
    }
}

/// Filters for `list`.
#[derive(Debug, Clone, Default)]
pub struct SiteFilter {
    pub language: Option<LanguageTag>,
    /// Sites whose domain contains this text (case-insensitive).
    pub domain_contains: Option<String>,
    /// Sites whose id, domain or brand name contains this text (case-insensitive).
    pub text_contains: Option<String>,
}

pub async fn get(executor: impl PgExecutor<'_>, site_id: &SiteId) -> Result<Option<Site>, DataError> {
    const SQL: &str = concat!("SELECT ", site_columns!(), " FROM sites WHERE site_id = $1");
    Ok(sqlx::query_as(SQL).bind(site_id.as_str()).fetch_optional(executor).await?)
}

/// By domain, in any case (domains are stored lower-case; the unique index serves this).
pub async fn get_by_domain(executor: impl PgExecutor<'_>, domain: &str) -> Result<Option<Site>, DataError> {
    let domain = Domain::parse(domain)?;
    const SQL: &str = concat!("SELECT ", site_columns!(), " FROM sites WHERE domain = $1");
    Ok(sqlx::query_as(SQL).bind(domain.as_str()).fetch_optional(executor).await?)
}

/// Sites ordered by `site_id`, one page at a time (keyset: stable under concurrent inserts).
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &SiteFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<Site>, DataError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sites
          WHERE ($1::text IS NULL OR site_id > $1)
            AND ($2::text IS NULL OR language = $2)
            AND ($3::text IS NULL OR strpos(domain, lower($3)) > 0)
            AND ($5::text IS NULL OR strpos(lower(site_id), lower($5)) > 0 OR strpos(domain, lower($5)) > 0
                 OR strpos(lower(coalesce(brand_name, '')), lower($5)) > 0)
          ORDER BY site_id
          LIMIT $4"
    );
    let rows: Vec<Site> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(filter.language.as_ref().map(LanguageTag::as_str))
        .bind(filter.domain_contains.as_deref())
        .bind(crate::data::check_page_size(limit)? + 1)
        .bind(filter.text_contains.as_deref())
        .fetch_all(executor)
        .await?;
    Ok(into_page(rows, limit, |s| s.site_id.clone()))
}

/// The languages the sites use, sorted (the panel's filter offers these).
pub(crate) async fn languages(executor: impl PgExecutor<'_>) -> Result<Vec<String>, DataError> {
    Ok(sqlx::query_scalar("SELECT DISTINCT language FROM sites ORDER BY 1").fetch_all(executor).await?)
}

/// Creates a site, recorded as its next version by `actor` (else the session's actor or role).
pub async fn create(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site: &NewSite,
) -> Result<Site, DataError> {
    site.validate()?;
    let mut tx = history::begin_as(conn, actor).await?;
    sqlx::query(
        "INSERT INTO sites (site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
        .bind(site.site_id.as_str())
        .bind(site.domain.as_str())
        .bind(&site.ai_script_id)
        .bind(&site.ai_prompt)
        .bind(&site.brand_name)
        .bind(site.language.as_str())
        .bind(&site.hubspot_pipeline)
        .bind(&site.hubspot_stage)
        .execute(&mut *tx)
        .await?;
    // Read after the statement: its trigger has recorded the new version by now.
    let created = get(&mut *tx, &site.site_id).await?.ok_or_else(|| DataError::NotFound {
        what: format!("site {} right after creating it", site.site_id.as_str()),
    })?;
    tx.commit().await?;
    Ok(created)
}

/// Changes only the fields the patch names; `Ok(None)` when there is no such site. With
/// `expect_version`, refuses (`DataError::Conflict`, nothing written) when the site is no
/// longer at that version: two editors never silently overwrite each other.
pub async fn update(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site_id: &SiteId,
    patch: &SitePatch,
    expect_version: Option<i64>,
) -> Result<Option<Site>, DataError> {
    update_marked(conn, actor, site_id, patch, expect_version, None).await
}

/// [`update`], with the history's mark for what the write builds on (a merge names the
/// version the edit was made on).
pub(crate) async fn update_marked(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site_id: &SiteId,
    patch: &SitePatch,
    expect_version: Option<i64>,
    mark: Option<history::Mark>,
) -> Result<Option<Site>, DataError> {
    patch.validate()?;
    let mut tx = history::begin_as(conn, actor).await?;
    if let Some(mark) = mark {
        mark.set(&mut tx).await?;
    }
    if let Some(expected) = expect_version {
        // The row lock first (a concurrent writer finishes before we look), then the version
        // in a statement of its own, so it sees that writer's committed change.
        let exists = sqlx::query("SELECT 1 FROM sites WHERE site_id = $1 FOR UPDATE")
            .bind(site_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let current = history::site_version(&mut *tx, site_id).await?;
        if current != expected {
            let latest = history::latest_site_change(&mut *tx, site_id).await?;
            return Err(DataError::Conflict(Box::new(VersionConflict {
                site_id: site_id.as_str().to_owned(),
                expected,
                current,
                latest,
            })));
        }
    }
    // One static statement: each field comes with a flag saying whether to set it, so no SQL
    // is assembled from the patch.
    const SQL: &str = "UPDATE sites SET
            domain = CASE WHEN $2 THEN $3 ELSE domain END,
            ai_script_id = CASE WHEN $4 THEN $5 ELSE ai_script_id END,
            ai_prompt = CASE WHEN $6 THEN $7 ELSE ai_prompt END,
            brand_name = CASE WHEN $8 THEN $9 ELSE brand_name END,
            language = CASE WHEN $10 THEN $11 ELSE language END,
            hubspot_pipeline = CASE WHEN $12 THEN $13 ELSE hubspot_pipeline END,
            hubspot_stage = CASE WHEN $14 THEN $15 ELSE hubspot_stage END
          WHERE site_id = $1";
    let optional = |v: &Option<Option<String>>| (v.is_some(), v.clone().flatten());
    let (s_script, script) = optional(&patch.ai_script_id);
    let (s_prompt, prompt) = optional(&patch.ai_prompt);
    let (s_brand, brand) = optional(&patch.brand_name);
    let (s_pipeline, pipeline) = optional(&patch.hubspot_pipeline);
    let (s_stage, stage) = optional(&patch.hubspot_stage);
    let updated = sqlx::query(SQL)
        .bind(site_id.as_str())
        .bind(patch.domain.is_some())
        .bind(patch.domain.as_ref().map(Domain::as_str))
        .bind(s_script)
        .bind(script)
        .bind(s_prompt)
        .bind(prompt)
        .bind(s_brand)
        .bind(brand)
        .bind(patch.language.is_some())
        .bind(patch.language.as_ref().map(LanguageTag::as_str))
        .bind(s_pipeline)
        .bind(pipeline)
        .bind(s_stage)
        .bind(stage)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    let site = get(&mut *tx, site_id).await?;
    tx.commit().await?;
    Ok(site)
}

/// `true` when a site was deleted (its history stays: `sites restore` brings it back).
pub async fn delete(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site_id: &SiteId,
) -> Result<bool, DataError> {
    let mut tx = history::begin_as(conn, actor).await?;
    let result =
        sqlx::query("DELETE FROM sites WHERE site_id = $1").bind(site_id.as_str()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(result.rows_affected() == 1)
}
