//! Sites: the searchable list, create, view and edit (with the version the form started
//! from, so a concurrent change is shown, never overwritten), and delete with a typed
//! confirmation.

use std::sync::Arc;

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    site_form::{self, FieldErrors, FormKind, SiteForm},
    site_merge,
};
use crate::{
    data::DataError,
    history,
    models::{LanguageTag, SiteId},
    panel::{
        error::{PanelError, parse_site_id as parse_id},
        html::{
            Section, TypedConfirmation, notice, optional, page, pager, time, typed_confirmation, urlencode,
            wants_fragment,
        },
        identity::{Identity, Role},
        state::{PanelState, require},
    },
    sites::{self, SiteFilter},
};

/// Sites per page of the list.
pub(crate) const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    pub(crate) q: String,
    pub(crate) language: String,
    pub(crate) after: Option<String>,
    pub(crate) notice: Option<String>,
    pub(crate) id: Option<String>,
}

pub(crate) async fn list(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    let language = match query.language.trim() {
        "" => None,
        tag => Some(
            LanguageTag::parse(tag).map_err(|e| PanelError::BadRequest(format!("language {}", e.reason)))?,
        ),
    };
    let search = query.q.trim();
    let filter = SiteFilter {
        language,
        domain_contains: None,
        text_contains: (!search.is_empty()).then(|| search.to_owned()),
    };
    let found = sites::list(&panel.pool, &filter, query.after.as_deref(), PAGE_SIZE).await?;
    let next_link = found.next.as_ref().map(|after| {
        format!(
            "/sites?q={}&language={}&after={}",
            urlencode(search),
            urlencode(query.language.trim()),
            urlencode(after)
        )
    });
    let results = html! {
        div.table-wrap { table {
            thead { tr { th { "site id" } th { "domain" } th { "brand" } th { "language" } th { "version" } } }
            tbody {
                @for site in &found.items {
                    tr {
                        td { a href=(format!("/sites/{}", urlencode(&site.site_id))) { (site.site_id) } }
                        td { (site.domain) }
                        td { (optional(site.brand_name.as_deref())) }
                        td { (site.language) }
                        td { (site.version) }
                    }
                }
                @if found.items.is_empty() { tr { td colspan="5" { span.muted { "No site matches." } } } }
            }
        } }
        (pager("/sites", query.after.is_some(), next_link.as_deref()))
    };
    if wants_fragment(&headers) {
        return Ok(results.into_response());
    }
    let languages = sites::languages(&panel.pool).await?;
    let deleted_notice = match (query.notice.as_deref(), query.id.as_deref()) {
        (Some("deleted"), Some(id)) => Some(notice(
            "",
            html! { "Site " strong { (id) } " was deleted. " a href=(format!("/sites/{}", urlencode(id))) { "Its history" } " keeps every version; it can be restored there." },
        )),
        _ => None,
    };
    let body = html! {
        @if let Some(n) = deleted_notice { (n) }
        form.search method="get" action="/sites" role="search"
            hx-get="/sites" hx-target="#results" hx-push-url="true"
            hx-trigger="input changed delay:300ms from:input[type=search], change from:select, submit" {
            input type="search" name="q" value=(search) placeholder="Search id, domain or brand" aria-label="Search sites";
            select name="language" aria-label="Language" {
                option value="" { "Any language" }
                @for tag in &languages { option value=(tag) selected[*tag == query.language.trim()] { (tag) } }
            }
            button type="submit" { "Search" }
            @if me.may(Role::Editor) { a.button.secondary href="/sites/new" { "New site" } }
        }
        div #results { (results) }
    };
    Ok(page(&me, Section::Sites, "Sites", body).into_response())
}

pub(crate) async fn new_form(Extension(me): Extension<Identity>) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "creating a site")?;
    let form = SiteForm { language: "en".to_owned(), ..SiteForm::default() };
    Ok(new_page(&me, &form, &FieldErrors::new()).into_response())
}

fn new_page(me: &Identity, form: &SiteForm, errors: &FieldErrors) -> Markup {
    page(me, Section::Sites, "New site", site_form::render(&FormKind::Create, form, errors, false))
}

