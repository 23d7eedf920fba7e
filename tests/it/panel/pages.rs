//! The pages as editors and viewers use them, through HTTP against a development identity on
//! loopback: create, edit (newlines kept exactly), conflicts, history, revert, delete with a
//! typed confirmation, restore; every value escaped.

use super::{PanelProcess, Request, Response};
use crate::harness::TestDb;

async fn prompt_and_version(db: &TestDb, site_id: &str) -> (Option<String>, i64) {
    let mut conn = db.conn().await;
    let row = sqlx::query_as(
        "SELECT ai_prompt, (SELECT max(version) FROM sites_history h WHERE h.site_id = s.site_id) FROM sites s WHERE site_id = $1",
    )
    .bind(site_id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    row
}

async fn send(panel: &PanelProcess, request: Request<'_>) -> Response {
    request.send(panel.addr).await.unwrap()
}

#[tokio::test]
async fn an_editor_creates_edits_reverts_deletes_and_restores_a_site() {
    let db = TestDb::migrated().await;
    let panel = PanelProcess::dev(&db.url, "erin@example.com=editor").await;
    let prompt = "Greet the visitor. 👋\n\n  Indented line\nLast line without newline";

    let created = send(
        &panel,
        Request::post(
            "/sites",
            vec![
                ("site_id", "shop"),
                ("domain", "Shop.Example.com"),
                ("language", "de"),
                ("brand_name", "Shop"),
                ("ai_prompt", prompt),
            ],
        ),
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.header("location"), Some("/sites/shop?notice=created"));
    // Browsers send every line end of a text area as CR LF: the stored prompt has the LF typed.
    assert_eq!(prompt_and_version(&db, "shop").await, (Some(prompt.to_owned()), 1));

    let page = send(&panel, Request::get("/sites/shop")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("shop.example.com"), "the domain as stored (lower case)");
    // The newline after the tag is the one HTML parsers drop; the prompt follows verbatim.
    assert!(
        page.body.contains(&format!("hx-include=\"closest form\">\n{prompt}</textarea>")),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("{} characters", prompt.chars().count())));

    // Saving the form untouched (as a browser sends it, CR LF) writes nothing.
    let browser_prompt = prompt.replace('\n', "\r\n");
    let same = vec![
        ("version", "1"),
        ("domain", "shop.example.com"),
        ("language", "de"),
        ("brand_name", "Shop"),
        ("ai_prompt", browser_prompt.as_str()),
    ];
    let unchanged = send(&panel, Request::post("/sites/shop", same.clone())).await;
    assert_eq!(unchanged.header("location"), Some("/sites/shop?notice=unchanged"));
    assert_eq!(prompt_and_version(&db, "shop").await.1, 1);

    // An edit is a new version by the signed-in person.
    let edited_prompt = "Greet the visitor. 👋\r\nBe brief.\r\n";
    let mut edit = same.clone();
    edit[4] = ("ai_prompt", edited_prompt);
    let saved = send(&panel, Request::post("/sites/shop", edit)).await;
    assert_eq!(saved.header("location"), Some("/sites/shop?notice=saved"), "{}", saved.body);
    assert_eq!(
        prompt_and_version(&db, "shop").await,
        (Some("Greet the visitor. 👋\nBe brief.\n".to_owned()), 2)
    );

    // The model's sentences come back next to the field; nothing is written.
    let mut bad = same.clone();
    bad[0] = ("version", "2");
    bad[1] = ("domain", "not a domain");
    let refused = send(&panel, Request::post("/sites/shop", bad)).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("Nothing was saved") && refused.body.contains("error-domain"),
        "{}",
        refused.body
    );
    assert_eq!(prompt_and_version(&db, "shop").await.1, 2);

    // The inline check (htmx) answers in the model's words, next to each field, writing nothing.
    let check = send(
        &panel,
        Request::post(
            "/sites/check",
            vec![("site_id", "shop"), ("domain", "shop.example.com"), ("language", "xx-!")],
        ),
    )
    .await;
    assert_eq!(check.status, 200);
    assert!(
        check.body.contains(
            "<div class=\"field-error\" id=\"error-site_id\" hx-swap-oob=\"true\">site_id is taken"
        ),
        "{}",
        check.body
    );
    assert!(check.body.contains("id=\"error-language\" hx-swap-oob=\"true\">language "), "{}", check.body);
    let taken = send(
        &panel,
        Request::post(
            "/sites/check",
            vec![("site_id", "other"), ("domain", "SHOP.example.com"), ("language", "en")],
        ),
    )
    .await;
    assert!(taken.body.contains("belongs to site shop"), "{}", taken.body);
    assert_eq!(prompt_and_version(&db, "shop").await.1, 2);

    // History: who, what, the prompt diff.
    let history = send(&panel, Request::get("/sites/shop/history")).await;
    assert!(
        history.body.contains("erin@example.com") && history.body.contains("ai_prompt"),
        "{}",
        history.body
    );
    let v2 = send(&panel, Request::get("/sites/shop/history/2")).await;
    assert!(v2.body.contains("<div class=\"add\">Be brief.</div>"), "{}", v2.body);
    assert!(v2.body.contains("<div class=\"del\">  Indented line</div>"), "{}", v2.body);

    // Revert asks first, shows what changes, then writes version 3 = version 1.
    let ask = send(&panel, Request::post("/sites/shop/revert", vec![("to", "1")])).await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("name=\"confirmed\" value=\"yes\""), "{}", ask.body);
    assert_eq!(prompt_and_version(&db, "shop").await.1, 2, "asking writes nothing");
    let reverted =
        send(&panel, Request::post("/sites/shop/revert", vec![("to", "1"), ("confirmed", "yes")])).await;
    assert_eq!(reverted.header("location"), Some("/sites/shop?notice=reverted&to=1"));
    assert_eq!(prompt_and_version(&db, "shop").await, (Some(prompt.to_owned()), 3));

    // Delete needs the id typed; a wrong one deletes nothing.
    let wrong = send(&panel, Request::post("/sites/shop/delete", vec![("confirm", "shop ")])).await;
    assert_eq!(wrong.status, 422);
    assert_eq!(prompt_and_version(&db, "shop").await.1, 3);
    let deleted = send(&panel, Request::post("/sites/shop/delete", vec![("confirm", "shop")])).await;
    assert_eq!(deleted.header("location"), Some("/sites?notice=deleted&id=shop"));
    let gone = send(&panel, Request::get("/sites/shop")).await;
    assert_eq!(gone.status, 404);
    assert!(gone.body.contains("Deleted at") && gone.body.contains("erin@example.com"), "{}", gone.body);
    let restored = send(&panel, Request::post("/sites/shop/restore", vec![("confirmed", "yes")])).await;
    assert_eq!(restored.header("location"), Some("/sites/shop?notice=restored"));
    assert_eq!(prompt_and_version(&db, "shop").await, (Some(prompt.to_owned()), 5));

    // The list finds it by brand, in any case, and filters by language.
    let found = send(&panel, Request::get("/sites?q=SHO&language=de")).await;
    assert!(found.body.contains("href=\"/sites/shop\""), "{}", found.body);
    let other_language = send(&panel, Request::get("/sites?q=shop&language=en")).await;
    assert!(!other_language.body.contains("href=\"/sites/shop\""));
    let fragment = send(&panel, Request::get("/sites?q=shop").header("HX-Request", "true")).await;
    assert!(
        !fragment.body.contains("<html") && fragment.body.contains("href=\"/sites/shop\""),
        "htmx gets the table only"
    );
}

