//! The change history as the library reads it, and who is writing.
//!
//! PostgreSQL writes the history itself (`models::history`); here we name the actor for our
//! own writes and read versions and changes back. The actor is `cabinet.actor`, set for a
//! session (the CLI: `--actor`, default `$USER@host`) or for one transaction (the library's
//! `actor` parameters); without it the history names the session's role.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};

use crate::{
    data::DataError,
    models::{
        FieldError, SiteId, UserId,
        change::{SiteChange, UserChange, VersionConflict},
    },
};

/// Longer actors are refused (an e-mail address or `user@host` fits easily).
pub(crate) const MAX_ACTOR_CHARS: usize = 200;

/// Who makes a change, as the history records it: e.g. `alice@example.com`, `deploy@ci`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor(String);

impl Actor {
    /// 1–200 characters, no control or invisible format character (it is printed to
    /// terminals and shown in the admin panel).
    pub fn new(name: &str) -> Result<Actor, FieldError> {
        let bad = name.trim().is_empty()
            || name.chars().count() > MAX_ACTOR_CHARS
            || name.chars().any(crate::models::characters::is_invisible_or_control);
        if bad {
            return Err(FieldError::new(
                "actor",
                name,
                format!("an actor is 1-{MAX_ACTOR_CHARS} visible characters, e.g. alice@example.com"),
            ));
        }
        Ok(Actor(name.to_owned()))
    }

    /// The CLI's: the one given, else `$USER@hostname`.
    pub(crate) fn for_cli(given: Option<&str>) -> Result<Actor, FieldError> {
        if let Some(name) = given {
            return Actor::new(name);
        }
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.name))
            .unwrap_or_else(|| "unknown".to_owned());
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned());
        Actor::new(&format!("{user}@{host}"))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the actor for the rest of this session (`local = false`) or transaction.
pub async fn set_actor(conn: &mut PgConnection, actor: &Actor, local: bool) -> Result<(), DataError> {
    sqlx::query("SELECT set_config('cabinet.actor', $1, $2)")
        .bind(actor.as_str())
        .bind(local)
        .execute(conn)
        .await?;
    Ok(())
}

/// A transaction (a savepoint inside the caller's) whose writes the history names `actor`
/// (when given; else the session's actor or role).
pub(crate) async fn begin_as<'c>(
    conn: &'c mut PgConnection,
    actor: Option<&Actor>,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, DataError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    if let Some(actor) = actor {
        set_actor(&mut tx, actor, true).await?;
    }
    Ok(tx)
}

macro_rules! change_columns {
    () => {
        "site_id, version, operation, changed_at, actor, session_role, application_name, host(client_addr) AS client_addr, changed_fields, restores_version, merges_version, old_row, new_row"
    };
}

/// Every recorded change of a site, oldest first (also after it was deleted).
pub(crate) async fn site_history(
    executor: impl PgExecutor<'_>,
    site_id: &SiteId,
) -> Result<Vec<SiteChange>, DataError> {
    const SQL: &str =
        concat!("SELECT ", change_columns!(), " FROM sites_history WHERE site_id = $1 ORDER BY version");
    Ok(sqlx::query_as(SQL).bind(site_id.as_str()).fetch_all(executor).await?)
}

/// One version of a site.
pub(crate) async fn site_change(
    executor: impl PgExecutor<'_>,
    site_id: &SiteId,
    version: i64,
) -> Result<Option<SiteChange>, DataError> {
    const SQL: &str =
        concat!("SELECT ", change_columns!(), " FROM sites_history WHERE site_id = $1 AND version = $2");
    Ok(sqlx::query_as(SQL).bind(site_id.as_str()).bind(version).fetch_optional(executor).await?)
}

/// The newest recorded change of a site, if any.
pub(crate) async fn latest_site_change(
    executor: impl PgExecutor<'_>,
    site_id: &SiteId,
) -> Result<Option<SiteChange>, DataError> {
    const SQL: &str = concat!(
        "SELECT ",
        change_columns!(),
        " FROM sites_history WHERE site_id = $1 ORDER BY version DESC LIMIT 1"
    );
    Ok(sqlx::query_as(SQL).bind(site_id.as_str()).fetch_optional(executor).await?)
}

/// A site's current version: its newest recorded change (0 when nothing is recorded).
pub(crate) async fn site_version(executor: impl PgExecutor<'_>, site_id: &SiteId) -> Result<i64, DataError> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM sites_history WHERE site_id = $1")
        .bind(site_id.as_str())
        .fetch_one(executor)
        .await?)
}

/// The site as it was at a version: the row that version wrote (for a deletion, the row it
/// removed). `None` when there is no such version.
pub(crate) async fn site_at_version(
    executor: impl PgExecutor<'_>,
    site_id: &SiteId,
    version: i64,
) -> Result<Option<(SiteChange, serde_json::Value)>, DataError> {
    let Some(change) = site_change(executor, site_id, version).await? else { return Ok(None) };
    let row = change.new_row.clone().or_else(|| change.old_row.clone()).unwrap_or(serde_json::Value::Null);
    Ok(Some((change, row)))
}

