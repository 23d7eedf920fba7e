//! The site form: what a browser sends, how it becomes a `NewSite` or a `SitePatch` (every
//! field checked, every problem reported next to its field in the model's words), and how the
//! form is drawn (also inside the merge page, `site_merge`).

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    data::DataError,
    models::{Domain, FieldError, LanguageTag, Site, SiteId},
    panel::html::urlencode,
    sites::{NewSite, SitePatch},
};

/// The fields as a browser posts them (all text; a missing one is empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SiteForm {
    pub(crate) site_id: String,
    pub(crate) domain: String,
    pub(crate) ai_script_id: String,
    pub(crate) ai_prompt: String,
    pub(crate) brand_name: String,
    pub(crate) language: String,
    pub(crate) hubspot_pipeline: String,
    pub(crate) hubspot_stage: String,
    /// The version the form was filled from (editing only): the base of a three-way merge.
    pub(crate) version: Option<i64>,
    /// On the merge page: the version the choices below were made against.
    pub(crate) theirs_version: Option<i64>,
    /// On the merge page: the version the person began editing from (the merge's mark).
    pub(crate) started_from: Option<i64>,
    /// On the merge page: the fields both changed, comma-separated; each needs a choice.
    pub(crate) ask: String,
    /// On the merge page, per field both people changed: `theirs` or `yours`.
    pub(crate) keep_domain: Option<String>,
    pub(crate) keep_brand_name: Option<String>,
    pub(crate) keep_language: Option<String>,
    pub(crate) keep_ai_script_id: Option<String>,
    pub(crate) keep_ai_prompt: Option<String>,
    pub(crate) keep_hubspot_pipeline: Option<String>,
    pub(crate) keep_hubspot_stage: Option<String>,
    /// Per field, why the stored value cannot be shown faithfully (never read from a browser).
    #[serde(skip)]
    pub(crate) notes: BTreeMap<&'static str, String>,
    /// Drawn with values not saved yet (a refusal, a merge, a deleted site): leaving warns.
    #[serde(skip)]
    pub(crate) unsaved: bool,
}

/// Problems by field name (`"form"` for one that belongs to no field).
pub(crate) type FieldErrors = BTreeMap<&'static str, String>;

/// The editable fields, in the order the form shows them: (name, label, hint).
pub(crate) const FIELDS: &[(&str, &str, &str)] = &[
    ("domain", "Domain", "the site's host name, e.g. shop.example.com"),
    ("brand_name", "Brand name", ""),
    ("language", "Language", "a language tag: en, de, pt-BR"),
    ("ai_script_id", "AI script id", ""),
    ("ai_prompt", "AI prompt", "kept exactly as typed, newlines included"),
    ("hubspot_pipeline", "HubSpot pipeline", ""),
    ("hubspot_stage", "HubSpot stage", "needs a pipeline"),
];

impl SiteForm {
    pub(crate) fn from_site(site: &Site) -> SiteForm {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        SiteForm {
            site_id: site.site_id.clone(),
            domain: site.domain.clone(),
            ai_script_id: text(&site.ai_script_id),
            ai_prompt: text(&site.ai_prompt),
            brand_name: text(&site.brand_name),
            language: site.language.clone(),
            hubspot_pipeline: text(&site.hubspot_pipeline),
            hubspot_stage: text(&site.hubspot_stage),
            version: Some(site.version),
            ..SiteForm::default()
        }
        .with_notes()
    }

    /// Marks every field whose value a browser cannot show faithfully.
    pub(crate) fn with_notes(mut self) -> SiteForm {
        self.notes = FIELDS
            .iter()
            .filter_map(|(name, _, _)| unfaithful(name, self.value(name)).map(|n| (*name, n)))
            .collect();
        self
    }

    /// The form as a version of the history recorded the row (its JSON).
    pub(crate) fn from_row(row: &serde_json::Value, version: i64) -> SiteForm {
        let text = |name: &str| row.get(name).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        SiteForm {
            site_id: text("site_id"),
            domain: text("domain"),
            ai_script_id: text("ai_script_id"),
            ai_prompt: text("ai_prompt"),
            brand_name: text("brand_name"),
            language: text("language"),
            hubspot_pipeline: text("hubspot_pipeline"),
            hubspot_stage: text("hubspot_stage"),
            version: Some(version),
            ..SiteForm::default()
        }
        .with_notes()
    }

    /// Whether the merge page asked about `field` (it needs a choice).
    pub(crate) fn asked(&self, field: &str) -> bool {
        self.ask.split(',').any(|asked| asked == field)
    }