#[tokio::test]
async fn a_second_editor_changing_the_same_field_chooses_and_nothing_is_overwritten_before() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('race', 'race.example.com', 'Original')")
        .await;
    let (first, second) = tokio::join!(
        PanelProcess::dev(&db.url, "first@example.com=editor"),
        PanelProcess::dev(&db.url, "second@example.com=editor")
    );
    let form = |prompt: &'static str| {
        vec![("version", "1"), ("domain", "race.example.com"), ("language", "en"), ("ai_prompt", prompt)]
    };

    let saved = send(&first, Request::post("/sites/race", form("First's prompt"))).await;
    assert_eq!(saved.status, 303);
    let conflict = send(&second, Request::post("/sites/race", form("Second's prompt"))).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert!(
        conflict.body.contains("Not saved") && conflict.body.contains("first@example.com"),
        "{}",
        conflict.body
    );
    assert!(
        conflict.body.contains("First&#39;s prompt") || conflict.body.contains("First's prompt"),
        "theirs shown"
    );
    assert!(
        conflict.body.contains("Second&#39;s prompt") || conflict.body.contains("Second's prompt"),
        "yours kept"
    );
    assert!(conflict.body.contains("name=\"version\" value=\"2\""), "the form now builds on version 2");
    assert!(conflict.body.contains("name=\"started_from\" value=\"1\""), "begun from version 1");
    assert!(conflict.body.contains("name=\"ask\" value=\"ai_prompt\""), "the prompt needs a choice");
    assert!(conflict.body.contains("name=\"theirs_version\" value=\"2\""), "the choices are made against 2");
    assert!(conflict.body.contains("discards first@example.com's change to AI prompt"), "{}", conflict.body);
    assert_eq!(prompt_and_version(&db, "race").await, (Some("First's prompt".to_owned()), 2));

    // A form claiming a version the site never had is refused, nothing written.
    for claimed in ["99", "0", "-1"] {
        let mut forged = form("Forged");
        forged[0] = ("version", claimed);
        let refused = send(&second, Request::post("/sites/race", forged)).await;
        assert_eq!(refused.status, 422, "{claimed}: {}", refused.body);
        assert!(refused.body.contains("reload the page"), "{claimed}: {}", refused.body);
    }
    assert_eq!(prompt_and_version(&db, "race").await, (Some("First's prompt".to_owned()), 2));

    // Saving again without a choice, or with one made against another version, asks again.
    let mut again = form("Second's prompt");
    assert_eq!(send(&second, Request::post("/sites/race", again.clone())).await.status, 409);
    again.extend([("theirs_version", "7"), ("keep_ai_prompt", "yours")]);
    assert_eq!(send(&second, Request::post("/sites/race", again.clone())).await.status, 409);
    assert_eq!(prompt_and_version(&db, "race").await, (Some("First's prompt".to_owned()), 2));
    // Keeping theirs writes nothing; keeping yours is the deliberate overwrite of version 2.
    let mut keep_theirs = form("Second's prompt");
    keep_theirs.extend([("theirs_version", "2"), ("keep_ai_prompt", "theirs")]);
    let kept = send(&second, Request::post("/sites/race", keep_theirs)).await;
    assert_eq!(kept.header("location"), Some("/sites/race?notice=unchanged"));
    assert_eq!(prompt_and_version(&db, "race").await, (Some("First's prompt".to_owned()), 2));
    // The merge page's own form: on version 2, begun from 1, the prompt asked.
    let mut unchosen = form("Second's prompt");
    unchosen[0] = ("version", "2");
    unchosen.extend([("theirs_version", "2"), ("started_from", "1"), ("ask", "ai_prompt")]);
    assert_eq!(
        send(&second, Request::post("/sites/race", unchosen)).await.status,
        409,
        "an asked field needs a choice"
    );
    let mut keep_mine = form("Second's prompt");
    keep_mine[0] = ("version", "2");
    keep_mine.extend([
        ("theirs_version", "2"),
        ("started_from", "1"),
        ("ask", "ai_prompt"),
        ("keep_ai_prompt", "yours"),
    ]);
    let saved = send(&second, Request::post("/sites/race", keep_mine)).await;
    assert_eq!(saved.header("location"), Some("/sites/race?notice=merged&from=1"));
    assert_eq!(prompt_and_version(&db, "race").await, (Some("Second's prompt".to_owned()), 3));
}

