//! The panel in a real browser on this host's loopback (a secure context, the fast path):
//! pages, htmx, the phone layout, markup in the data. `deployed` proves the panel the way
//! operators open it, by name from another host.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use super::{PanelProcess, chromium::Browser};
use crate::harness::TestDb;

pub async fn stored(db: &TestDb, sql: &str) -> serde_json::Value {
    let mut conn = db.conn().await;
    let value: Option<serde_json::Value> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT to_jsonb(x) FROM ({sql}) x")))
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    value.unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn an_editor_works_on_a_site_in_a_real_browser() {
    let db = TestDb::migrated().await;
    db.exec(
        r#"INSERT INTO sites (site_id, domain, brand_name, ai_prompt)
           VALUES ('xss', 'xss.example.com', '<img src=x onerror="window.__pwned=1">', '</textarea><script>window.__pwned=2</script>')"#,
    )
    .await;
    let (erin, first, second, viewer) = tokio::join!(
        PanelProcess::dev(&db.url, "erin@example.com=editor"),
        PanelProcess::dev(&db.url, "first@example.com=editor"),
        PanelProcess::dev(&db.url, "second@example.com=editor"),
        PanelProcess::dev(&db.url, "vic@example.com=viewer"),
    );
    let browser = Browser::start(1280, 900).await;

    // Create a site: the prompt with newlines and emoji; the live character count works.
    let prompt = "Hallo! 👋\n\nAntworte kurz.\n  – eingerückt";
    browser.goto(&erin, "/sites/new").await;
    // Checked as it is filled in (htmx posts the form on each change), nothing written.
    browser.fill("#domain", "not a domain").await;
    // Leaving a field fires `change`; a headless window has no focus to lose, so it is sent.
    browser.js("document.getElementById('domain').dispatchEvent(new Event('change', {bubbles: true}))").await;
    let problem = browser.text("#error-domain").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut problem = problem;
    while problem.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        problem = browser.text("#error-domain").await;
    }
    assert!(
        problem.starts_with("domain "),
        "the model's sentence next to the field: {problem:?} {}",
        erin.log_text()
    );
    browser.screenshot("site-new-checked").await;
    browser.fill("#site_id", "laden").await;
    browser.fill("#domain", "laden.example.de").await;
    browser.fill("#language", "de").await;
    browser.fill("#brand_name", "Laden").await;
    browser.paste("#ai_prompt", prompt).await;
    assert_eq!(
        browser.text("output[data-count-for=ai_prompt]").await,
        format!("{} characters", prompt.chars().count())
    );
    browser.screenshot("site-new").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/laden?notice=created").await;
    assert_eq!(stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'laden'").await["ai_prompt"], prompt);

    // Edit it: the browser sends CR LF; the stored prompt has the newlines typed, nothing else.
    let edited = format!("{prompt}\nNeue Zeile 🎉");
    browser.paste("#ai_prompt", &edited).await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/laden?notice=saved").await;
    assert!(browser.text(".notice").await.contains("version 2"));
    assert_eq!(
        stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'laden'").await["ai_prompt"],
        edited.as_str()
    );

    // The history names the person; the version page shows the diff; revert to version 1.
    browser.goto(&erin, "/sites/laden/history").await;
    assert!(browser.text("table").await.contains("erin@example.com"));
    browser.screenshot("site-history").await;
    browser.goto(&erin, "/sites/laden/history/2").await;
    browser.text(".diff").await;
    let mut added = Vec::new();
    for line in browser.client.find_all(Locator::Css(".diff .add")).await.unwrap() {
        added.push(line.text().await.unwrap());
    }
    // The old last line had no newline; the new one has, then the added line.
    assert_eq!(added, ["  – eingerückt", "Neue Zeile 🎉 (no newline at the end)"]);
    assert_eq!(browser.text(".diff .del").await, "  – eingerückt (no newline at the end)");
    browser.screenshot("site-version-diff").await;
    browser.goto(&erin, "/sites/laden/history/1").await;
    browser.click("form[action='/sites/laden/revert'] button").await;
    browser.arrive("/sites/laden/revert").await;
    browser.click("form[action='/sites/laden/revert'] button").await; // the confirmation page's
    browser.arrive("/sites/laden?notice=reverted&to=1").await;
    assert!(browser.text(".notice").await.contains("Version 1 is back, recorded as version 3"));
    assert_eq!(stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'laden'").await["ai_prompt"], prompt);

    // Search as you type (htmx, under the Content-Security-Policy).
    browser.goto(&erin, "/sites").await;
    browser.fill("input[type=search]", "lad").await;
    // Each keystroke may swap the results; the last one leaves laden alone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = browser
            .js("return Array.from(document.querySelectorAll('#results tbody a')).map(a => a.textContent)")
            .await;
        if rows == json!(["laden"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the results never narrowed to laden: {rows}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(browser.path().await.starts_with("/sites?q=lad"), "the search is in the address");
    browser.screenshot("sites-list").await;

    // Two editors on the same version: the second save shows the conflict, overwrites nothing.
    browser.goto(&first, "/sites/laden").await;
    let first_tab = browser.client.window().await.unwrap();
    let second_tab = browser.client.new_window(true).await.unwrap().handle;
    browser.client.switch_to_window(second_tab.clone()).await.unwrap();
    browser.goto(&second, "/sites/laden").await;
    browser.paste("#ai_prompt", "Second's prompt").await;
    browser.client.switch_to_window(first_tab).await.unwrap();
    browser.paste("#ai_prompt", "First's prompt").await;
    browser.click("button[type=submit]").await;
    browser.arrive("/sites/laden?notice=saved").await;
    browser.client.switch_to_window(second_tab).await.unwrap();
    browser.click("button[type=submit]").await;
    let conflict = browser.text(".notice.warn").await;
    assert!(conflict.contains("Not saved") && conflict.contains("first@example.com"), "{conflict}");
    assert_eq!(
        stored(&db, "SELECT ai_prompt FROM sites WHERE site_id = 'laden'").await["ai_prompt"],
        "First's prompt"
    );

    // A viewer sees no edit controls, and a crafted POST from the page fails.
    browser.goto(&viewer, "/sites/laden").await;
    assert!(browser.client.find_all(Locator::Css("textarea, button[type=submit]")).await.unwrap().is_empty());
    let status = browser
        .client
        .execute_async(
            "const done = arguments[0];
             fetch('/sites/laden/delete', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'confirm=laden'})
               .then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    assert_eq!(stored(&db, "SELECT count(*) AS n FROM sites WHERE site_id = 'laden'").await["n"], 1);

    // Markup in the data is shown as text and never runs.
    for path in ["/sites", "/sites/xss", "/sites/xss/history/1"] {
        browser.goto(&erin, path).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(browser.js("return window.__pwned === undefined").await, json!(true), "{path}");
    }
    browser.goto(&erin, "/sites/xss").await;
    let prompt_value =
        browser.client.find(Locator::Css("#ai_prompt")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(prompt_value.as_deref(), Some("</textarea><script>window.__pwned=2</script>"));
    browser.client.close_window().await.unwrap();
}

#[tokio::test]
async fn the_pages_fit_a_phone_and_an_import_names_its_bad_line() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain, brand_name, ai_prompt) VALUES ('a-very-long-site-identifier-for-a-narrow-screen', 'a-rather-long-subdomain.of-a-long-domain.example.com', 'Brand', 'Prompt')").await;
    db.exec("INSERT INTO users (user_id, email) VALUES ('u1', 'someone@example.com')").await;
    let admin = PanelProcess::dev(&db.url, "ann@example.com=admin").await;
    let phone = Browser::start(375, 800).await;
    phone.goto(&admin, "/").await;
    assert_eq!(phone.js("return window.innerWidth").await, json!(375));
    for (path, shot) in [
        ("/", "dashboard-phone"),
        ("/sites", "sites-phone"),
        ("/sites/a-very-long-site-identifier-for-a-narrow-screen", "site-phone"),
        ("/users", "users-phone"),
        ("/transfer", "transfer-phone"),
    ] {
        phone.goto(&admin, path).await;
        phone.text("h1").await;
        let overflow = phone
            .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert_eq!(overflow, json!(0), "{path} is wider than a 375 px screen");
        phone.screenshot(shot).await;
    }

    // Import a file with one bad line: the line is named, nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.csv");
    std::fs::write(&file, "site_id,domain,language\nn1,n1.example.com,en\nn2,n2.example.com,english!\n")
        .unwrap();
    phone.goto(&admin, "/transfer").await;
    phone.client.find(Locator::Css("#file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    phone.click("form[action='/transfer/import'] button").await;
    phone.arrive("/transfer/import").await;
    let report = phone.text("main").await;
    assert!(report.contains("nothing was written") && report.contains("english!"), "{report}");
    let line = phone.text("main table tbody tr td").await;
    assert_eq!(line, "3", "{report}");
    phone.screenshot("import-refused-phone").await;
    assert_eq!(stored(&db, "SELECT count(*) AS n FROM sites WHERE site_id LIKE 'n_'").await["n"], 0);
}