    /// What the person chose on the merge page for a field both changed.
    pub(crate) fn choice(&self, field: &str) -> Option<&str> {
        let choice = match field {
            "domain" => &self.keep_domain,
            "brand_name" => &self.keep_brand_name,
            "language" => &self.keep_language,
            "ai_script_id" => &self.keep_ai_script_id,
            "ai_prompt" => &self.keep_ai_prompt,
            "hubspot_pipeline" => &self.keep_hubspot_pipeline,
            "hubspot_stage" => &self.keep_hubspot_stage,
            _ => &None,
        };
        choice.as_deref()
    }

    /// Sets one editable field (unknown names are ignored).
    pub(crate) fn set(&mut self, field: &str, value: &str) {
        let slot = match field {
            "domain" => &mut self.domain,
            "brand_name" => &mut self.brand_name,
            "language" => &mut self.language,
            "ai_script_id" => &mut self.ai_script_id,
            "ai_prompt" => &mut self.ai_prompt,
            "hubspot_pipeline" => &mut self.hubspot_pipeline,
            "hubspot_stage" => &mut self.hubspot_stage,
            _ => return,
        };
        *slot = value.to_owned();
    }

    pub(crate) fn value(&self, field: &str) -> &str {
        match field {
            "site_id" => &self.site_id,
            "domain" => &self.domain,
            "ai_script_id" => &self.ai_script_id,
            "ai_prompt" => &self.ai_prompt,
            "brand_name" => &self.brand_name,
            "language" => &self.language,
            "hubspot_pipeline" => &self.hubspot_pipeline,
            "hubspot_stage" => &self.hubspot_stage,
            _ => "",
        }
    }

    /// A new site, or every problem with the form.
    pub(crate) fn to_new_site(&self) -> Result<NewSite, FieldErrors> {
        let mut errors = FieldErrors::new();
        let site_id = collect(&mut errors, SiteId::parse(&self.site_id));
        let domain = collect(&mut errors, Domain::parse(self.domain.trim()));
        let language = collect(&mut errors, LanguageTag::parse(self.language.trim()));
        let optional = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let (Some(site_id), Some(domain), Some(language)) = (site_id, domain, language) else {
            return Err(errors);
        };
        let site = NewSite {
            site_id,
            domain,
            ai_script_id: optional(&self.ai_script_id),
            ai_prompt: optional(&browser_newlines(&self.ai_prompt, None)),
            brand_name: optional(&self.brand_name),
            language,
            hubspot_pipeline: optional(&self.hubspot_pipeline),
            hubspot_stage: optional(&self.hubspot_stage),
        };
        site.validate().map_err(one)?;
        Ok(site)
    }
}

/// Field values by name, as a form would write them.
pub(crate) type Values = BTreeMap<&'static str, String>;

/// The change from `stored` to `values` (fields absent from `values` stay as they are): only
/// fields that differ, each checked, every problem reported next to its field. A prompt's CR LF
/// line ends — which browsers turn every line end into — never rewrite a prompt that did not
/// change.
pub(crate) fn patch_of(values: &Values, stored: &Site) -> Result<SitePatch, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut patch = SitePatch::default();
    if let Some(domain) = values.get("domain").map(|v| v.trim())
        && domain != stored.domain
    {
        patch.domain = collect(&mut errors, Domain::parse(domain));
    }
    if let Some(language) = values.get("language").map(|v| v.trim())
        && language != stored.language
    {
        patch.language = collect(&mut errors, LanguageTag::parse(language));
    }
    let changed = |field: &str, stored: &Option<String>| -> Option<Option<String>> {
        let submitted = values.get(field)?;
        let submitted = if field == "ai_prompt" {
            browser_newlines(submitted, stored.as_deref())
        } else {
            submitted.clone()
        };
        let now = (!submitted.is_empty()).then_some(submitted);
        let before = stored.clone().filter(|s| !s.is_empty());
        (now != before).then_some(now)
    };
    patch.ai_script_id = changed("ai_script_id", &stored.ai_script_id);
    patch.ai_prompt = changed("ai_prompt", &stored.ai_prompt);
    patch.brand_name = changed("brand_name", &stored.brand_name);
    patch.hubspot_pipeline = changed("hubspot_pipeline", &stored.hubspot_pipeline);
    patch.hubspot_stage = changed("hubspot_stage", &stored.hubspot_stage);
    if let Err(e) = patch.validate() {
        errors.insert(e.field, e.reason);
    }
    let stage = patch.hubspot_stage.clone().unwrap_or(stored.hubspot_stage.clone());
    let pipeline = patch.hubspot_pipeline.clone().unwrap_or(stored.hubspot_pipeline.clone());
    if stage.is_some() && pipeline.is_none() {
        errors.insert(
            "hubspot_stage",
            "is set but hubspot_pipeline is not: a stage belongs to a pipeline".into(),
        );
    }
    if errors.is_empty() { Ok(patch) } else { Err(errors) }
}