/// Why a version cannot be put back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RevertError {
    #[error("site {site_id} has no version {version}; cabinet-db sites history {site_id} lists them")]
    NoSuchVersion { site_id: String, version: i64 },
    #[error(
        "version {version} of site {site_id} is its deletion: there is no row to put back; choose the version before it"
    )]
    VersionIsDeletion { site_id: String, version: i64 },
    #[error(
        "site {site_id} does not exist now; cabinet-db sites restore {site_id} brings a deleted site back"
    )]
    SiteGone { site_id: String },
    #[error(
        "site {site_id} exists; revert it to a version instead (cabinet-db sites revert {site_id} --to N)"
    )]
    SiteExists { site_id: String },
    #[error("site {site_id} has no recorded deletion to undo")]
    NeverDeleted { site_id: String },
    #[error(
        "version {version} of site {site_id} has the domain {domain}, which now belongs to site {owner}: give that site another domain first (cabinet-db sites set {owner} --domain …), then revert. Nothing was written"
    )]
    DomainTaken { site_id: String, version: i64, domain: String, owner: String },
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<sqlx::Error> for RevertError {
    fn from(error: sqlx::Error) -> Self {
        RevertError::Data(DataError::from(error))
    }
}

/// What a write builds on, when it is not simply the version before it: the one mark the
/// history trigger records (`cabinet.mark`, for this transaction only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A revert or restore: the row of version V, put back.
    Restores(i64),
    /// An edit made on version V, merged into the newer current version.
    Merges(i64),
}

impl Mark {
    /// Sets the mark for the rest of the transaction `tx`.
    pub(crate) async fn set(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let text = match self {
            Mark::Restores(version) => format!("restores:{version}"),
            Mark::Merges(version) => format!("merges:{version}"),
        };
        sqlx::query("SELECT set_config('cabinet.mark', $1, true)").bind(text).execute(&mut *tx).await?;
        Ok(())
    }
}

/// Puts version `to` of a site back, as an ordinary update recorded as a new version that
/// names the version it restores. Returns the new version number.
///
/// With `expect_version` (what the person saw when they confirmed), refuses with
/// `DataError::Conflict` when someone changed the site since: a revert never overwrites a
/// change its confirmation did not show.
pub(crate) async fn revert_site(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site_id: &SiteId,
    to: i64,
    expect_version: Option<i64>,
) -> Result<i64, RevertError> {
    let mut tx = begin_as(conn, actor).await?;
    let locked = sqlx::query("SELECT 1 FROM sites WHERE site_id = $1 FOR UPDATE")
        .bind(site_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        return Err(RevertError::SiteGone { site_id: site_id.as_str().to_owned() });
    }
    if let Some(expected) = expect_version {
        let current = site_version(&mut *tx, site_id).await?;
        if current != expected {
            let latest = latest_site_change(&mut *tx, site_id).await?;
            return Err(RevertError::Data(DataError::Conflict(Box::new(VersionConflict {
                site_id: site_id.as_str().to_owned(),
                expected,
                current,
                latest,
            }))));
        }
    }
    let Some((change, _)) = site_at_version(&mut *tx, site_id, to).await? else {
        return Err(RevertError::NoSuchVersion { site_id: site_id.as_str().to_owned(), version: to });
    };
    let Some(row) = change.new_row else {
        return Err(RevertError::VersionIsDeletion { site_id: site_id.as_str().to_owned(), version: to });
    };
    check_domain_free(&mut tx, site_id, to, &row).await?;
    Mark::Restores(to).set(&mut tx).await.map_err(DataError::from)?;
    // jsonb_populate_record reads the stored row back into the table's own row type: every
    // field with its column's type, nothing assembled from the data.
    sqlx::query(
        "UPDATE sites s SET domain = r.domain, ai_script_id = r.ai_script_id, ai_prompt = r.ai_prompt,
                brand_name = r.brand_name, language = r.language, hubspot_pipeline = r.hubspot_pipeline,
                hubspot_stage = r.hubspot_stage
           FROM jsonb_populate_record(NULL::sites, $2) r
          WHERE s.site_id = $1",
    )
    .bind(site_id.as_str())
    .bind(&row)
    .execute(&mut *tx)
    .await
    .map_err(DataError::from)?;
    let version = site_version(&mut *tx, site_id).await?;
    tx.commit().await?;
    Ok(version)
}

