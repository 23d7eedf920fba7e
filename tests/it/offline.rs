use std::process::{Command, Stdio};

use crate::harness::{TestDb, binary, migrations_dir, real_head, run, stderr, stdout};

#[tokio::test]
async fn the_offline_sql_applied_with_psql_yields_the_models_schema() {
    // Arrange
    let db = TestDb::empty().await;
    let sql = binary().args(["migrate", "sql"]).output().unwrap();
    assert!(sql.status.success(), "{}", stderr(&sql));

    // Act: a DBA runs it by hand.
    let mut psql = Command::new("psql")
        .args(["--quiet", "--no-psqlrc", db.url.expose()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql (postgresql-client) is installed by the setup");
    std::io::Write::write_all(psql.stdin.as_mut().unwrap(), &sql.stdout).unwrap();
    assert!(psql.wait().unwrap().success());

    // Assert: the runner sees itself at head, the schema matches.
    let status = run(&db.url, &["migrate", "status", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(value["current"], real_head());
    assert_eq!(value["problems"], serde_json::json!([]), "the recorded checksum matches the file");
    assert_eq!(run(&db.url, &["migrate", "check"]).status.code(), Some(0));

    // And the downgrade script reverses it.
    let down =
        binary().args(["migrate", "sql", "--from", &real_head().to_string(), "--to", "0"]).output().unwrap();
    assert!(stdout(&down).contains("DROP TABLE sites;"));
    assert!(stdout(&down).contains("DELETE FROM cabinet_migrations WHERE version = 1;"));
}

#[test]
fn history_lists_the_embedded_migrations() {
    let out = binary().args(["migrate", "history", "--json"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value[0]["version"], 1);
    assert_eq!(value[0]["up"], "0001_create_sites_and_users.up.sql");
}

#[test]
fn new_creates_the_next_numbered_pair() {
    let dir = migrations_dir(&[]);
    let dir_arg = dir.path().to_str().unwrap();
    let out =
        binary().args(["migrate", "--migrations-dir", dir_arg, "new", "add_site_notes"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let next = format!("{:04}_add_site_notes", real_head() + 1);
    assert!(dir.path().join(format!("{next}.up.sql")).is_file());
    assert!(dir.path().join(format!("{next}.down.sql")).is_file());
    let history =
        binary().args(["migrate", "--migrations-dir", dir_arg, "history", "--json"]).output().unwrap();
    assert!(stdout(&history).contains(&format!("{next}.up.sql")), "the new pair parses");

    let bad = binary().args(["migrate", "--migrations-dir", dir_arg, "new", "Add Notes"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("lower-case letters, digits and underscores"), "{}", stderr(&bad));
}

#[test]
fn lint_passes_the_embedded_migrations_and_fails_a_risky_one_with_its_location() {
    let clean = binary().args(["migrate", "lint"]).output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    let dir = migrations_dir(&[
        (
            "0902_risky.up.sql",
            "-- adds an index the blocking way\nCREATE INDEX sites_brand_idx ON sites (brand_name);\n",
        ),
        ("0902_risky.down.sql", "DROP INDEX IF EXISTS sites_brand_idx;\n"),
    ]);
    let risky = binary()
        .args(["migrate", "--migrations-dir", dir.path().to_str().unwrap(), "lint"])
        .output()
        .unwrap();
    assert_eq!(risky.status.code(), Some(1));
    assert!(
        stdout(&risky).contains("0902_risky.up.sql:2:1: require-concurrent-index-creation"),
        "{}",
        stdout(&risky)
    );
}

#[test]
fn inputs_are_bounded_ports_must_be_ports_and_a_config_file_must_end() {
    // A port of 0 (which would ask the system for any port) is refused by every option.
    for args in [
        &["tailnet", "render", "--port", "0"][..],
        &["tailnet", "render", "--panel-port", "0"],
        &["cluster", "render", "--patroni-port", "0"],
        &["tailnet", "render", "--port", "65536"],
        &["serve", "--dev-identity", "dev@example.com=admin", "--listen", "127.0.0.1:0"],
    ] {
        let out =
            binary().args(args).env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("65535"), "{args:?}: {}", stderr(&out));
    }
    // A configuration file without end (a device) is refused at once, not read forever.
    let started = std::time::Instant::now();
    let mut child = binary()
        .args(["--config-file", "/dev/zero", "config", "show"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("--config-file /dev/zero was still being read after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/dev/zero is larger than"), "{}", stderr(&out));
}

#[test]
fn out_writes_into_fifos_devices_and_stdout_follows_safe_symlinks_and_refuses_the_rest() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let export = |out: &std::path::Path| {
        binary().args(["models", "export", "--sqlalchemy", "--out", out.to_str().unwrap()]).output().unwrap()
    };

    // A FIFO a reader waits on gets the data, and stays a FIFO.
    let fifo = dir.path().join("models.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (sent, read) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || sent.send(std::fs::read_to_string(fifo).unwrap()));
    }
    let out = export(&fifo);
    assert!(out.status.success(), "{}", stderr(&out));
    let through =
        read.recv_timeout(std::time::Duration::from_secs(10)).expect("nothing came through the FIFO");
    assert!(through.contains("class Site("));
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A character device (here a private /dev/full: writes fail) is written into, never
    // replaced; the failure is reported.
    if nix::unistd::geteuid().is_root() {
        let full = dir.path().join("full");
        nix::sys::stat::mknod(
            &full,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 7),
        )
        .unwrap();
        let out = export(&full);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(std::fs::symlink_metadata(&full).unwrap().file_type().is_char_device(), "still the device");
    }

    // /dev/stdout is the open descriptor.
    let out = export(std::path::Path::new("/dev/stdout"));
    assert!(out.status.success() && stdout(&out).contains("class Site("), "{}", stderr(&out));

    // A symlink: its target is replaced whole, the link stays.
    let real = dir.path().join("real.py");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("models.py");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(export(&link).status.success());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("class Site("));

    // As root, a link someone else owns (planted in a shared, sticky directory) is not followed.
    if nix::unistd::geteuid().is_root() {
        let shared = dir.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = shared.join("models.py");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &planted,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let out = export(&planted);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("a symlink owned by uid 65534"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        // So is a planted link to a directory on the way (/tmp/d -> a directory of root's).
        let victim_dir = dir.path().join("victim-dir");
        std::fs::create_dir(&victim_dir).unwrap();
        std::fs::write(victim_dir.join("conf"), "precious").unwrap();
        let planted_dir = shared.join("d");
        std::os::unix::fs::symlink(&victim_dir, &planted_dir).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &planted_dir,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let out = export(&planted_dir.join("conf"));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("on the way to the file"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(victim_dir.join("conf")).unwrap(), "precious");
    }

    // A directory is refused, naming it; a killed writer's private partial goes at the next run.
    let out = export(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    let target = dir.path().join("fresh.py");
    let stale = dir.path().join(".fresh.py.cabinet-db-4194305.partial");
    std::fs::write(&stale, "half").unwrap();
    assert!(export(&target).status.success());
    assert!(!stale.exists(), "the killed writer's partial is gone");
}

#[tokio::test]
async fn an_export_killed_mid_write_leaves_only_a_private_partial_that_the_next_run_removes() {
    use std::os::unix::fs::PermissionsExt;
    // Arrange: enough users that the export writes for a while.
    let db = TestDb::migrated().await;
    db.exec(
        "INSERT INTO users (user_id, email, first_seen, last_seen)
         SELECT 'killed-' || i, 'person' || i || '@example.com', now(), now() FROM generate_series(1, 300000) i",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("users.csv");
    let partial_of = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".partial"))
    };

    // Act: stop the export the moment its partial file appears, look, then kill -9 it.
    let mut child = binary()
        .env("DATABASE_URL", db.url.expose())
        .args(["users", "export", "--out"])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let partial = loop {
        if let Some(found) = partial_of(dir.path()) {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
            break found;
        }
        assert!(child.try_wait().unwrap().is_none(), "the export ended before it could be stopped");
        assert!(std::time::Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(std::time::Duration::from_micros(200));
    };

    // Assert: while it writes, nothing is at the target and the e-mails are readable by no one else.
    assert!(!target.exists(), "nothing partial is visible under the name asked for");
    let mode = std::fs::metadata(&partial).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", partial.display());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(!target.exists());

    // The next run replaces it whole and removes the dead writer's partial.
    let out = run(&db.url, &["users", "export", "--out", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!partial.exists(), "the killed writer's partial is gone");
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 300_001);
}
