//! The page shell and the small pieces every page uses. maud escapes every value it inserts,
//! so data from the database (a site's `<script>` brand name) is always text, never markup.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::identity::Identity;

/// Which part of the panel a page belongs to (for the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Dashboard,
    Sites,
    Users,
    Transfer,
}

/// htmx's settings: nothing the Content-Security-Policy forbids (no inline indicator style,
/// no `eval`, no scripts from swapped-in content).
const HTMX_CONFIG: &str =
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}"#;

/// A whole page for a signed-in person.
pub(crate) fn page(identity: &Identity, section: Section, title: &str, body: Markup) -> Markup {
    let nav = [
        (Section::Dashboard, "/", "Dashboard"),
        (Section::Sites, "/sites", "Sites"),
        (Section::Users, "/users", "Users"),
        (Section::Transfer, "/transfer", "Import / export"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    span.brand { "cabinet-db" }
                    nav aria-label="Sections" {
                        @for (s, href, label) in nav {
                            a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                        }
                    }
                    span.who title="Your tailnet login and the role the tailnet policy grants you" {
                        (identity.login) " · " (identity.role)
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · cabinet-db" }
            link rel="stylesheet" href="/assets/panel.css";
            script src="/assets/htmx.min.js" defer {}
            script src="/assets/panel.js" defer {}
        }
    }
}

/// A page for a refusal or a failure: no navigation (the caller may not be signed in).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&title))
            body {
                header { span.brand { "cabinet-db" } nav { a href="/" { "Dashboard" } } }
                main {
                    h1 { (title) }
                    p.notice.error { (message) }
                }
            }
        }
    }
}

/// A timestamp as every page shows it.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional value, or a muted dash.
pub(crate) fn optional(value: Option<&str>) -> Markup {
    match value {
        Some(v) if !v.is_empty() => html! { (v) },
        Some(_) => html! { span.muted { "(empty)" } },
        None => html! { span.muted { "—" } },
    }
}

/// A notice at the top of a page.
pub(crate) fn notice(kind: &str, text: Markup) -> Markup {
    html! { div class=(format!("notice {kind}")) role="status" { (text) } }
}

/// The links under a keyset-paged list: back to the first page, on to the next.
pub(crate) fn pager(first_page: &str, on_later_page: bool, next: Option<&str>) -> Markup {
    html! {
        div.pager {
            @if on_later_page { a href=(first_page) { "First page" } }
            @if let Some(link) = next { a href=(link) rel="next" { "Next page" } }
        }
    }
}

/// What a destructive form sends: the text the person typed to confirm.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TypedConfirmation {
    pub(crate) confirm: String,
}

/// A destructive action's form: the button stays disabled until `expected` is typed (the
/// handler checks it again); `error` when the last attempt typed something else.
pub(crate) fn typed_confirmation(
    action: &str,
    what: &str,
    expected: &str,
    error: Option<&str>,
    button: &str,
    keep_href: &str,
) -> Markup {
    html! {
        form method="post" action=(action) {
            label for="confirm" { "Type the " (what) ", " span.mono { (expected) } ", to confirm" }
            input #confirm type="text" name="confirm" autocomplete="off" data-confirm-text=(expected) required;
            @if let Some(e) = error { div.field-error role="alert" { (e) } }
            div.actions { button.danger type="submit" { (button) } a href=(keep_href) { "Keep it" } }
        }
    }
}

/// A path segment or query value, percent-encoded: ids may hold `/`, `?`, `#`, spaces and
/// any visible character.
pub(crate) fn urlencode(segment: &str) -> String {
    crate::db::percent_encode(segment)
}

/// Whether htmx asked for a fragment (a search as you type), not a whole page.
pub(crate) fn wants_fragment(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-boosted")
}
