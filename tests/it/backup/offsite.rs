use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use cabinet_db::backup::{
    repository::{DEFAULT_S3_PATH, S3Options, S3Repo, UriStyle},
    restore::{self, RestoreOptions, Target},
    run::{self, Kind},
    secrets::{self, CipherPass, S3Credentials},
    setup::{Offsite, SetupOptions},
};
use sqlx::{Connection, PgConnection};

use super::{
    Copy, Production, assert_refused_before_writing, exec,
    fake_s3::{FakeS3, contains, passphrase_file},
    fingerprint,
};
use crate::harness::{binary, stderr, stdout};

pub const KEY: &str = "test-access-key";
pub const SECRET: &str = "test-secret-key-do-not-print";

/// Production's options with the fake service as the offsite repository.
pub fn with_offsite(production: &Production, s3: &FakeS3, pass_file: &Path) -> SetupOptions {
    SetupOptions {
        offsite: Some(offsite_of(s3, pass_file)),
        // Tests wait for attempts against a dead service: let each give up after a second.
        io_timeout: Some(1),
        ..production.options()
    }
}

/// The fake service as an offsite repository, encrypted with the passphrase in `pass_file`.
pub fn offsite_of(s3: &FakeS3, pass_file: &Path) -> Offsite {
    let repo = S3Repo::from_options(&S3Options {
        endpoint: s3.endpoint(),
        bucket: s3.bucket.clone(),
        region: "us-east-1".into(),
        path: DEFAULT_S3_PATH.into(),
        uri_style: UriStyle::Path,
        ca_file: Some(s3.ca_file()),
    })
    .unwrap();
    Offsite {
        repo,
        credentials: S3Credentials::new(KEY, SECRET).unwrap(),
        cipher_pass: CipherPass::from_file(pass_file).unwrap(),
    }
}