#[tokio::test]
async fn every_value_is_escaped_and_a_viewer_sees_no_controls() {
    let db = TestDb::migrated().await;
    db.exec(
        r#"INSERT INTO sites (site_id, domain, brand_name, ai_prompt, hubspot_pipeline)
           VALUES ('xss', 'xss.example.com', '<script>alert(1)</script>', '</textarea><script>alert(2)</script>', '" onmouseover="alert(3)')"#,
    )
    .await;
    let editor = PanelProcess::dev(&db.url, "eve@example.com=editor").await;
    let viewer = PanelProcess::dev(&db.url, "vic@example.com=viewer").await;
    for (panel, path) in [
        (&editor, "/sites"),
        (&editor, "/sites/xss"),
        (&viewer, "/sites/xss"),
        (&editor, "/sites/xss/history/1"),
    ] {
        let page = send(panel, Request::get(path)).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: {}", page.body);
        assert!(!page.body.contains("\" onmouseover"), "{path}");
        assert!(page.body.contains("&lt;script&gt;alert("), "{path}: shown as text");
        // The only scripts are the panel's own files.
        let scripts: Vec<&str> = page
            .body
            .match_indices("<script")
            .map(|(i, _)| &page.body[i..i + 40.min(page.body.len() - i)])
            .collect();
        assert!(scripts.iter().all(|s| s.starts_with("<script src=\"/assets/")), "{path}: {scripts:?}");
    }
    // Ids with URL syntax in them still address their own pages.
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('a/b?c#d e%2F', 'odd.example.com')").await;
    let list = send(&editor, Request::get("/sites?q=odd")).await;
    assert!(list.body.contains("href=\"/sites/a%2Fb%3Fc%23d%20e%252F\""), "{}", list.body);
    let odd = send(&editor, Request::get("/sites/a%2Fb%3Fc%23d%20e%252F")).await;
    assert_eq!(odd.status, 200, "{}", odd.body);
    assert!(odd.body.contains("<h1>Site a/b?c#d e%2F</h1>"), "{}", odd.body);
    let history = send(&editor, Request::get("/sites/a%2Fb%3Fc%23d%20e%252F/history")).await;
    assert_eq!(history.status, 200);

    let as_viewer = send(&viewer, Request::get("/sites/xss")).await;
    assert!(!as_viewer.body.contains("<form method=\"post\""), "{}", as_viewer.body);
    assert!(!as_viewer.body.contains("/sites/xss/delete"));
    assert_eq!(send(&viewer, Request::get("/sites/new")).await.status, 403);
}

