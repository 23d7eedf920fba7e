//! A site's history: every version with who, when and what; one version with its prompt diff;
//! revert to a version and restore a deleted site, each after a confirmation that shows what
//! will change. Both are ordinary writes, recorded as new versions naming the one they restore.

use std::sync::Arc;

use axum::{
    Extension, Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use super::site_form::FIELDS;
use crate::panel::{error::parse_site_id as parse_id, html::urlencode};
use crate::{
    data::DataError,
    history,
    models::change::{SiteChange, VersionConflict},
    panel::{
        error::PanelError,
        html::{Section, notice, optional, page, time},
        identity::{Identity, Role},
        state::PanelState,
        state::require,
    },
    sites,
};

/// Lines of unchanged context around each changed part of a prompt.
const DIFF_CONTEXT_LINES: usize = 3;

pub(crate) async fn list(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let site_id = parse_id(&id)?;
    let changes = history::site_history(&panel.pool, &site_id).await?;
    if changes.is_empty() {
        return Err(PanelError::NotFound(format!("site {} has no recorded history", site_id.as_str())));
    }
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    let body = html! {
        p { a href=(base) { "The site now" } }
        div.table-wrap { table {
            thead { tr { th { "version" } th { "when" } th { "who" } th { "what" } th { "fields" } } }
            tbody {
                @for change in changes.iter().rev() {
                    tr {
                        td { a href=(format!("{base}/history/{}", change.version)) { (change.version) } }
                        td { (time(change.changed_at)) }
                        td { (change.actor) br; span.muted { "as " (change.session_role) @if !change.application_name.is_empty() { " via " (change.application_name) } } }
                        td { (operation(change)) }
                        td { (change.changed_fields.join(", ")) }
                    }
                }
            }
        } }
    };
    Ok(page(&me, Section::Sites, &format!("History of site {}", site_id.as_str()), body).into_response())
}

fn operation(change: &SiteChange) -> Markup {
    html! {
        @match change.operation.as_str() {
            "INSERT" => "created",
            "DELETE" => "deleted",
            _ => "changed",
        }
        @if let Some(v) = change.restores_version { " (restores version " (v) ")" }
        @if let Some(v) = change.merges_version { " (merges an edit made on version " (v) " with version " (change.version - 1) ")" }
    }
}

fn field(row: Option<&serde_json::Value>, name: &str) -> Option<String> {
    row?.get(name)?.as_str().map(str::to_owned)
}

pub(crate) async fn version(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Response, PanelError> {
    let site_id = parse_id(&id)?;
    let Some((change, row)) = history::site_at_version(&panel.pool, &site_id, version).await? else {
        return Err(PanelError::NotFound(format!("site {} has no version {version}", site_id.as_str())));
    };
    let current = sites::get(&panel.pool, &site_id).await?;
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    let may_revert = me.may(Role::Editor)
        && change.new_row.is_some()
        && current.as_ref().is_some_and(|c| c.version != version);
    let body = html! {
        p.muted {
            (operation(&change)) " at " (time(change.changed_at)) " by " strong { (change.actor) }
            " (as " (change.session_role)
            @if !change.application_name.is_empty() { " via " (change.application_name) }
            @if let Some(addr) = &change.client_addr { " from " (addr) }
            ") · " a href=(format!("{base}/history")) { "all versions" }
        }
        h2 { "What this version changed" }
        (change_table(change.old_row.as_ref(), change.new_row.as_ref()))
        h2 { "The site as of version " (version) }
        (row_fields(&row))
        @if may_revert {
            form method="post" action=(format!("{base}/revert")) {
                input type="hidden" name="to" value=(version);
                div.actions { button type="submit" { "Revert to version " (version) "…" } }
            }
        }
        @if current.is_none() && me.may(Role::Editor) {
            form method="post" action=(format!("{base}/restore")) {
                div.actions { button type="submit" { "Restore the deleted site…" } }
            }
        }
    };
    Ok(page(&me, Section::Sites, &format!("Site {}, version {version}", site_id.as_str()), body)
        .into_response())
}

/// The fields that differ between two rows: short ones old → new, the prompt as a diff.
pub(crate) fn change_table(old: Option<&serde_json::Value>, new: Option<&serde_json::Value>) -> Markup {
    let changed: Vec<_> = FIELDS.iter().filter(|(name, ..)| field(old, name) != field(new, name)).collect();
    html! {
        @if changed.is_empty() { p.muted { "No field differs." } }
        @else {
            div.table-wrap { table {
                thead { tr { th { "field" } th { "before" } th { "after" } } }
                tbody {
                    @for (name, label, _) in changed {
                        @if *name == "ai_prompt" {
                            tr { td { (label) } td colspan="2" {
                                (prompt_diff(&field(old, name).unwrap_or_default(), &field(new, name).unwrap_or_default()))
                            } }
                        } @else {
                            tr { td { (label) } td { (optional(field(old, name).as_deref())) } td { (optional(field(new, name).as_deref())) } }
                        }
                    }
                }
            } }
        }
    }
}

fn row_fields(row: &serde_json::Value) -> Markup {
    html! {
        dl.fields {
            @for (name, label, _) in FIELDS {
                dt { (label) }
                dd { @if *name == "ai_prompt" { pre { (field(Some(row), name).unwrap_or_default()) } } @else { (optional(field(Some(row), name).as_deref())) } }
            }
        }
    }
}

/// A unified line diff of two prompts: removed lines marked -, added +, a few unchanged lines
/// of context around each change, `…` where unchanged lines are left out.
pub(crate) fn prompt_diff(old: &str, new: &str) -> Markup {
    let diff = TextDiff::from_lines(old, new);
    let groups = diff.grouped_ops(DIFF_CONTEXT_LINES);
    html! {
        div.diff {
            @if groups.is_empty() { div.same { "(no difference)" } }
            @for (i, group) in groups.iter().enumerate() {
                @if i > 0 { div.muted { "…" } }
                @for op in group {
                    @for change in diff.iter_changes(op) {
                        @let class = match change.tag() { ChangeTag::Delete => "del", ChangeTag::Insert => "add", ChangeTag::Equal => "same" };
                        @let line = change.value();
                        div class=(class) {
                            (line.strip_suffix('\n').unwrap_or(line))
                            // The last line differs only in its line end: say so, or the two
                            // lines would look the same.
                            @if change.missing_newline() && change.tag() != ChangeTag::Equal { span.muted { " (no newline at the end)" } }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RevertForm {
    pub(crate) to: i64,
    /// "yes" once the person saw what will change.
    pub(crate) confirmed: String,
    /// The version the confirmation showed the change against.
    pub(crate) from: Option<i64>,
}

pub(crate) async fn revert(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): Form<RevertForm>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "reverting a site")?;
    let site_id = parse_id(&id)?;
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    if form.confirmed == "yes" {
        let mut conn = panel.pool.acquire().await?;
        let before = form.from;
        match history::revert_site(&mut conn, Some(&me.actor()), &site_id, form.to, before).await {
            Ok(version) if Some(version) == before => {
                return Ok(Redirect::to(&format!("{base}?notice=unchanged")).into_response());
            }
            Ok(_) => {
                return Ok(Redirect::to(&format!("{base}?notice=reverted&to={}", form.to)).into_response());
            }
            // Someone saved after the confirmation was drawn: show what reverting changes now.
            Err(history::RevertError::Data(DataError::Conflict(conflict))) => {
                let page = revert_confirmation(&panel, &me, &site_id, form.to, Some(&conflict)).await?;
                return Ok((StatusCode::CONFLICT, page).into_response());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(revert_confirmation(&panel, &me, &site_id, form.to, None).await?.into_response())
}

/// What reverting to `to` would change now, with the button that does it (none when nothing
/// would change); `changed`: why the person is seeing it again.
async fn revert_confirmation(
    panel: &PanelState,
    me: &Identity,
    site_id: &crate::models::SiteId,
    to: i64,
    changed: Option<&VersionConflict>,
) -> Result<Markup, PanelError> {
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    let Some((_, row)) = history::site_at_version(&panel.pool, site_id, to).await? else {
        return Err(PanelError::NotFound(format!("site {} has no version {to}", site_id.as_str())));
    };
    let Some(current) = sites::get(&panel.pool, site_id).await? else {
        return Err(history::RevertError::SiteGone { site_id: site_id.as_str().to_owned() }.into());
    };
    let now = serde_json::to_value(&current).map_err(|e| PanelError::Internal(e.to_string()))?;
    let differs = FIELDS.iter().any(|(name, ..)| field(Some(&now), name) != field(Some(&row), name));
    let body = html! {
        @if let Some(conflict) = changed {
            div.notice.warn role="alert" {
                strong { "Not reverted: the site changed after you looked." }
                @if let Some(change) = &conflict.latest {
                    " Version " (change.version) " by " strong { (change.actor) } " at " (time(change.changed_at))
                    @if !change.changed_fields.is_empty() { " (" (change.changed_fields.join(", ")) ")" }
                    "."
                }
                " Below is what reverting changes now."
            }
        }
        p { "Site " strong { (site_id.as_str()) } " is at version " (current.version) ". Reverting writes version " (current.version + 1) " with the values of version " (to) ":" }
        (change_table(Some(&now), Some(&row)))
        @if differs {
            form method="post" action=(format!("{base}/revert")) {
                input type="hidden" name="to" value=(to);
                input type="hidden" name="from" value=(current.version);
                input type="hidden" name="confirmed" value="yes";
                div.actions { button type="submit" { "Revert to version " (to) } a href=(format!("{base}/history/{to}")) { "Cancel" } }
            }
        } @else {
            p { "Version " (to) " holds the values the site has now: there is nothing to revert. " a href=(format!("{base}/history")) { "Back to the history" } }
        }
    };
    Ok(page(me, Section::Sites, &format!("Revert site {}?", site_id.as_str()), body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RestoreForm {
    pub(crate) confirmed: String,
}

pub(crate) async fn restore(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): Form<RestoreForm>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "restoring a site")?;
    let site_id = parse_id(&id)?;
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    if form.confirmed != "yes" {
        let latest = history::latest_site_change(&panel.pool, &site_id).await?;
        let Some(deletion) = latest.filter(|c| c.operation == "DELETE") else {
            return Err(history::RevertError::NeverDeleted { site_id: site_id.as_str().to_owned() }.into());
        };
        let body = html! {
            (notice("warn", html! { "Deleted at " (time(deletion.changed_at)) " by " (deletion.actor) "." }))
            p { "Restoring brings it back as it was just before:" }
            (row_fields(deletion.old_row.as_ref().unwrap_or(&serde_json::Value::Null)))
            form method="post" action=(format!("{base}/restore")) {
                input type="hidden" name="confirmed" value="yes";
                div.actions { button type="submit" { "Restore site " (site_id.as_str()) } a href=(format!("{base}/history")) { "Cancel" } }
            }
        };
        return Ok(
            page(&me, Section::Sites, &format!("Restore site {}?", site_id.as_str()), body).into_response()
        );
    }
    let mut conn = panel.pool.acquire().await?;
    history::restore_site(&mut conn, Some(&me.actor()), &site_id).await?;
    Ok(Redirect::to(&format!("{base}?notice=restored")).into_response())
}
