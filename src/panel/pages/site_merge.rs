//! What a save writes: exactly the fields the person changed, merged three-way with what
//! others saved meanwhile.
//!
//! The form carries the version it was drawn from (the base). A field counts as untouched when
//! the browser sent back the base's value *as a browser sends it* — an `<input>` drops CR and
//! LF, a `<textarea>` sends every line break as CR LF — so a stored value the browser cannot show
//! faithfully is never rewritten unless the person edits that field. Each touched field is then
//! merged with the current row ("theirs"): when they did not change it, yours lands; when both
//! changed it differently, the person chooses.

use maud::{Markup, html};

use crate::{
    models::Site,
    models::change::SiteChange,
    panel::html::{optional, time},
};

use super::{
    site_form::{
        FIELDS, FieldErrors, FormKind, SiteForm, Values, as_browser_sends, browser_newlines, render_with,
    },
    site_history::prompt_diff,
};

/// A field both people changed, differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldConflict {
    pub(crate) field: &'static str,
    /// The value at the form's version (`None`: that version is no longer in the history).
    pub(crate) base: Option<String>,
    pub(crate) theirs: String,
    pub(crate) yours: String,
}

/// The outcome of merging a form into the current row.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Merge {
    /// The fields to write, with the person's values.
    pub(crate) write: Values,
    /// Fields someone else changed since the form's version, kept as they saved them.
    pub(crate) theirs_kept: Vec<&'static str>,
    /// Fields both changed: nothing is written until the person chooses.
    pub(crate) conflicts: Vec<FieldConflict>,
}

/// Merges `yours` (as the browser posted it) drawn from `base` into `theirs` (the row now).
/// `base` is `None` when the form's version is no longer in the history: then every field
/// that differs from theirs is a question. Fields the merge page asked about (`ask`) need the
/// person's choice, made against the current version; until then they are asked again, with
/// `started` (the version the person began editing from) as their base.
pub(crate) fn merge(
    yours: &SiteForm,
    base: Option<&SiteForm>,
    started: Option<&SiteForm>,
    theirs: &Site,
) -> Merge {
    let theirs_form = SiteForm::from_site(theirs);
    let choices_apply = yours.theirs_version == Some(theirs.version);
    let mut merge = Merge::default();
    for (field, _, _) in FIELDS {
        let field: &'static str = field;
        let theirs_value = theirs_form.value(field);
        let base_value = base.map(|b| b.value(field));
        let submitted = yours.value(field);
        let mine = normalised(field, submitted, theirs_value);
        let choice = choices_apply.then(|| yours.choice(field)).flatten();
        if yours.asked(field) {
            match choice {
                Some("theirs") => {}
                Some("yours") if mine != theirs_value => {
                    merge.write.insert(field, mine);
                }
                Some("yours") => {}
                _ if mine == theirs_value => {}
                _ => merge.conflicts.push(FieldConflict {
                    field,
                    base: started.or(base).map(|b| b.value(field).to_owned()),
                    theirs: theirs_value.to_owned(),
                    yours: mine,
                }),
            }
            continue;
        }
        let theirs_changed = base_value != Some(theirs_value);
        let untouched = submitted == as_browser_sends(field, base_value.unwrap_or(theirs_value));
        if untouched || mine == theirs_value {
            if theirs_changed && base_value.is_some() {
                merge.theirs_kept.push(field);
            }
            continue;
        }
        match (theirs_changed, choice) {
            (false, _) | (true, Some("yours")) => {
                merge.write.insert(field, mine);
            }
            (true, Some("theirs")) => merge.theirs_kept.push(field),
            (true, _) => merge.conflicts.push(FieldConflict {
                field,
                base: base_value.map(str::to_owned),
                theirs: theirs_value.to_owned(),
                yours: mine,
            }),
        }
    }
    merge
}

/// A submitted value as it would be stored: host names and tags without surrounding spaces, a
/// prompt's line ends as typed (LF), or exactly `theirs` when it equals it but for line ends.
fn normalised(field: &str, submitted: &str, theirs: &str) -> String {
    match field {
        "domain" | "language" => submitted.trim().to_owned(),
        "ai_prompt" => browser_newlines(submitted, Some(theirs)),
        _ => submitted.to_owned(),
    }
}