/// The `backup setup` command line for the same options.
fn setup_args<'a>(production: &'a Production, s3: &'a FakeS3, pass_file: &'a Path) -> Vec<String> {
    let root = &production.cluster.root;
    [
        "--repo",
        root.join("backup/repo").to_str().unwrap(),
        "--state-dir",
        root.join("backup/state").to_str().unwrap(),
        "--io-timeout",
        "1",
        "--s3-endpoint",
        &s3.endpoint(),
        "--s3-bucket",
        &s3.bucket,
        "--s3-region",
        "us-east-1",
        "--s3-uri-style",
        "path",
        "--s3-ca-file",
        s3.ca_file().to_str().unwrap(),
        "--cipher-pass-file",
        pass_file.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test]
async fn the_offsite_copy_is_ciphertext_in_the_bucket_and_restores_with_the_passphrase() {
    let production = Production::start("backup-offsite").await;
    let s3 = FakeS3::start("cabinet-offsite");
    let secrets_dir = tempfile::tempdir().unwrap();
    let pass_file = passphrase_file(secrets_dir.path());
    let options = with_offsite(&production, &s3, &pass_file);
    if production.refuses_a_version_pgbackrest_cannot_read(&options).await {
        return;
    }
    production.set_up_backups_with(&options).await;
    let canary = "Offsite canary: whoever reads the bucket must never see this prompt";
    exec(
        production.url.expose(),
        &format!("INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('canary', 'canary.example.com', '{canary}')"),
    )
    .await;

    // Act: a full backup into each repository.
    let backups = run::run(&production.config, Kind::Full, None).unwrap().backups;
    assert_eq!(backups.iter().map(|b| b.repo).collect::<Vec<_>>(), vec![1, 2]);

    // Assert: every stored object is OpenSSL ciphertext, none holds the prompt or the
    // repository's own plain-text markers — while the unencrypted local copy shows them.
    let objects = s3.objects();
    assert!(objects.iter().any(|(key, _)| key.contains("/backup/cabinet/")), "{:?}", objects.len());
    for (key, bytes) in &objects {
        assert!(bytes.starts_with(b"Salted__"), "{key} is not aes-256-cbc ciphertext");
        assert!(!contains(bytes, canary.as_bytes()), "{key} shows the prompt");
        assert!(!contains(bytes, b"backrest-format"), "{key} shows pgBackRest's info text");
    }
    let local_info = std::fs::read(production.repo().join("backup/cabinet/backup.info")).unwrap();
    assert!(contains(&local_info, b"backrest-format"), "the unencrypted control shows it");

    // pgBackRest, holding the passphrase, restores from the bucket alone: equal to production.
    let live = fingerprint(production.url.expose()).await;
    let report = restore::restore(&RestoreOptions {
        config_path: production.config.clone(),
        target_dir: production.cluster.root.join("from-offsite"),
        port: None,
        target: Target::Latest,
        repo: Some(2),
        live: Some(production.url.clone()),
        database: "cabinet".to_owned(),
    })
    .await
    .unwrap();
    let _copy = Copy::of(&production, &report.data_dir);
    assert_eq!(fingerprint(report.url.expose()).await, live);
    let mut copy = PgConnection::connect(report.url.expose()).await.unwrap();
    let prompt: String = sqlx::query_scalar("SELECT ai_prompt FROM sites WHERE site_id = 'canary'")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(prompt, canary);
    copy.close().await.unwrap();

    // The secrets: only in the 0600 include file, never in pgbackrest.conf or the output.
    let config_text = std::fs::read_to_string(&production.config).unwrap();
    let passphrase = std::fs::read_to_string(&pass_file).unwrap().trim().to_owned();
    for secret in [passphrase.as_str(), SECRET, KEY] {
        assert!(!config_text.contains(secret), "pgbackrest.conf holds a secret");
    }
    let secrets_file = secrets::secrets_file(&production.config);
    assert_eq!(std::fs::metadata(&secrets_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&secrets_file).unwrap().contains("repo2-cipher-pass="));
    let rerun = binary()
        .env("DATABASE_URL", production.url.expose())
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .args(["backup", "--config", production.config.to_str().unwrap(), "setup"])
        .args(setup_args(&production, &s3, &pass_file))
        .output()
        .unwrap();
    let shown = format!("{}{}", stdout(&rerun), stderr(&rerun));
    assert_eq!(rerun.status.code(), Some(0), "{shown}");
    assert!(shown.contains("repo2: s3://cabinet-offsite/cabinet-db at localhost"), "{shown}");
    for secret in [passphrase.as_str(), SECRET, KEY] {
        assert!(!shown.contains(secret), "setup printed a secret: {shown}");
    }
    assert_eq!(std::fs::read_to_string(&production.config).unwrap(), config_text, "idempotent");

    // A rerun that forgets the offsite options is refused, not obeyed.
    let forgetful = binary()
        .env("DATABASE_URL", production.url.expose())
        .args(["backup", "--config", production.config.to_str().unwrap(), "setup"])
        .args(&setup_args(&production, &s3, &pass_file)[..6])
        .output()
        .unwrap();
    assert_eq!(forgetful.status.code(), Some(2));
    assert!(stderr(&forgetful).contains("--remove-offsite"), "{}", stderr(&forgetful));
    assert_eq!(std::fs::read_to_string(&production.config).unwrap(), config_text, "nothing was changed");

    // The audit sees the offsite repository encrypted, by the repository's own account.
    let checks = production.backup_checks();
    assert!(
        checks.iter().any(|(id, verdict, detail)| id == "backup.offsite"
            && verdict == "pass"
            && detail.contains("aes-256-cbc")),
        "{checks:?}"
    );
}

#[test]
fn hostile_offsite_options_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/pgbackrest.conf");
    let state = dir.path().join("state");
    let good_pass = passphrase_file(dir.path());
    let readable_pass = dir.path().join("readable.pass");
    std::fs::write(&readable_pass, "Zq8vN3xK1pR7tL5wY2cB9mF4hJ6sD0gA-readable").unwrap();
    std::fs::set_permissions(&readable_pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let offsite = |endpoint: &str, bucket: &str, pass: &Path| {
        vec![
            "--s3-endpoint".to_owned(),
            endpoint.to_owned(),
            "--s3-bucket".to_owned(),
            bucket.to_owned(),
            "--s3-region".to_owned(),
            "us-east-1".to_owned(),
            "--cipher-pass-file".to_owned(),
            pass.display().to_string(),
        ]
    };
    let https = "https://s3.example.com";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (offsite("http://s3.example.com", "bucket", &good_pass), "only over HTTPS"),
        (offsite(https, "b\nrepo1-path=/etc", &good_pass), r"b\nrepo1-path=/etc"),
        (offsite("https://s3.example.com\n[global]", "bucket", &good_pass), "DNS host name"),
        (offsite(https, "bucket", &readable_pass), "chmod 600"),
        (offsite(https, "bucket", &dir.path().join("absent")), "cannot read it"),
        (
            [
                offsite(https, "bucket", &good_pass),
                vec!["--s3-path".into(), "/a\nrepo2-cipher-type=none".into()],
            ]
            .concat(),
            r"/a\nrepo2-cipher-type=none",
        ),
        (vec!["--archive-queue-max".into(), "1MiB".into()], "at least 16MiB"),
        (vec!["--archive-queue-max".into(), "4GiB\narchive-async=n".into()], "give a size"),
        (vec!["--repo".into(), "relative/repo".into()], "absolute path"),
        (vec!["--s3-bucket".into(), "bucket".into()], "--s3-endpoint"),
        (vec!["--s3-endpoint".into(), https.into()], "--cipher-pass-file"),
    ];
    let env = [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)];
    for shown in assert_refused_before_writing("setup", &config, &state, &env, cases) {
        assert!(!shown.contains("Zq8vN3xK1pR7tL5wY2cB9mF4hJ6sD0gA") && !shown.contains(SECRET), "{shown}");
    }
    // No credentials in the environment: named, nothing written.
    let out = binary()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/cabinet")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["backup", "--config", config.to_str().unwrap(), "setup"])
        .args(offsite(https, "bucket", &good_pass))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("AWS_ACCESS_KEY_ID"), "{}", stderr(&out));
    assert!(!config.exists());
}

