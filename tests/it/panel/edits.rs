//! No edit lost or rewritten by accident, in Chromium (loopback, development identities): a
//! one-field save writes that field only whatever the browser does to the others; changes to
//! different fields merge; the same field asks, naming whose change a choice discards; a save
//! into a site deleted meanwhile keeps the typed text; leaving a half-edited page asks first.

use fantoccini::Locator;
use serde_json::json;

use super::{PanelProcess, browser::stored, chromium::Browser};
use crate::harness::TestDb;

/// The newest version's changed fields and actor.
async fn latest_change(db: &TestDb, site: &str) -> serde_json::Value {
    stored(
        db,
        &format!(
            "SELECT version, actor, changed_fields, merges_version FROM sites_history WHERE site_id = '{site}' ORDER BY version DESC LIMIT 1"
        ),
    )
    .await
}

#[tokio::test]
async fn a_one_field_save_writes_that_field_only_whatever_the_browser_does_to_the_others() {
    let db = TestDb::migrated().await;
    // Written by psql or an import: lone CRs and CR LFs in the prompt, which a text area shows
    // as line breaks and sends back as CR LF. (One-line fields cannot hold a line break: the
    // database refuses it, `sites_brand_name_one_line`.)
    db.exec(
        "INSERT INTO sites (site_id, domain, brand_name, ai_prompt)
         VALUES ('odd', 'odd.example.com', E'R\\u202eTL', E'lone\\rCR, then\\r\\nCR LF\\nand LF')",
    )
    .await;
    let panel = PanelProcess::dev(&db.url, "erin@example.com=editor").await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&panel, "/sites/odd").await;
    let mut notes = Vec::new();
    for note in browser.client.find_all(Locator::Css(".field-note")).await.unwrap() {
        notes.push(note.text().await.unwrap());
    }
    assert_eq!(notes.len(), 1, "the prompt is marked: {notes:?}");
    assert!(notes[0].contains("CR") && notes[0].contains("kept"), "{notes:?}");
    browser.screenshot("site-unfaithful-values").await;

    browser.fill("#language", "de").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/odd?notice=saved").await;
    let row = stored(&db, "SELECT brand_name, ai_prompt, language FROM sites WHERE site_id = 'odd'").await;
    assert_eq!(
        row,
        json!({"brand_name": "R\u{202e}TL", "ai_prompt": "lone\rCR, then\r\nCR LF\nand LF", "language": "de"})
    );
    assert_eq!(latest_change(&db, "odd").await["changed_fields"], json!(["language"]), "one field changed");

    // Editing the field itself writes what was typed (line ends as LF).
    browser.goto(&panel, "/sites/odd").await;
    browser.paste("#ai_prompt", "new\nprompt").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/odd?notice=saved").await;
    assert_eq!(
        stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'odd'").await["ai_prompt"],
        "new\nprompt"
    );
    assert_eq!(latest_change(&db, "odd").await["changed_fields"], json!(["ai_prompt"]));
}

#[tokio::test]
async fn changes_to_different_fields_merge_and_the_same_field_asks_whose_to_keep() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain, brand_name, ai_prompt) VALUES ('duo', 'duo.example.com', 'Brand', E'one\\ntwo\\nthree')").await;
    let (first, second) = tokio::join!(
        PanelProcess::dev(&db.url, "first@example.com=editor"),
        PanelProcess::dev(&db.url, "second@example.com=editor"),
    );
    let browser = Browser::start(1280, 900).await;
    browser.goto(&first, "/sites/duo").await;
    let first_tab = browser.client.window().await.unwrap();
    let second_tab = browser.client.new_window(true).await.unwrap().handle;
    browser.client.switch_to_window(second_tab.clone()).await.unwrap();
    browser.goto(&second, "/sites/duo").await;

    // Different fields: both land, with no question.
    browser.paste("#ai_prompt", "one\ntwo\nthree\nfour").await;
    browser.client.switch_to_window(first_tab.clone()).await.unwrap();
    browser.fill("#brand_name", "First's brand").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/duo?notice=saved").await;
    browser.client.switch_to_window(second_tab.clone()).await.unwrap();
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/duo?notice=merged&from=1").await;
    assert!(browser.text(".notice").await.contains("merged"), "{}", browser.text(".notice").await);
    let row = stored(&db, "SELECT brand_name, ai_prompt FROM sites WHERE site_id = 'duo'").await;
    assert_eq!(row, json!({"brand_name": "First's brand", "ai_prompt": "one\ntwo\nthree\nfour"}));
    let merged = latest_change(&db, "duo").await;
    assert_eq!((&merged["changed_fields"], &merged["merges_version"]), (&json!(["ai_prompt"]), &json!(1)));
    browser.goto(&second, "/sites/duo/history").await;
    let listed = browser.text("table").await;
    assert!(listed.contains("merges an edit made on version 1 with version 2"), "{listed}");

    // The same field: the page asks, and each choice names whose change it keeps or discards.
    browser.goto(&second, "/sites/duo").await;
    browser.paste("#ai_prompt", "second's words").await;
    browser.client.switch_to_window(first_tab).await.unwrap();
    browser.goto(&first, "/sites/duo").await;
    browser.paste("#ai_prompt", "first's words").await;
    browser.fill("#language", "fr").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/duo?notice=saved").await;
    browser.client.switch_to_window(second_tab).await.unwrap();
    browser.fill("#hubspot_pipeline", "sales").await;
    browser.click("button[type=submit]").await;
    let asked = browser.text("#merge-ai_prompt").await;
    assert!(asked.contains("changed by you and by first@example.com"), "{asked}");
    assert!(asked.contains("Keep mine — discards first@example.com's change to AI prompt"), "{asked}");
    assert!(browser.text(".notice.warn").await.contains("first@example.com"));
    browser.screenshot("merge-asks").await;
    assert_eq!(
        stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'duo'").await["ai_prompt"],
        "first's words"
    );
    assert_eq!(browser.value("#ai_prompt").await, "second's words", "your text stays in the form");
    browser.click("#merge-ai_prompt input[value=yours]").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/duo?notice=merged&from=3").await;
    let row =
        stored(&db, "SELECT ai_prompt, language, hubspot_pipeline FROM sites WHERE site_id = 'duo'").await;
    assert_eq!(row, json!({"ai_prompt": "second's words", "language": "fr", "hubspot_pipeline": "sales"}));
}