fn collect<T>(errors: &mut FieldErrors, result: Result<T, FieldError>) -> Option<T> {
    result.map_err(|e| errors.insert(e.field, e.reason)).ok()
}

fn one(error: FieldError) -> FieldErrors {
    FieldErrors::from([(error.field, error.reason)])
}

/// A text area's value as typed: browsers send every line end as CR LF. When it equals the
/// stored text but for line ends, the stored text is kept exactly; otherwise line ends are LF.
pub(crate) fn browser_newlines(submitted: &str, stored: Option<&str>) -> String {
    let typed = submitted.replace("\r\n", "\n");
    match stored {
        Some(stored) if stored.replace("\r\n", "\n") == typed => stored.to_owned(),
        _ => typed,
    }
}

/// What a browser submits for `stored` shown in `field`'s control, untouched.
pub(crate) fn as_browser_sends(field: &str, stored: &str) -> String {
    if field == "ai_prompt" {
        // The HTML parser turns CR LF and a lone CR into LF; submission makes each LF CR LF.
        stored.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
    } else {
        // An <input>'s value sanitisation strips line breaks.
        stored.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
    }
}

/// Why `stored` cannot be shown faithfully in `field`'s control, if it cannot: the page marks
/// the field, and the value is kept unless the person edits it.
pub(crate) fn unfaithful(field: &str, stored: &str) -> Option<String> {
    let controls: Vec<String> = stored
        .chars()
        .filter(|c| c.is_control() && !(field == "ai_prompt" && matches!(c, '\n' | '\t')))
        .map(|c| match c {
            '\r' => "CR".to_owned(),
            '\n' => "a line break".to_owned(),
            '\t' => "a tab".to_owned(),
            other => format!("U+{:04X}", other as u32),
        })
        .collect();
    if controls.is_empty() {
        return None;
    }
    let mut names = controls;
    names.sort();
    names.dedup();
    Some(format!(
        "The stored value holds {} that this form cannot show as stored; it is kept as it is unless you edit this field.",
        names.join(", ")
    ))
}

/// The site's fields a form holds: every column but `created_at`, which the database sets.
pub(crate) fn field_names() -> Vec<&'static str> {
    Site::COLUMNS.into_iter().filter(|c| *c != "created_at").collect()
}

/// A database refusal (a named constraint) as a problem of the field it guards.
pub(crate) fn errors_of(error: &DataError) -> Option<FieldErrors> {
    match error {
        DataError::Invalid(e) => Some(one(e.clone())),
        DataError::Rejected { constraint, message, .. } => {
            let field = field_names()
                .into_iter()
                .filter(|f| constraint.starts_with(&format!("sites_{f}")))
                .max_by_key(|f| f.len())
                // The primary key guards the id.
                .unwrap_or(if constraint == "sites_pkey" { "site_id" } else { "form" });
            Some(FieldErrors::from([(field, message.clone())]))
        }
        _ => None,
    }
}

/// Where a form posts, and what it is for.
pub(crate) enum FormKind<'a> {
    Create,
    Edit { site_id: &'a str },
}

/// The site form with `errors` next to their fields. `readonly`: a viewer's view.
pub(crate) fn render(kind: &FormKind, form: &SiteForm, errors: &FieldErrors, readonly: bool) -> Markup {
    render_with(kind, form, errors, readonly, html! {}, None)
}

