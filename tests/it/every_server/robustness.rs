//! Readers and writers against hostile values and interruptions: timestamps no program can
//! show, a reader that closes the pipe, an export killed midway, terminal escapes in data,
//! and rows written before the rules that now refuse them.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use cabinet_db::migrations::{MigrationSet, RunnerOptions, runner};

use crate::harness::{TestDb, applied_versions, binary, run, stderr, stdout, with_real};

fn no_panic(out: &std::process::Output) {
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
    assert_ne!(out.status.code(), Some(101), "{}", stderr(out));
}

#[tokio::test]
async fn values_no_reader_can_show_are_errors_naming_the_row_and_column() {
    // Arrange: a superuser removed the range rules and stored what any SQL client could.
    let db = TestDb::migrated().await;
    db.exec(
        "ALTER TABLE sites DROP CONSTRAINT sites_created_at_range;
         ALTER TABLE users DROP CONSTRAINT users_first_seen_range, DROP CONSTRAINT users_last_seen_range;
         INSERT INTO sites (site_id, domain, created_at) VALUES ('inf', 'inf.example.com', 'infinity');
         INSERT INTO sites (site_id, domain, created_at) VALUES ('far', 'far.example.com', '294000-01-01Z');
         INSERT INTO users (user_id, first_seen, last_seen) VALUES ('neg', '-infinity', now());
         UPDATE cabinet_migrations SET applied_at = 'infinity'",
    )
    .await;
    let cases: &[(&[&str], &str)] = &[
        (&["sites", "get", "inf"], "sites row site_id = \"inf\": column created_at holds infinity"),
        (&["sites", "get", "far"], "sites row site_id = \"far\": column created_at holds a time outside"),
        (&["sites", "list"], "column created_at holds"),
        (&["users", "get", "neg"], "users row user_id = \"neg\": column first_seen holds -infinity"),
        (&["users", "list"], "column first_seen holds -infinity"),
        (&["migrate", "status"], "cabinet_migrations row version = \"1\": column applied_at holds infinity"),
    ];
    for (args, expected) in cases {
        // Act
        let out = run(&db.url, args);
        // Assert
        no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    // The export, which does not decode values, still works and says what it holds.
    let out = run(&db.url, &["sites", "export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("infinity"), "{}", stdout(&out));
}

#[tokio::test]
async fn migration_0003_names_the_rows_written_before_the_rules() {
    // Arrange: a database at 0001 holding rows the later rules refuse.
    let db = TestDb::empty().await;
    let set = MigrationSet::embedded().unwrap();
    runner::up(&db.url, &set, Some(1), &RunnerOptions::default()).await.unwrap();
    db.exec(
        "INSERT INTO sites (site_id, domain, created_at) VALUES ('inf', 'inf.example.com', 'infinity');
         INSERT INTO sites (site_id, domain) VALUES (E'\\u00a0nbsp', 'nbsp.example.com');
         INSERT INTO users (user_id, email) VALUES ('u1', 'a@b.c.')",
    )
    .await;

    // Act
    let out = run(&db.url, &["migrate", "up"]);

    // Assert: stopped at 0003 (0002's rules already guard new writes), offenders named.
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("0003_validate_existing_rows.up.sql failed"), "{err}");
    assert!(err.contains("sites: 1 row(s) break sites_created_at_range, e.g. site_id = 'inf'"), "{err}");
    assert!(err.contains("sites_site_id_format, e.g. site_id = '\u{a0}nbsp'"), "{err}");
    assert!(err.contains("users: 1 row(s) break users_email_format, e.g. user_id = 'u1'"), "{err}");
    assert!(err.contains("hint: fix or delete those rows"), "{err}");
    assert_eq!(applied_versions(&db).await, vec![1, 2]);

    // Fixed, the migration completes.
    db.exec("DELETE FROM sites; UPDATE users SET email = 'a@b.c'").await;
    let out = run(&db.url, &["migrate", "up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(applied_versions(&db).await, with_real(&[]));
}

/// Starts `args`, reads one line of its output, then closes the pipe as `head -1` does.
fn read_one_line_and_close(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut child = binary()
        .env("DATABASE_URL", db.url.expose())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn closing_the_pipe_early_ends_quietly() {
    // Arrange: far more output than a pipe buffers.
    let db = TestDb::migrated().await;
    db.exec(
        "INSERT INTO sites (site_id, domain, brand_name)
         SELECT 'site-' || n, 'site-' || n || '.example.com', repeat('b', 100) FROM generate_series(1, 10000) n;
         INSERT INTO users (user_id) SELECT 'user-' || n FROM generate_series(1, 10000) n",
    )
    .await;
    for args in [
        &["sites", "list", "--limit", "10000"][..],
        &["users", "list", "--limit", "10000"],
        &["sites", "export"],
        &["--json", "sites", "list", "--limit", "10000"],
    ] {
        // Act
        let out = read_one_line_and_close(&db, args);
        // Assert: exit 0, nothing on stderr.
        no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[tokio::test]
async fn an_export_killed_midway_leaves_no_file_that_would_import() {
    // Arrange: an export that takes a while (compressed in the table, 100 MB written out).
    let db = TestDb::migrated().await;
    db.exec(
        "INSERT INTO sites (site_id, domain, ai_prompt)
         SELECT 'site-' || n, 'site-' || n || '.example.com', repeat('prompt ', 7000) FROM generate_series(1, 2000) n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sites.csv");
    let mut child = binary()
        .env("DATABASE_URL", db.url.expose())
        .args(["sites", "export", "--out", target.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Act: kill -9 as soon as data is being written.
    let writing = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
    };
    let mut waited = 0;
    while !writing() && waited < 20_000 {
        std::thread::sleep(Duration::from_millis(1));
        waited += 1;
    }
    assert!(writing(), "the export never started writing");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    child.wait().unwrap();

    // Assert: no sites.csv at all; what was left is a hidden partial file.
    assert!(!target.exists(), "a truncated export must not carry the target's name");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| n.starts_with(".sites.csv.") && n.ends_with(".partial")), "{left:?}");

    // A complete export does appear, whole.
    let out = run(&db.url, &["sites", "export", "--out", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 2001);
}

#[tokio::test]
async fn terminal_escapes_in_data_are_shown_escaped_and_kept_exactly() {
    // Arrange: a brand name that would reverse the text and hide a character (format
    // characters: a one-line field may hold them, not controls), a prompt that would set the
    // terminal's title and clear the screen.
    let db = TestDb::migrated().await;
    db.exec(
        "INSERT INTO sites (site_id, domain, brand_name, ai_prompt)
         VALUES ('evil', 'evil.example.com', E'A\\u200b\\u202eB', E'line one\\nline two\\u001b]0;title\\u0007\\u001b[2J\\u007f')",
    )
    .await;

    for args in [&["sites", "list"][..], &["sites", "get", "evil"]] {
        // Act
        let out = run(&db.url, args);
        // Assert
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = stdout(&out);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7f}') && !shown.contains('\u{202e}'),
            "{shown:?}"
        );
        assert!(shown.contains("A\\u{200b}\\u{202e}B"), "{shown}");
    }
    let get = stdout(&run(&db.url, &["sites", "get", "evil"]));
    assert!(get.contains("line one\nline two\\e]0;title\\u{7}\\e[2J\\u{7f}"), "{get}");
    // JSON carries the exact value (escaped by JSON itself).
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&db.url, &["--json", "sites", "get", "evil"]))).unwrap();
    assert_eq!(json["brand_name"], "A\u{200b}\u{202e}B");
    assert_eq!(json["ai_prompt"], "line one\nline two\u{1b}]0;title\u{7}\u{1b}[2J\u{7f}");
    // A control character in a one-line field is refused by the database, whoever writes it.
    let mut conn = db.conn().await;
    let refused = sqlx::query("UPDATE sites SET brand_name = E'A\\u001b[2J' WHERE site_id = 'evil'")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("sites_brand_name_one_line"), "{refused}");
}