#[tokio::test]
async fn a_save_into_a_site_deleted_meanwhile_keeps_the_text_and_can_create_it_again() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('gone', 'gone.example.com', 'Old')")
        .await;
    let panel = PanelProcess::dev(&db.url, "erin@example.com=editor").await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&panel, "/sites/gone").await;
    let typed = "A long prompt\nthat took an hour to write";
    browser.paste("#ai_prompt", typed).await;
    db.exec("BEGIN; SELECT set_config('cabinet.actor', 'dora@example.com', true); DELETE FROM sites WHERE site_id = 'gone'; COMMIT;").await;
    browser.click("button[type=submit]").await;
    let said = browser.text(".notice.warn").await;
    assert!(said.contains("deleted while you were editing") && said.contains("dora@example.com"), "{said}");
    assert_eq!(browser.value("#ai_prompt").await.replace("\r\n", "\n"), typed, "the typed text is on screen");
    browser.screenshot("saved-into-deleted").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/gone?notice=created").await;
    assert_eq!(stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'gone'").await["ai_prompt"], typed);
}

/// Records, for the next page to read, whether the page asked before it was left: ChromeDriver
/// answers "Leave site?" itself, so the test reads what the page's handler decided (a cancelled
/// `beforeunload` is what makes a browser ask).
const RECORD_ASKING: &str = "sessionStorage.removeItem('asked');
     addEventListener('beforeunload', (e) => sessionStorage.setItem('asked', String(e.defaultPrevented)));";

#[tokio::test]
async fn leaving_a_half_edited_page_asks_first_and_a_save_does_not() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('half', 'half.example.com')").await;
    let panel = PanelProcess::dev(&db.url, "erin@example.com=editor").await;
    let browser = Browser::start(1280, 900).await;
    let asked = async || browser.js("return sessionStorage.getItem('asked')").await;

    browser.goto(&panel, "/sites/half").await;
    browser.js(RECORD_ASKING).await;
    browser.click("nav a[href='/users']").await;
    browser.arrive("/users").await;
    assert_eq!(asked().await, json!("false"), "an untouched page leaves without asking");

    browser.goto(&panel, "/sites/half").await;
    browser.js(RECORD_ASKING).await;
    browser.fill("#brand_name", "Half done").await;
    browser.click("nav a[href='/users']").await;
    browser.arrive("/users").await;
    assert_eq!(asked().await, json!("true"), "leaving a half-edited page asks");

    // Typing it back as it was is no change; saving is no loss.
    browser.goto(&panel, "/sites/half").await;
    browser.fill("#brand_name", "Half done").await;
    browser.fill("#brand_name", "").await;
    browser.js(RECORD_ASKING).await;
    browser.click("nav a[href='/users']").await;
    browser.arrive("/users").await;
    assert_eq!(asked().await, json!("false"), "a field typed back as it was");
    browser.goto(&panel, "/sites/half").await;
    browser.fill("#brand_name", "Done").await;
    browser.js(RECORD_ASKING).await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/half?notice=saved").await;
    assert_eq!(asked().await, json!("false"), "a save does not ask");
    assert_eq!(
        stored(&db, "SELECT brand_name FROM sites WHERE site_id = 'half'").await["brand_name"],
        "Done"
    );

    // A form that came back unsaved (refused) asks from the start.
    browser.fill("#domain", "not a domain").await;
    browser.click("button[type=submit]").await;
    browser.text("#form-problems .notice").await;
    browser.js(RECORD_ASKING).await;
    browser.click("nav a[href='/users']").await;
    browser.arrive("/users").await;
    assert_eq!(asked().await, json!("true"), "leaving a refused form asks");
}