/// The site form with `inside` drawn at its top (the merge page's choices) and its own label
/// for the button.
pub(crate) fn render_with(
    kind: &FormKind,
    form: &SiteForm,
    errors: &FieldErrors,
    readonly: bool,
    inside: Markup,
    button: Option<&str>,
) -> Markup {
    if readonly {
        return html! {
            dl.fields {
                @for (name, label, _) in FIELDS {
                    dt { (label) }
                    dd {
                        @if *name == "ai_prompt" { pre.prompt { (form.ai_prompt) } }
                        @else { (crate::panel::html::optional(Some(form.value(name)))) }
                    }
                }
            }
        };
    }
    let (action, check) = match kind {
        FormKind::Create => ("/sites".to_owned(), "/sites/check".to_owned()),
        FormKind::Edit { site_id } => {
            (format!("/sites/{}", urlencode(site_id)), format!("/sites/{}/check", urlencode(site_id)))
        }
    };
    html! {
        // Each field, when changed, posts the whole form to the check (htmx's inline
        // validation); the answer fills the list above the form and each field's slot.
        // data-unsaved: leaving the page with changes asks first (assets/panel.js).
        form method="post" action=(action) hx-target="#form-problems" hx-swap="innerHTML"
            data-unsaved=(if form.unsaved { "pending" } else { "warn" }) {
            div #form-problems { (problems(errors)) }
            @if let Some(version) = form.version { input type="hidden" name="version" value=(version); }
            @if let Some(version) = form.theirs_version { input type="hidden" name="theirs_version" value=(version); }
            @if let Some(version) = form.started_from { input type="hidden" name="started_from" value=(version); }
            @if !form.ask.is_empty() { input type="hidden" name="ask" value=(form.ask); }
            (inside)
            @if matches!(kind, FormKind::Create) {
                label for="site_id" { "Site id " span.hint { "1-200 characters, no spaces at either end; cannot change later" } }
                input #site_id type="text" name="site_id" value=(form.site_id) required autocomplete="off"
                    hx-post=(check) hx-include="closest form";
                (field_error("site_id", errors))
            }
            @for (name, label, hint) in FIELDS {
                label for=(name) { (label) " " span.hint { (hint) } }
                @if *name == "ai_prompt" {
                    textarea #ai_prompt.prompt name="ai_prompt" spellcheck="false" hx-post=(check) hx-include="closest form" {
                        // A newline right after the tag is dropped by HTML parsers: this one
                        // is that newline, so a prompt that starts with one keeps it.
                        "\n" (form.ai_prompt)
                    }
                    output.hint data-count-for="ai_prompt" { (form.ai_prompt.chars().count()) " characters" }
                } @else {
                    input id=(name) type="text" name=(name) value=(form.value(name)) autocomplete="off"
                        hx-post=(check) hx-include="closest form";
                }
                @if let Some(note) = form.notes.get(name) { div.field-note role="note" { (note) } }
                (field_error(name, errors))
            }
            div.actions { button type="submit" {
                @if let Some(label) = button { (label) }
                @else if matches!(kind, FormKind::Create) { "Create site" } @else { "Save" }
            } }
        }
    }
}

/// A problem's sentence after its field's name: the database's sentences begin with the name
/// already ("domain must be …"), cabinet-db's own do not ("is taken: …").
fn without_field<'a>(field: &str, reason: &'a str) -> &'a str {
    reason.strip_prefix(field).and_then(|rest| rest.strip_prefix(' ')).unwrap_or(reason)
}

/// The problems of a form, as the list above it and (out of band, for htmx) next to fields.
pub(crate) fn problems(errors: &FieldErrors) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.notice.error role="alert" {
                "Nothing was saved:"
                ul { @for (field, reason) in errors { li { strong { (field) } " " (without_field(field, reason)) } } }
            }
        }
    }
}

fn field_error(field: &str, errors: &FieldErrors) -> Markup {
    html! {
        div.field-error id=(format!("error-{field}")) {
            @if let Some(reason) = errors.get(field) { (field) " " (without_field(field, reason)) }
        }
    }
}

/// The answer to htmx's check of a form: the list, and each field's slot swapped out of band.
pub(crate) fn check_response(errors: &FieldErrors, fields: &[&str]) -> Markup {
    html! {
        (problems(errors))
        @for field in fields {
            div.field-error id=(format!("error-{field}")) hx-swap-oob="true" {
                @if let Some(reason) = errors.get(field) { (field) " " (without_field(field, reason)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_line_ends_never_rewrite_an_unchanged_prompt() {
        assert_eq!(browser_newlines("a\r\nb", Some("a\r\nb")), "a\r\nb");
        assert_eq!(browser_newlines("a\r\nb", Some("a\nb")), "a\nb");
        assert_eq!(browser_newlines("a\r\nb\r\nc", Some("a\nb")), "a\nb\nc");
        assert_eq!(browser_newlines("\r\n\r\nx", None), "\n\nx");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(urlencode("acme-1.x_y"), "acme-1.x_y");
        assert_eq!(urlencode("a/b?c#d é"), "a%2Fb%3Fc%23d%20%C3%A9");
    }
}
