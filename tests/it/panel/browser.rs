//! The panel in a real browser: Debian's Chromium, headless, driven through ChromeDriver
//! (WebDriver) by fantoccini. Fails, never skips, when the browser is missing
//! (`scripts/setup tests` installs `chromium` and `chromium-driver`).
//!
//! Screenshots land in `$CABINET_SCREENSHOTS_DIR` when set (docs/admin-panel.md shows them).

use std::{
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::PanelProcess;
use crate::harness::TestDb;

/// A headless Chromium behind its own ChromeDriver; both are killed when dropped.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // ChromeDriver and the Chromium it started share a process group of their own.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.driver.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start(width: u32, height: u32) -> Browser {
        for tool in ["chromedriver", "chromium"] {
            assert!(
                Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok(),
                "{tool} is missing: scripts/setup tests installs Debian's chromium and chromium-driver"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                // As root (CI) Chromium needs --no-sandbox; the rest keeps it off the network
                // (this machine's is closed) and quiet.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ],
                // A window cannot be narrower than 500 px: a phone's viewport is emulated.
                "mobileEmulation": {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}},
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        Browser { client, driver, _profile: profile }
    }

    async fn goto(&self, panel: &PanelProcess, path: &str) {
        self.client.goto(&format!("http://{}{path}", panel.addr)).await.unwrap();
    }

    /// The text of the first element matching `css`, waiting for it to appear. A page that
    /// htmx is still settling can replace an element between finding and reading it: then
    /// it is looked up again.
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = async { self.client.find(Locator::Css(css)).await?.text().await };
            match attempt.await {
                Ok(text) => return text,
                Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = async { self.client.find(Locator::Css(css)).await?.click().await };
            match attempt.await {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Sets a text area's value as a paste would (ChromeDriver types only the Basic
    /// Multilingual Plane: no emoji), with the `input` event the page listens to.
    async fn paste(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        let element = serde_json::to_value(&field).unwrap();
        self.client
            .execute(
                "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                vec![element, json!(value)],
            )
            .await
            .unwrap();
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the browser is at `expected` (a path with its query) after a form was sent.
    async fn arrive(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != expected {
            assert!(Instant::now() < deadline, "still at {} instead of {expected}", self.path().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("CABINET_SCREENSHOTS_DIR") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }
}

async fn stored(db: &TestDb, sql: &str) -> serde_json::Value {
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
    browser.screenshot("conflict").await;
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