/// Writes a row and switches to a new WAL segment; returns how long the commit took.
async fn write_segment(url: &str, n: u32) -> Duration {
    let started = Instant::now();
    exec(url, &format!("INSERT INTO users (user_id) VALUES ('while-dead-{n}'); SELECT pg_switch_wal()"))
        .await;
    started.elapsed()
}

/// WAL segments waiting for the archive (`.ready` in pg_wal/archive_status).
fn waiting_segments(pgdata: &Path) -> usize {
    std::fs::read_dir(pgdata.join("pg_wal/archive_status"))
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.len() == 24 + ".ready".len() && name.ends_with(".ready")
        })
        .count()
}

/// `pg_stat_archiver`: archived count, and whether the last attempt failed.
async fn archiver(url: &str) -> (i64, bool) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let row: (i64, bool) = sqlx::query_as(
        "SELECT archived_count, coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
           FROM pg_stat_archiver",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    row
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_dead_offsite_repository_never_fills_the_primary_and_a_gap_is_named() {
    let production = Production::start("backup-dead-repo").await;
    let mut s3 = FakeS3::start("cabinet-dead");
    let secrets_dir = tempfile::tempdir().unwrap();
    let pass_file = passphrase_file(secrets_dir.path());
    // A queue of four 16 MiB segments.
    let options = SetupOptions {
        archive_queue_max: Some("64MiB".into()),
        ..with_offsite(&production, &s3, &pass_file)
    };
    if production.refuses_a_version_pgbackrest_cannot_read(&options).await {
        return;
    }
    production.set_up_backups_with(&options).await;
    run::run(&production.config, Kind::Full, None).unwrap();
    let url = production.url.expose();
    let pgdata = production.cluster.pgdata();
    let check = |id: &'static str| {
        let checks = production.backup_checks();
        checks.into_iter().find(|(i, _, _)| i == id).unwrap_or_else(|| panic!("no {id}"))
    };

    // The service dies; fewer segments than the queue holds are written meanwhile.
    s3.cut();
    for n in 0..2 {
        let took = write_segment(url, n).await;
        assert!(took < Duration::from_secs(5), "the primary keeps accepting writes ({took:?})");
    }
    wait_until("archiving fails", Duration::from_secs(120), || async { archiver(url).await.1 }).await;
    let (_, verdict, detail) = check("backup.archiving");
    assert_eq!(verdict, "fail", "{detail}");
    assert!(
        detail.contains("archiving fails")
            && detail.contains("repo2")
            && detail.contains("unable to connect"),
        "the audit says why: {detail}"
    );

    // It returns before the limit: archiving catches up, nothing is missing.
    s3.resume();
    write_segment(url, 2).await;
    wait_until("archiving catches up", Duration::from_secs(120), || async {
        waiting_segments(&pgdata) == 0 && !archiver(url).await.1
    })
    .await;
    let verified = production.backup(&["verify"]);
    assert_eq!(verified.status.code(), Some(0), "{}{}", stdout(&verified), stderr(&verified));
    assert_eq!(check("backup.wal_continuity").1, "pass");
    assert_eq!(check("backup.archiving").1, "pass");

    // Dead past the limit: WAL is dropped by design, and what waits in pg_wal stays bounded by
    // the queue limit plus what is written during one push attempt — while the writes go on.
    s3.cut();
    let (archived_before, _) = archiver(url).await;
    let started = Instant::now();
    let mut waiting: Vec<usize> = Vec::new();
    let mut n = 3;
    let dropped_while_writing = loop {
        let took = write_segment(url, n).await;
        n += 1;
        assert!(took < Duration::from_secs(5), "the primary keeps accepting writes ({took:?})");
        let now = waiting_segments(&pgdata);
        let dropped = waiting.last().is_some_and(|&before| now < before);
        waiting.push(now);
        if dropped || started.elapsed() > Duration::from_secs(120) {
            break dropped;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("while the repository was dead, WAL segments waiting after each write: {waiting:?}");
    assert!(
        dropped_while_writing,
        "pgBackRest never dropped the queue while the writes went on: {waiting:?}"
    );
    for _ in 0..4 {
        write_segment(url, n).await;
        n += 1;
    }
    wait_until("pgBackRest drops the queue", Duration::from_secs(180), || async {
        waiting_segments(&pgdata) <= 4 && archiver(url).await.0 > archived_before
    })
    .await;

    // Back again: the hole is named, by verify and by the audit, with the remedy.
    s3.resume();
    write_segment(url, n).await;
    wait_until("archiving resumes", Duration::from_secs(120), || async {
        waiting_segments(&pgdata) == 0 && !archiver(url).await.1
    })
    .await;
    let verified = production.backup(&["verify"]);
    let said = stdout(&verified);
    assert_eq!(verified.status.code(), Some(1), "{said}{}", stderr(&verified));
    assert!(said.contains("point-in-time recovery across the gap is lost"), "{said}");
    assert!(said.contains("repo1:") && said.contains("repo2:"), "both repositories lost it: {said}");
    assert!(said.contains("take a new full backup"), "{said}");
    let (_, verdict, detail) = check("backup.wal_continuity");
    assert_eq!(verdict, "fail", "{detail}");
    assert!(detail.contains("point-in-time recovery across the gap is lost"), "{detail}");

    // A new full backup makes the present recoverable again; the lost stretch stays named.
    run::run(&production.config, Kind::Full, None).unwrap();
    let (_, verdict, detail) = check("backup.wal_continuity");
    assert_eq!(verdict, "warn", "{detail}");
    assert!(detail.contains("no point in time in that stretch"), "{detail}");
    let verified = production.backup(&["verify"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    assert!(stdout(&verified).contains("note:"), "{}", stdout(&verified));
}