/// A multipart upload as a browser's form sends it.
fn upload(fields: &[(&str, &str)], file_name: &str, contents: &str) -> (String, String) {
    let boundary = "----cabinetdbtestboundary7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n{contents}\r\n--{boundary}--\r\n"
    ));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn an_admin_imports_all_or_nothing_and_downloads_exports() {
    let setup = crate::harness::WithRoles::new().await;
    let url = setup.url_as(cabinet_db::roles::RoleKind::Admin);
    let admin = PanelProcess::dev(&url, "ann@example.com=admin").await;
    let viewer = PanelProcess::dev(&url, "vic@example.com=viewer").await;
    let post = |panel: &PanelProcess, file_name: &str, csv: &str| {
        let (content_type, body) = upload(&[("table", "sites"), ("mode", "insert")], file_name, csv);
        let request = Request::raw("POST", "/transfer/import", &content_type, body);
        let addr = panel.addr;
        async move { request.send(addr).await.unwrap() }
    };

    // One bad line: it is named with its column and value, and nothing is written.
    let bad =
        "site_id,domain,language,brand_name\nok1,ok1.example.com,en,<b>Brand</b>\nbad2,not a domain,en,B\n";
    let refused = post(&admin, "sites.csv", bad).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("nothing was written"), "{}", refused.body);
    assert!(
        refused.body.contains("<td>3</td><td>domain</td><td class=\"mono\">not a domain</td>"),
        "{}",
        refused.body
    );
    let mut conn = setup.conn(cabinet_db::roles::RoleKind::Admin).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 0);

    // A viewer may not import; a good file goes in whole, recorded under the person.
    assert_eq!(post(&viewer, "sites.csv", bad).await.status, 403);
    let good =
        "site_id,domain,language,brand_name\nok1,ok1.example.com,en,<b>Brand</b>\nok2,ok2.example.com,de,B\n";
    let imported = post(&admin, "sites.csv", good).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(imported.body.contains("2 rows, 2 inserted"), "{}", imported.body);
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT actor FROM sites_history").fetch_all(&mut conn).await.unwrap();
    assert_eq!(actors, ["ann@example.com"]);

    // Exports: the file imports back as it was; users only for admins.
    let export = send(&viewer, Request::get("/transfer/export/sites.csv")).await;
    assert_eq!(export.status, 200);
    assert!(
        export.header("content-disposition").unwrap().starts_with("attachment; filename=\"cabinet-sites-")
    );
    assert!(
        export.body.starts_with("site_id,domain,") && export.body.contains("ok2,ok2.example.com"),
        "{}",
        export.body
    );
    assert_eq!(send(&viewer, Request::get("/transfer/export/users.csv")).await.status, 403);
    assert_eq!(send(&admin, Request::get("/transfer/export/users.jsonl")).await.status, 200);
    assert_eq!(send(&admin, Request::get("/transfer/export/..%2Fetc%2Fpasswd")).await.status, 404);
    sqlx::Connection::close(conn).await.unwrap();
}