/// Who changed `field` in the versions after `since` (oldest first, each once).
pub(crate) fn changed_by(history: &[SiteChange], since: i64, field: &str) -> Vec<String> {
    let mut who: Vec<String> = Vec::new();
    for change in history.iter().filter(|c| c.version > since) {
        if change.changed_fields.iter().any(|f| f == field) && !who.contains(&change.actor) {
            who.push(change.actor.clone());
        }
    }
    who
}

fn label_of(field: &str) -> &'static str {
    FIELDS.iter().find(|(name, _, _)| *name == field).map(|(_, label, _)| *label).unwrap_or("field")
}

/// The merge page's form: it builds on their version — their kept changes as saved, yours
/// merged in, the fields you both changed as you typed them and named in `ask`, so that the
/// save needs a choice for each; an edit made there counts against their version, like any edit.
pub(crate) fn rebased(merged: &Merge, theirs: &Site, yours: &SiteForm, started_from: i64) -> SiteForm {
    let theirs_form = SiteForm::from_site(theirs);
    let mut form = SiteForm {
        version: Some(theirs.version),
        theirs_version: Some(theirs.version),
        started_from: Some(started_from),
        ask: merged.conflicts.iter().map(|c| c.field).collect::<Vec<_>>().join(","),
        ..yours.clone()
    };
    for (field, _, _) in FIELDS {
        let asked = merged.conflicts.iter().any(|c| c.field == *field);
        match merged.write.get(field) {
            Some(mine) => form.set(field, mine),
            None if !asked => form.set(field, theirs_form.value(field)),
            None => {}
        }
    }
    form.notes = theirs_form.notes;
    form
}