pub(crate) async fn create(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Form(form): Form<SiteForm>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "creating a site")?;
    let form = SiteForm { unsaved: true, ..form };
    let refused = |errors: FieldErrors| {
        (StatusCode::UNPROCESSABLE_ENTITY, new_page(&me, &form, &errors)).into_response()
    };
    let site = match form.to_new_site() {
        Ok(site) => site,
        Err(errors) => return Ok(refused(errors)),
    };
    let mut conn = panel.pool.acquire().await?;
    match sites::create(&mut conn, Some(&me.actor()), &site).await {
        Ok(created) => {
            Ok(Redirect::to(&format!("/sites/{}?notice=created", urlencode(&created.site_id)))
                .into_response())
        }
        Err(e) => match site_form::errors_of(&e) {
            Some(errors) => Ok(refused(errors)),
            None => Err(e.into()),
        },
    }
}

/// htmx's check of a form as it is filled in: the model's checks and the unique ones, nothing
/// written.
pub(crate) async fn check(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    site_id: Option<Path<String>>,
    Form(mut form): Form<SiteForm>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "changing sites")?;
    let editing = site_id.map(|Path(id)| id);
    if let Some(id) = &editing {
        form.site_id = id.clone();
    }
    let mut errors = match &editing {
        None => form.to_new_site().err().unwrap_or_default(),
        Some(id) => {
            let stored = match SiteId::parse(id) {
                Ok(id) => sites::get(&panel.pool, &id).await?,
                Err(_) => None,
            };
            match stored {
                Some(stored) => {
                    let base = match form.version {
                        Some(version) => {
                            base_of(&panel, &SiteId::parse(id).map_err(|_| not_found(id))?, version, &stored)
                                .await?
                        }
                        None => Some(SiteForm::from_site(&stored)),
                    };
                    let merged = site_merge::merge(&form, base.as_ref(), None, &stored);
                    site_form::patch_of(&merged.write, &stored).err().unwrap_or_default()
                }
                None => FieldErrors::from([("form", "this site no longer exists".to_owned())]),
            }
        }
    };
    if editing.is_none()
        && !errors.contains_key("site_id")
        && let Ok(id) = SiteId::parse(&form.site_id)
        && sites::get(&panel.pool, &id).await?.is_some()
    {
        errors.insert("site_id", "is taken: a site with this id exists".to_owned());
    }
    if !errors.contains_key("domain")
        && let Some(owner) = sites::get_by_domain(&panel.pool, form.domain.trim()).await?
        && owner.site_id != form.site_id
    {
        errors
            .insert("domain", format!("belongs to site {} already: each domain has one site", owner.site_id));
    }
    Ok(site_form::check_response(&errors, &site_form::field_names()).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ShowQuery {
    pub(crate) notice: Option<String>,
    pub(crate) to: Option<i64>,
    pub(crate) from: Option<i64>,
}

pub(crate) async fn show(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PanelError> {
    let site_id = parse_id(&id)?;
    let Some(site) = sites::get(&panel.pool, &site_id).await? else {
        return deleted_page(&panel, &me, &site_id).await;
    };
    let message = match (query.notice.as_deref(), query.to) {
        (Some("created"), _) => Some(format!("Created, version {}.", site.version)),
        (Some("saved"), _) => Some(format!("Saved as version {}.", site.version)),
        (Some("merged"), _) => Some(format!(
            "Saved as version {}, merged with the changes others saved after version {}.",
            site.version,
            query.from.unwrap_or(0)
        )),
        (Some("unchanged"), _) => Some("Nothing changed, nothing was written.".to_owned()),
        (Some("reverted"), Some(to)) => {
            Some(format!("Version {to} is back, recorded as version {}.", site.version))
        }
        (Some("restored"), _) => Some(format!("Restored, recorded as version {}.", site.version)),
        _ => None,
    };
    let body =
        site_page_body(&me, &site, &SiteForm::from_site(&site), &FieldErrors::new(), message.as_deref());
    Ok(page(&me, Section::Sites, &format!("Site {}", site.site_id), body).into_response())
}

fn site_page_body(
    me: &Identity,
    site: &crate::models::Site,
    form: &SiteForm,
    errors: &FieldErrors,
    message: Option<&str>,
) -> Markup {
    let base = format!("/sites/{}", urlencode(&site.site_id));
    html! {
        @if let Some(m) = message { (notice("", html! { (m) })) }
        p.muted {
            "Version " (site.version) " · created " (time(site.created_at)) " · "
            a href=(format!("{base}/history")) { "History" }
            @if me.may(Role::Editor) { " · " a href=(format!("{base}/delete")) { "Delete" } }
        }
        (site_form::render(&FormKind::Edit { site_id: &site.site_id }, form, errors, !me.may(Role::Editor)))
    }
}

/// A site that is gone: when and by whom, and (for editors) the way back.
async fn deleted_page(panel: &PanelState, me: &Identity, site_id: &SiteId) -> Result<Response, PanelError> {
    let latest = history::latest_site_change(&panel.pool, site_id).await?;
    let Some(change) = latest.filter(|c| c.operation == "DELETE") else {
        return Err(PanelError::NotFound(format!("no site {}", site_id.as_str())));
    };
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    let body = html! {
        (notice("warn", html! { "Deleted at " (time(change.changed_at)) " by " strong { (change.actor) } " (version " (change.version) ")." }))
        p { a href=(format!("{base}/history")) { "Its history" } " keeps every version." }
        @if me.may(Role::Editor) {
            form method="post" action=(format!("{base}/restore")) {
                div.actions { button type="submit" { "Restore it as it was" } }
            }
        }
    };
    Ok((
        StatusCode::NOT_FOUND,
        page(me, Section::Sites, &format!("Site {} (deleted)", site_id.as_str()), body),
    )
        .into_response())
}

/// How many times a save merges again when someone saves in the instant between its read and
/// its write, before it asks the person to try again.
const MERGE_ATTEMPTS: usize = 3;

pub(crate) async fn update(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Form(mut form): Form<SiteForm>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "changing a site")?;
    let site_id = parse_id(&id)?;
    form.site_id = site_id.as_str().to_owned();
    form.unsaved = true;
    let Some(version) = form.version else {
        return Err(PanelError::BadRequest(
            "the form carries no version: reload the page and edit again".into(),
        ));
    };
    let base_url = format!("/sites/{}", urlencode(site_id.as_str()));
    for _ in 0..MERGE_ATTEMPTS {
        let Some(current) = sites::get(&panel.pool, &site_id).await? else {
            return deleted_while_editing(&panel, &me, &site_id, &form).await;
        };
        let started_from = form.started_from.unwrap_or(version);
        if ![version, started_from].iter().all(|v| (1..=current.version).contains(v))
            || started_from > version
        {
            return Err(PanelError::BadRequest(format!(
                "the form says it was drawn from version {version}, but site {} is at version {}: reload the page and edit again",
                site_id.as_str(),
                current.version
            )));
        }
        let base = base_of(&panel, &site_id, version, &current).await?;
        // The merge page's form builds on their version; the version the person began from is
        // what the asked fields are shown against, and what the history's mark names.
        let started = match started_from == version {
            true => None,
            false => base_of(&panel, &site_id, started_from, &current).await?,
        };
        form.notes = base.as_ref().map(|b| b.notes.clone()).unwrap_or_default();
        let merged = site_merge::merge(&form, base.as_ref(), started.as_ref(), &current);
        let title = format!("Site {}", current.site_id);
        if !merged.conflicts.is_empty() {
            let history = history::site_history(&panel.pool, &site_id).await?;
            let body = site_merge::merge_view(&merged, &history, &current, &form, &me.login);
            return Ok((
                StatusCode::CONFLICT,
                page(&me, Section::Sites, &format!("{title}: changed meanwhile"), body),
            )
                .into_response());
        }
        let refused = |errors: FieldErrors| {
            let body = site_page_body(&me, &current, &form, &errors, None);
            (StatusCode::UNPROCESSABLE_ENTITY, page(&me, Section::Sites, &title, body)).into_response()
        };
        let patch = match site_form::patch_of(&merged.write, &current) {
            Ok(patch) => patch,
            Err(errors) => return Ok(refused(errors)),
        };
        if patch.is_empty() {
            return Ok(Redirect::to(&format!("{base_url}?notice=unchanged")).into_response());
        }
        let mut conn = panel.pool.acquire().await?;
        // A save made on an older version says so in the history: both versions named.
        // (Only from a version the history still holds: the mark names it.)
        let named = if started_from == version { base.is_some() } else { started.is_some() };
        let mark = (current.version != started_from && named).then_some(history::Mark::Merges(started_from));
        match sites::update_marked(
            &mut conn,
            Some(&me.actor()),
            &site_id,
            &patch,
            Some(current.version),
            mark,
        )
        .await
        {
            Ok(Some(_)) if current.version == started_from => {
                return Ok(Redirect::to(&format!("{base_url}?notice=saved")).into_response());
            }
            Ok(Some(_)) => {
                return Ok(
                    Redirect::to(&format!("{base_url}?notice=merged&from={started_from}")).into_response()
                );
            }
            Ok(None) => return deleted_while_editing(&panel, &me, &site_id, &form).await,
            // Someone saved between our read and our write: merge again with theirs.
            Err(DataError::Conflict(_)) => continue,
            Err(e) => match site_form::errors_of(&e) {
                Some(errors) => return Ok(refused(errors)),
                None => return Err(e.into()),
            },
        }
    }
    Err(PanelError::BadRequest(format!(
        "site {} kept changing while your save was merged; nothing was written — go back, and save again",
        site_id.as_str()
    )))
}

/// The form's version as the history recorded it (`None` when it is no longer there).
fn not_found(id: &str) -> PanelError {
    PanelError::NotFound(format!("no site {id:?}"))
}

async fn base_of(
    panel: &PanelState,
    site_id: &SiteId,
    version: i64,
    current: &crate::models::Site,
) -> Result<Option<SiteForm>, PanelError> {
    if version == current.version {
        return Ok(Some(SiteForm::from_site(current)));
    }
    let found = history::site_at_version(&panel.pool, site_id, version).await?;
    Ok(found
        .filter(|(change, _)| change.operation != "DELETE")
        .map(|(_, row)| SiteForm::from_row(&row, version)))
}

/// A save into a site deleted meanwhile: nothing is lost — the person's values stay on screen,
/// with who deleted it and when, and a form that creates it again with them.
async fn deleted_while_editing(
    panel: &PanelState,
    me: &Identity,
    site_id: &SiteId,
    yours: &SiteForm,
) -> Result<Response, PanelError> {
    let latest = history::latest_site_change(&panel.pool, site_id).await?;
    let Some(deletion) = latest.filter(|c| c.operation == "DELETE") else {
        return Err(PanelError::NotFound(format!("no site {}", site_id.as_str())));
    };
    let base = format!("/sites/{}", urlencode(site_id.as_str()));
    let again = SiteForm { version: None, theirs_version: None, ..yours.clone() };
    let body = html! {
        div.notice.warn role="alert" {
            strong { "Not saved: this site was deleted while you were editing it" }
            " — by " strong { (deletion.actor) } " at " (time(deletion.changed_at)) " (version " (deletion.version) "). "
            "Your values are below, as you left them: create the site again with them, or leave it deleted."
        }
        (site_form::render_with(&FormKind::Create, &again, &FieldErrors::new(), false, html! {}, Some("Create it again with these values")))
        p { a href=(format!("{base}/history")) { "Its history" } " keeps every version; restoring brings it back as it was before the deletion, without your changes." }
    };
    Ok((
        StatusCode::CONFLICT,
        page(me, Section::Sites, &format!("Site {} (deleted)", site_id.as_str()), body),
    )
        .into_response())
}

pub(crate) async fn delete_form(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "deleting a site")?;
    let site_id = parse_id(&id)?;
    let Some(site) = sites::get(&panel.pool, &site_id).await? else {
        return deleted_page(&panel, &me, &site_id).await;
    };
    Ok(delete_page(&me, &site, None).into_response())
}