#[tokio::test]
async fn the_dashboard_shows_counts_schema_audit_and_backup_status() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('d1', 'd1.example.com'); INSERT INTO users (user_id) VALUES ('u1'), ('u2')").await;
    let panel = PanelProcess::dev(&db.url, "dan@example.com=viewer").await;
    let dashboard = send(&panel, Request::get("/")).await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("<div class=\"big\">1</div>sites"), "{}", dashboard.body);
    assert!(dashboard.body.contains("<div class=\"big\">2</div>users"));
    assert!(dashboard.body.contains("up to date"), "{}", dashboard.body);
    assert!(dashboard.body.contains("hx-get=\"/dashboard/audit\""));

    let audit = send(&panel, Request::get("/dashboard/audit").header("HX-Request", "true")).await;
    assert_eq!(audit.status, 200);
    assert!(!audit.body.contains("<html"), "a fragment for htmx");
    assert!(audit.body.contains(" passed, ") && audit.body.contains("tailscale"), "{}", audit.body);
    let backups = send(&panel, Request::get("/dashboard/backups")).await;
    assert_eq!(backups.status, 200);
    assert!(
        backups.body.contains("unavailable") && backups.body.contains("none recorded"),
        "{}",
        backups.body
    );
    // The monitoring section reads the same scrape as /metrics: the panel's counters (the
    // requests above among them, by route pattern) and whether the host's stored scrape was read.
    assert!(dashboard.body.contains("hx-get=\"/dashboard/metrics\""));
    let metrics = send(&panel, Request::get("/dashboard/metrics").header("HX-Request", "true")).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("cabinet_panel_requests_total")
            && metrics.body.contains("route=&quot;/dashboard/audit&quot;,status=&quot;200&quot;")
            && metrics.body.contains("cabinet_panel_stored_scrape_read"),
        "{}",
        metrics.body
    );
    let scrape = send(&panel, Request::get("/metrics")).await;
    assert_eq!(scrape.status, 200, "a development identity on loopback may scrape");
    assert!(scrape.body.contains("cabinet_panel_ready 1\n"), "{}", scrape.body);
}

