//! Users: search by the start of an e-mail address or id (index-backed), a last-seen range,
//! a user's record with its history, and forget (admin only, typed confirmation): the user is
//! deleted and the e-mail scrubbed from the history.

use std::sync::Arc;

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::panel::html::{urlencode, wants_fragment};
use crate::{
    history,
    models::UserId,
    panel::{
        error::PanelError,
        html::{Section, TypedConfirmation, notice, optional, page, pager, time, typed_confirmation},
        identity::{Identity, Role},
        state::PanelState,
        state::require,
    },
    users::{self, UserSearch},
};

/// Users per page of the list.
pub(crate) const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    pub(crate) q: String,
    /// `YYYY-MM-DD`: seen on or after the start of this day (UTC).
    pub(crate) seen_from: String,
    /// `YYYY-MM-DD`: seen before the end of this day (UTC).
    pub(crate) seen_until: String,
    pub(crate) after: Option<String>,
    pub(crate) notice: Option<String>,
    pub(crate) id: Option<String>,
}

/// A day's start (or, with `next`, the next day's start) in UTC.
fn day(field: &str, text: &str, next: bool) -> Result<Option<DateTime<Utc>>, PanelError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| PanelError::BadRequest(format!("{field} {text:?} is not a date like 2026-11-27")))?;
    let date = if next { date.succ_opt().unwrap_or(date) } else { date };
    Ok(Some(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()))
}

pub(crate) async fn list(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    let prefix = query.q.trim();
    let search = UserSearch {
        prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
        seen_after: day("seen from", &query.seen_from, false)?,
        seen_before: day("seen until", &query.seen_until, true)?,
    };
    let found = users::search(&panel.pool, &search, query.after.as_deref(), PAGE_SIZE).await?;
    let next_link = found.next.as_ref().map(|after| {
        format!(
            "/users?q={}&seen_from={}&seen_until={}&after={}",
            urlencode(prefix),
            urlencode(query.seen_from.trim()),
            urlencode(query.seen_until.trim()),
            urlencode(after)
        )
    });
    let results = html! {
        div.table-wrap { table {
            thead { tr { th { "user id" } th { "e-mail" } th { "first seen" } th { "last seen" } } }
            tbody {
                @for user in &found.items {
                    tr {
                        td { a href=(format!("/users/{}", urlencode(&user.user_id))) { (user.user_id) } }
                        td { (optional(user.email.as_deref())) }
                        td { (time(user.first_seen)) }
                        td { (time(user.last_seen)) }
                    }
                }
                @if found.items.is_empty() { tr { td colspan="4" { span.muted { "No user matches." } } } }
            }
        } }
        (pager("/users", query.after.is_some(), next_link.as_deref()))
    };
    if wants_fragment(&headers) {
        return Ok(results.into_response());
    }
    let forgotten = match (query.notice.as_deref(), query.id.as_deref()) {
        (Some("forgotten"), Some(id)) => Some(notice(
            "",
            html! { "User " strong { (id) } " was forgotten: deleted, and no e-mail address of theirs is left in the history." },
        )),
        _ => None,
    };
    let body = html! {
        @if let Some(n) = forgotten { (n) }
        form.search method="get" action="/users" role="search"
            hx-get="/users" hx-target="#results" hx-push-url="true"
            hx-trigger="input changed delay:300ms from:input[type=search], change from:input[type=date], submit" {
            input type="search" name="q" value=(prefix) placeholder="Start of an e-mail or user id" aria-label="Search users";
            label.hint for="seen_from" { "seen from" }
            input #seen_from type="date" name="seen_from" value=(query.seen_from.trim());
            label.hint for="seen_until" { "until" }
            input #seen_until type="date" name="seen_until" value=(query.seen_until.trim());
            button type="submit" { "Search" }
        }
        div #results { (results) }
    };
    Ok(page(&me, Section::Users, "Users", body).into_response())
}

fn parse_id(id: &str) -> Result<UserId, PanelError> {
    UserId::parse(id).map_err(|_| PanelError::NotFound(format!("no user {id:?}")))
}

pub(crate) async fn show(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let user_id = parse_id(&id)?;
    let user = users::get(&panel.pool, &user_id).await?;
    let changes = history::user_history(&panel.pool, &user_id).await?;
    if user.is_none() && changes.is_empty() {
        return Err(PanelError::NotFound(format!("no user {}", user_id.as_str())));
    }
    let base = format!("/users/{}", urlencode(user_id.as_str()));
    let body = html! {
        @match &user {
            Some(user) => {
                dl.fields {
                    dt { "e-mail" } dd { (optional(user.email.as_deref())) }
                    dt { "first seen" } dd { (time(user.first_seen)) }
                    dt { "last seen" } dd { (time(user.last_seen)) }
                }
                @if me.may(Role::Admin) {
                    p { a.button.secondary href=(format!("{base}/forget")) { "Forget this user…" } }
                }
            }
            None => { (notice("warn", html! { "This user no longer exists." })) }
        }
        h2 { "History" }
        p.muted { "Creation, e-mail changes and deletion; activity (last seen) is not recorded." }
        div.table-wrap { table {
            thead { tr { th { "version" } th { "when" } th { "who" } th { "what" } th { "e-mail before" } th { "e-mail after" } } }
            tbody {
                @for change in changes.iter().rev() {
                    tr {
                        td { (change.version) }
                        td { (time(change.changed_at)) }
                        td { (change.actor) }
                        td {
                            (change.operation.to_lowercase())
                            @if let (Some(at), Some(by)) = (change.forgotten_at, &change.forgotten_by) {
                                br; span.muted { "forgotten at " (time(at)) " by " (by) }
                            }
                        }
                        td { (optional(change.old_email.as_deref())) }
                        td { (optional(change.new_email.as_deref())) }
                    }
                }
            }
        } }
    };
    Ok(page(&me, Section::Users, &format!("User {}", user_id.as_str()), body).into_response())
}

pub(crate) async fn forget_form(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    require(&me, Role::Admin, "forgetting a user")?;
    let user_id = parse_id(&id)?;
    if users::get(&panel.pool, &user_id).await?.is_none() {
        return Err(PanelError::NotFound(format!("no user {}", user_id.as_str())));
    }
    Ok(forget_page(&me, &user_id, None).into_response())
}

fn forget_page(me: &Identity, user_id: &UserId, error: Option<&str>) -> Markup {
    let base = format!("/users/{}", urlencode(user_id.as_str()));
    let body = html! {
        p { "Forgetting honours a \"delete my data\" request: the user is deleted and every e-mail address of theirs is removed from the history (the history rows stay, saying when and by whom it was forgotten). It cannot be undone. Backups taken before keep the old rows until they expire." }
        (typed_confirmation(&format!("{base}/forget"), "user id", user_id.as_str(), error, "Forget user", &base))
    };
    page(me, Section::Users, &format!("Forget user {}?", user_id.as_str()), body)
}

pub(crate) async fn forget(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): Form<TypedConfirmation>,
) -> Result<Response, PanelError> {
    require(&me, Role::Admin, "forgetting a user")?;
    let user_id = parse_id(&id)?;
    if form.confirm != user_id.as_str() {
        let page =
            forget_page(&me, &user_id, Some("The text typed is not the user id: nothing was changed."));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut conn = panel.pool.acquire().await?;
    let report = history::forget_user(&mut conn, Some(&me.actor()), &user_id).await?;
    if report.is_empty() {
        return Err(PanelError::NotFound(format!("no user {}", user_id.as_str())));
    }
    Ok(Redirect::to(&format!("/users?notice=forgotten&id={}", urlencode(user_id.as_str()))).into_response())
}