/// The merge page: what landed from whom, and for each field both people changed the base,
/// theirs and yours side by side (the prompt as a line diff of each against the base), with a
/// choice that names whose change it keeps and whose it discards. The form still holds your
/// values and the version you started from: nothing is lost, nothing written until you choose.
pub(crate) fn merge_view(
    merged: &Merge,
    history: &[SiteChange],
    theirs: &Site,
    yours: &SiteForm,
    me: &str,
) -> Markup {
    let base_version = yours.started_from.or(yours.version).unwrap_or(0);
    let since: Vec<&SiteChange> = history.iter().filter(|c| c.version > base_version).collect();
    let who = |field: &str| {
        let names: Vec<String> = changed_by(history, base_version, field)
            .into_iter()
            .map(|name| if name == me { format!("{name} (you, in another window)") } else { name })
            .collect();
        if names.is_empty() { vec!["someone".to_owned()] } else { names }
    };
    let possessive =
        |names: &[String]| names.iter().map(|n| format!("{n}'s")).collect::<Vec<_>>().join(" and ");
    let form = rebased(merged, theirs, yours, base_version);
    let choices = html! {
        @for conflict in &merged.conflicts {
            @let label = label_of(conflict.field);
            @let names = who(conflict.field);
            @let them = names.join(" and ");
            @let theirs_possessive = possessive(&names);
            fieldset.merge id=(format!("merge-{}", conflict.field)) {
                legend { (label) ": changed by you and by " (them) }
                @if conflict.field == "ai_prompt" {
                    @let base = conflict.base.clone().unwrap_or_default();
                    p.muted { "Their prompt against version " (base_version) ":" }
                    (prompt_diff(&base, &conflict.theirs))
                    p.muted { "Yours against version " (base_version) ":" }
                    (prompt_diff(&base, &conflict.yours))
                } @else {
                    div.table-wrap { table {
                        tbody {
                            tr { th { "version " (base_version) " (where you started)" } td { @match conflict.base.as_deref() { Some(v) => (optional(Some(v))), None => "(no longer in the history)" } } }
                            tr { th { "version " (theirs.version) " (" (them) ")" } td.theirs { (optional(Some(&conflict.theirs))) } }
                            tr { th { "yours" } td.yours { (optional(Some(&conflict.yours))) } }
                        }
                    } }
                }
                @let name = format!("keep_{}", conflict.field);
                label.choice { input type="radio" name=(name) value="theirs" required; " Keep " (theirs_possessive) " " (label) }
                label.choice { input type="radio" name=(name) value="yours" required; " Keep mine — discards " (theirs_possessive) " change to " (label) }
            }
        }
    };
    html! {
        div.notice.warn role="alert" {
            strong { "Not saved yet: this site changed while you were editing it." }
            " You started from version " (base_version) "; it is now at version " (theirs.version)
            @if !since.is_empty() {
                " ("
                @for (i, change) in since.iter().enumerate() {
                    @if i > 0 { "; " }
                    "version " (change.version) " by " strong { (change.actor) } " at " (time(change.changed_at))
                    @if !change.changed_fields.is_empty() { ": " (change.changed_fields.join(", ")) }
                }
                ")"
            }
            ". "
            @if !merged.theirs_kept.is_empty() {
                "Their changes to " (merged.theirs_kept.iter().map(|f| label_of(f)).collect::<Vec<_>>().join(", ")) " are kept. "
            }
            @if !merged.write.is_empty() {
                "Your changes to " (merged.write.keys().map(|f| label_of(f)).collect::<Vec<_>>().join(", ")) " merge with them. "
            }
            "You both changed " (merged.conflicts.iter().map(|c| label_of(c.field)).collect::<Vec<_>>().join(", ")) ": choose below, then save."
        }
        (render_with(
            &FormKind::Edit { site_id: &theirs.site_id },
            &form,
            &FieldErrors::new(),
            false,
            choices,
            Some("Save with these choices"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::panel::pages::site_form::unfaithful;

    fn site(version: i64, brand: &str, prompt: &str, language: &str) -> Site {
        Site {
            site_id: "s".into(),
            domain: "s.example.com".into(),
            ai_script_id: None,
            ai_prompt: Some(prompt.into()),
            brand_name: Some(brand.into()),
            language: language.into(),
            hubspot_pipeline: None,
            hubspot_stage: None,
            created_at: Utc::now(),
            version,
        }
    }

    /// What a browser posts for a form drawn from `site`, untouched.
    fn posted(site: &Site) -> SiteForm {
        posted_form(&SiteForm::from_site(site))
    }

    /// What a browser posts for `drawn`, untouched.
    fn posted_form(drawn: &SiteForm) -> SiteForm {
        let mut form = drawn.clone();
        for (field, _, _) in FIELDS {
            let sent = as_browser_sends(field, form.value(field));
            form.set(field, &sent);
        }
        form
    }

    #[test]
    fn values_a_browser_cannot_show_are_kept_unless_edited() {
        let stored = site(1, "Line\nbreak", "lone\rCR and\r\nCRLF", "en");
        let base = SiteForm::from_site(&stored);
        let mut form = posted(&stored);
        assert_eq!(form.brand_name, "Linebreak");
        assert_eq!(form.ai_prompt, "lone\r\nCR and\r\nCRLF");
        assert_eq!(
            merge(&form, Some(&base), None, &stored),
            Merge::default(),
            "an untouched form writes nothing"
        );
        form.set("language", "de");
        let merged = merge(&form, Some(&base), None, &stored);
        assert_eq!(merged.write, Values::from([("language", "de".to_owned())]), "only the language");
        form.set("brand_name", "Linebreak!");
        assert_eq!(merge(&form, Some(&base), None, &stored).write["brand_name"], "Linebreak!");
        assert!(unfaithful("brand_name", "Line\nbreak").unwrap().contains("a line break"));
        assert!(unfaithful("ai_prompt", "lone\rCR").unwrap().contains("CR"));
        assert_eq!(unfaithful("ai_prompt", "two\nlines\tand a tab"), None);
        assert!(unfaithful("hubspot_stage", "esc\u{1b}[2J").unwrap().contains("U+001B"));
    }

    #[test]
    fn changes_to_different_fields_merge_and_the_same_field_asks() {
        let base_site = site(1, "Brand", "Prompt", "en");
        let base = SiteForm::from_site(&base_site);
        let theirs = site(2, "Their brand", "Prompt", "en");
        let mut mine = posted(&base_site);
        mine.set("language", "de");
        let merged = merge(&mine, Some(&base), None, &theirs);
        assert_eq!(merged.write, Values::from([("language", "de".to_owned())]));
        assert_eq!(merged.theirs_kept, ["brand_name"]);
        assert!(merged.conflicts.is_empty());

        mine.set("brand_name", "My brand");
        let merged = merge(&mine, Some(&base), None, &theirs);
        assert_eq!(
            merged.conflicts,
            [FieldConflict {
                field: "brand_name",
                base: Some("Brand".into()),
                theirs: "Their brand".into(),
                yours: "My brand".into()
            }]
        );
        // The same value on both sides is no conflict.
        mine.set("brand_name", "Their brand");
        assert!(merge(&mine, Some(&base), None, &theirs).conflicts.is_empty());

        // Choices count only against the version they were made on.
        mine.set("brand_name", "My brand");
        mine.keep_brand_name = Some("yours".into());
        assert_eq!(merge(&mine, Some(&base), None, &theirs).conflicts.len(), 1, "made against no version");
        mine.theirs_version = Some(2);
        let merged = merge(&mine, Some(&base), None, &theirs);
        assert_eq!(merged.write.get("brand_name").map(String::as_str), Some("My brand"));
        assert!(merged.theirs_kept.is_empty());
        mine.keep_brand_name = Some("theirs".into());
        let merged = merge(&mine, Some(&base), None, &theirs);
        assert_eq!(merged.write, Values::from([("language", "de".to_owned())]));
        assert!(merged.conflicts.is_empty());
    }

    #[test]
    fn an_edit_made_on_the_merge_page_counts_and_an_asked_field_needs_its_choice() {
        let started = site(7, "Brand", "Prompt", "en");
        let mut theirs = site(8, "Olga's brand", "Prompt", "en");
        theirs.hubspot_pipeline = Some("sales".into());
        theirs.hubspot_stage = Some("won".into());
        let mut mine = posted(&started);
        mine.set("brand_name", "Bob's brand");
        mine.set("ai_script_id", "script-bob");
        let asked = merge(&mine, Some(&SiteForm::from_site(&started)), None, &theirs);
        assert_eq!(asked.conflicts.len(), 1);
        // The merge page's form, as the browser posts it back: bob keeps his brand and clears
        // the stage that Olga set (shown as she saved it).
        let mut page = posted_form(&rebased(&asked, &theirs, &mine, 7));
        assert_eq!((page.version, page.started_from, page.ask.as_str()), (Some(8), Some(7), "brand_name"));
        assert_eq!(page.hubspot_stage, "won");
        page.set("hubspot_stage", "");
        let base = SiteForm::from_site(&theirs);
        let start = SiteForm::from_site(&started);
        let unchosen = merge(&page, Some(&base), Some(&start), &theirs);
        assert_eq!(unchosen.conflicts.len(), 1, "no choice: asked again");
        assert_eq!(unchosen.conflicts[0].base.as_deref(), Some("Brand"), "against where bob started");
        page.keep_brand_name = Some("yours".into());
        let merged = merge(&page, Some(&base), Some(&start), &theirs);
        assert_eq!(
            merged.write,
            Values::from([
                ("ai_script_id", "script-bob".to_owned()),
                ("brand_name", "Bob's brand".to_owned()),
                ("hubspot_stage", String::new()),
            ])
        );
        page.keep_brand_name = Some("theirs".into());
        assert!(!merge(&page, Some(&base), Some(&start), &theirs).write.contains_key("brand_name"));
    }

    #[test]
    fn without_the_base_every_difference_is_a_question() {
        let theirs = site(5, "Brand", "Prompt", "en");
        let mut mine = posted(&theirs);
        assert_eq!(merge(&mine, None, None, &theirs), Merge::default());
        mine.set("ai_prompt", "Mine");
        let merged = merge(&mine, None, None, &theirs);
        assert_eq!(merged.conflicts.len(), 1);
        assert_eq!(merged.conflicts[0].base, None);
    }
}