#[tokio::test]
async fn tls_serves_with_the_given_certificate_and_refuses_a_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::ServerName};

    let db = TestDb::migrated().await;
    // A certificate for the panel's name, as `tailscale cert` would write it (key 0600).
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("panel.crt"), dir.path().join("panel.key"));
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let serve = |command: &mut std::process::Command| {
        command.env("DATABASE_URL", db.url.expose()).args([
            "serve",
            "--dev-identity",
            "tls@example.com=viewer",
            "--listen",
            &addr.to_string(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
    };
    let mut refused = crate::harness::binary();
    serve(&mut refused);
    let refused = refused.output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        crate::harness::stderr(&refused).contains("readable by its group or others"),
        "{}",
        crate::harness::stderr(&refused)
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut command = crate::harness::binary();
    serve(&mut command);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child =
        command.stdout(std::process::Stdio::null()).stderr(log.reopen().unwrap()).spawn().unwrap();

    // A client that trusts only that certificate reaches the pages over TLS.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
            tls.write_all(
                format!("GET /sites HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
            let mut raw = Vec::new();
            // A server may close a TLS connection without close_notify; what arrived counts.
            let _ = tls.read_to_end(&mut raw).await;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
        };
        match attempt.await {
            Ok(page) if !page.is_empty() => break page,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => panic!("no TLS answer: {other:?} {}", std::fs::read_to_string(log.path()).unwrap()),
        }
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("tls@example.com · viewer"));
    // Plain HTTP to the TLS port gets no page.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"GET /sites HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("tls@example.com"), "a page went out unencrypted");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn a_revert_never_overwrites_a_change_its_confirmation_did_not_show() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('rev', 'rev.example.com', 'One')").await;
    db.exec("UPDATE sites SET ai_prompt = 'Two' WHERE site_id = 'rev'").await;
    let (olga, bob) = tokio::join!(
        PanelProcess::dev(&db.url, "olga@example.com=editor"),
        PanelProcess::dev(&db.url, "bob@example.com=editor")
    );
    // Olga's confirmation is drawn at version 2 …
    let confirmation = send(&olga, Request::post("/sites/rev/revert", vec![("to", "1")])).await;
    assert!(confirmation.body.contains("name=\"from\" value=\"2\""), "{}", confirmation.body);
    // … Bob saves the language meanwhile …
    let saved = send(
        &bob,
        Request::post(
            "/sites/rev",
            vec![("version", "2"), ("domain", "rev.example.com"), ("language", "de"), ("ai_prompt", "Two")],
        ),
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    // … and her confirmed revert is refused, showing Bob's change, nothing written.
    let refused = send(
        &olga,
        Request::post("/sites/rev/revert", vec![("to", "1"), ("from", "2"), ("confirmed", "yes")]),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("Not reverted") && refused.body.contains("bob@example.com"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("name=\"from\" value=\"3\""), "the new confirmation is drawn at 3");
    assert_eq!(prompt_and_version(&db, "rev").await, (Some("Two".to_owned()), 3));

    // A version with the values the site has now: nothing to revert, no button, nothing written.
    db.exec("UPDATE sites SET ai_prompt = 'One', language = 'en' WHERE site_id = 'rev'").await;
    let same = send(&olga, Request::post("/sites/rev/revert", vec![("to", "1")])).await;
    assert!(same.body.contains("nothing to revert") && !same.body.contains("confirmed"), "{}", same.body);
    let pressed = send(
        &olga,
        Request::post("/sites/rev/revert", vec![("to", "1"), ("from", "4"), ("confirmed", "yes")]),
    )
    .await;
    assert_eq!(pressed.header("location"), Some("/sites/rev?notice=unchanged"), "{}", pressed.body);
    assert_eq!(prompt_and_version(&db, "rev").await, (Some("One".to_owned()), 4));
}