fn delete_page(me: &Identity, site: &crate::models::Site, error: Option<&str>) -> Markup {
    let base = format!("/sites/{}", urlencode(&site.site_id));
    let body = html! {
        p { "Deleting " strong { (site.site_id) } " (" (site.domain) ") stops its chatbot's configuration from being found. Its history keeps every version, so it can be restored." }
        (typed_confirmation(&format!("{base}/delete"), "site id", &site.site_id, error, "Delete site", &base))
    };
    page(me, Section::Sites, &format!("Delete site {}?", site.site_id), body)
}

pub(crate) async fn delete(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): Form<TypedConfirmation>,
) -> Result<Response, PanelError> {
    require(&me, Role::Editor, "deleting a site")?;
    let site_id = parse_id(&id)?;
    let Some(site) = sites::get(&panel.pool, &site_id).await? else {
        return deleted_page(&panel, &me, &site_id).await;
    };
    if form.confirm != site.site_id {
        let page = delete_page(&me, &site, Some("The text typed is not the site id: nothing was deleted."));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut conn = panel.pool.acquire().await?;
    sites::delete(&mut conn, Some(&me.actor()), &site_id).await?;
    Ok(Redirect::to(&format!("/sites?notice=deleted&id={}", urlencode(site_id.as_str()))).into_response())
}