/// Brings a deleted site back as it was just before its deletion, recorded as a new version
/// that names the version it restores. Returns the new version number.
pub(crate) async fn restore_site(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    site_id: &SiteId,
) -> Result<i64, RevertError> {
    let mut tx = begin_as(conn, actor).await?;
    let exists = sqlx::query("SELECT 1 FROM sites WHERE site_id = $1")
        .bind(site_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        return Err(RevertError::SiteExists { site_id: site_id.as_str().to_owned() });
    }
    let latest = latest_site_change(&mut *tx, site_id).await?;
    let Some(SiteChange { old_row: Some(row), version, .. }) = latest.filter(|c| c.operation == "DELETE")
    else {
        return Err(RevertError::NeverDeleted { site_id: site_id.as_str().to_owned() });
    };
    let restored = version - 1;
    check_domain_free(&mut tx, site_id, restored, &row).await?;
    Mark::Restores(restored).set(&mut tx).await.map_err(DataError::from)?;
    sqlx::query("INSERT INTO sites SELECT * FROM jsonb_populate_record(NULL::sites, $1)")
        .bind(&row)
        .execute(&mut *tx)
        .await
        .map_err(DataError::from)?;
    let version = site_version(&mut *tx, site_id).await?;
    tx.commit().await?;
    Ok(version)
}

/// The domain a version had must not belong to another site now.
async fn check_domain_free(
    conn: &mut PgConnection,
    site_id: &SiteId,
    version: i64,
    row: &serde_json::Value,
) -> Result<(), RevertError> {
    let Some(domain) = row.get("domain").and_then(|d| d.as_str()) else { return Ok(()) };
    let owner: Option<String> =
        sqlx::query_scalar("SELECT site_id FROM sites WHERE domain = $1 AND site_id <> $2")
            .bind(domain)
            .bind(site_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match owner {
        Some(owner) => Err(RevertError::DomainTaken {
            site_id: site_id.as_str().to_owned(),
            version,
            domain: domain.to_owned(),
            owner,
        }),
        None => Ok(()),
    }
}

/// Every recorded change of a user, oldest first.
pub(crate) async fn user_history(
    executor: impl PgExecutor<'_>,
    user_id: &UserId,
) -> Result<Vec<UserChange>, DataError> {
    Ok(sqlx::query_as(
        "SELECT user_id, version, operation, changed_at, actor, session_role, old_email, new_email, forgotten_at, forgotten_by
           FROM users_history WHERE user_id = $1 ORDER BY version",
    )
    .bind(user_id.as_str())
    .fetch_all(executor)
    .await?)
}

/// What forgetting a person did under one of the ids they had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ForgottenId {
    pub(crate) user_id: String,
    /// A user row existed under this id and was deleted.
    pub(crate) user_row_deleted: bool,
    /// History rows under this id that no longer hold an e-mail address.
    pub(crate) history_rows_scrubbed: i64,
    /// Actor fields (who made a change) that named one of this id's addresses, now
    /// "a forgotten user".
    pub(crate) actor_fields_scrubbed: i64,
    /// Sites whose content mentions one of this id's addresses: not changed (site content is
    /// not the user's record); edit them if the address is the person's.
    pub(crate) sites_mentioning: Vec<String>,
}

/// What `forget_user` scrubbed: each id the person had (the one asked for, and those a rename
/// before ids became permanent links to it), none of them holding an e-mail address anymore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ForgetReport {
    pub(crate) ids: Vec<ForgottenId>,
}

impl ForgetReport {
    /// Nothing existed to forget: no user and no history under the id.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.iter().all(|i| !i.user_row_deleted && i.history_rows_scrubbed == 0)
    }

    pub(crate) fn history_rows_scrubbed(&self) -> i64 {
        self.ids.iter().map(|i| i.history_rows_scrubbed).sum()
    }
}

/// Honours a "delete my data" request: deletes the user and removes every e-mail address from
/// that user's history, under every id they had (the rows stay, saying when and by whom).
pub(crate) async fn forget_user(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    user_id: &UserId,
) -> Result<ForgetReport, DataError> {
    let mut tx = begin_as(conn, actor).await?;
    let rows: Vec<(String, bool, i64, i64, Vec<String>)> =
        sqlx::query_as("SELECT forgotten_id, user_row_deleted, history_rows, actor_fields, sites_mentioning FROM cabinet_forget_user($1)")
            .bind(user_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let ids = rows
        .into_iter()
        .map(|(user_id, user_row_deleted, history_rows_scrubbed, actor_fields_scrubbed, sites_mentioning)| {
            ForgottenId {
                user_id,
                user_row_deleted,
                history_rows_scrubbed,
                actor_fields_scrubbed,
                sites_mentioning,
            }
        })
        .collect();
    Ok(ForgetReport { ids })
}

/// Removes history older than `before` (each record's newest version stays), recorded in
/// `history_prunes`. The owner or a superuser only. Returns the rows removed.
pub(crate) async fn prune(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    before: DateTime<Utc>,
) -> Result<i64, DataError> {
    let mut tx = begin_as(conn, actor).await?;
    let removed: i64 =
        sqlx::query_scalar("SELECT cabinet_prune_history($1)").bind(before).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(removed)
}
