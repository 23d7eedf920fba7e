use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use cabinet_db::backup::run::{self, Kind};
use sqlx::{Connection, PgConnection};

use crate::backup::{Production, exec, walkdir};
use crate::harness::{metric_sample, stderr, stdout};

/// One commit per WAL segment after the backup: `hole-0` … `hole-4`, each in a segment of its
/// own, all archived. Returns the segments' names, in order.
async fn a_commit_per_segment(production: &Production) -> Vec<String> {
    let mut conn = PgConnection::connect(production.url.expose()).await.unwrap();
    let mut segments = Vec::new();
    for n in 0..5 {
        sqlx::query("INSERT INTO users (user_id) VALUES ($1)")
            .bind(format!("hole-{n}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let segment: String =
            sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())").fetch_one(&mut conn).await.unwrap();
        segments.push(segment);
    }
    let last = segments.last().unwrap().clone();
    for _ in 0..300 {
        let archived: Option<String> = sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if archived.is_some_and(|a| a >= last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close().await.unwrap();
    segments
}

/// What a test does to an archived segment's file.
type Damage = Box<dyn Fn(&Path)>;

/// The archived file of a segment (`<segment>-<sha1>.zst`).
fn archived_file(repo: &Path, segment: &str) -> PathBuf {
    walkdir(repo.join("archive"))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{segment}-")))
        .unwrap_or_else(|| panic!("{segment} is not archived"))
}

/// The `zstd` program (what pgBackRest writes) on a file, its output.
fn zstd_of(args: &[&str], file: &Path) -> Vec<u8> {
    let out = std::process::Command::new("zstd").args(args).arg(file).output().expect("the zstd program");
    assert!(out.status.success(), "zstd {args:?} {}: {}", file.display(), stderr(&out));
    out.stdout
}

/// A valid zstd file holding only the first `bytes` of the segment `file` holds.
fn cut_to(file: &Path, bytes: usize) -> Vec<u8> {
    let whole = zstd_of(&["-d", "-c", "-q"], file);
    let half = file.with_extension("half");
    std::fs::write(&half, &whole[..bytes]).unwrap();
    let compressed = zstd_of(&["-c", "-q"], &half);
    std::fs::remove_file(half).unwrap();
    compressed
}

/// No process runs on anything under `dir` (a postmaster's command line names its data
/// directory).
fn nothing_runs_under(dir: &Path) -> bool {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| !String::from_utf8_lossy(&c).replace('\0', " ").contains(&needle))
            .unwrap_or(true)
    })
}

/// pgBackRest's asynchronous archive-get keeps fetched segments in the spool; each shape
/// starts from the repository alone.
fn empty_the_get_queue(production: &Production) {
    let _ = std::fs::remove_dir_all(production.cluster.root.join("backup/state/spool/archive/cabinet/in"));
}

#[tokio::test]
async fn a_missing_truncated_or_damaged_segment_before_the_target_is_refused_and_only_the_explicit_flag_stops_there()
 {
    // Arrange: a full backup, then five commits in five archived segments.
    let production = Production::start("backup-holes").await;
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full, None).unwrap();
    let segments = a_commit_per_segment(&production).await;
    let victim = archived_file(&production.repo(), &segments[2]);
    let original = std::fs::read(&victim).unwrap();
    let after_everything = chrono::Utc::now();
    let root = production.cluster.root.clone();

    // Act and assert, for each shape of hole in the segment holding hole-2.
    let shapes: [(&str, Damage); 4] = [
        ("missing", Box::new(|file| std::fs::remove_file(file).unwrap())),
        (
            "truncated",
            Box::new(|file| {
                let bytes = std::fs::read(file).unwrap();
                std::fs::write(file, &bytes[..bytes.len() / 3]).unwrap();
            }),
        ),
        // A valid zstd file of the segment's first half: archive-get succeeds and PostgreSQL
        // gets a short segment.
        ("short", Box::new(|file| std::fs::write(file, cut_to(file, 8 << 20)).unwrap())),
        (
            "damaged",
            Box::new(|file| {
                let mut bytes = std::fs::read(file).unwrap();
                let middle = bytes.len() / 2;
                for b in &mut bytes[middle..middle + 64] {
                    *b ^= 0xA5;
                }
                std::fs::write(file, bytes).unwrap();
            }),
        ),
    ];
    for (shape, damage) in shapes {
        damage(&victim);
        empty_the_get_queue(&production);

        // --latest: refused, exit 1, the hole and the command named, nothing left.
        let target = root.join(format!("latest-{shape}"));
        let out = production.backup(&["restore", "--target-dir", target.to_str().unwrap(), "--latest"]);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{shape}: {said}");
        assert!(said.contains("lies beyond a hole in the WAL archive"), "{shape}: {said}");
        assert!(said.contains(&segments[1]), "{shape}: names the last segment read: {said}");
        assert!(said.contains("--end-of-continuous-wal") && said.contains("--time "), "{shape}: {said}");
        assert!(!said.contains("restored to the latest"), "{shape}: {said}");
        assert!(!said.contains("did not start") && !said.contains(" WARN "), "{shape}: {said}");
        if shape == "missing" {
            let exactly = format!("WAL segment {} is missing", segments[2]);
            let resumes = format!("the archive resumes at {}", segments[3]);
            assert!(said.contains(&exactly) && said.contains(&resumes), "{shape}: only it: {said}");
        }
        let in_segment = |said: &str| said.split_once("(in segment ").map(|(_, r)| r[..24].to_owned());
        let latest_reached = in_segment(&said);
        assert!(latest_reached.is_some(), "{shape}: {said}");
        if shape == "short" {
            // The names alone cannot show it (list and the audit read names); verify's
            // checksums do.
            let verified = production.backup(&["verify"]);
            let verdict = format!("{}{}", stdout(&verified), stderr(&verified));
            assert_eq!(verified.status.code(), Some(1), "{verdict}");
            assert!(verdict.contains(&segments[2]), "verify names the segment: {verdict}");
            assert!(said.contains(&format!("WAL segment {} is", segments[2])), "{shape}: {said}");
            assert!(said.contains("8388608 bytes instead of 16777216"), "{shape}: {said}");
        }
        assert!(!target.exists() && nothing_runs_under(&target), "{shape}: the copy is gone");

        // A time after the hole: the same refusal, not advice to use --latest.
        let target = root.join(format!("time-{shape}"));
        let time = cabinet_db::models::timestamps::format(after_everything);
        let out = production.backup(&["restore", "--target-dir", target.to_str().unwrap(), "--time", &time]);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{shape}: {said}");
        assert!(said.contains("lies beyond a hole") && !said.contains("or --latest"), "{shape}: {said}");
        assert_eq!(in_segment(&said), latest_reached, "{shape}: the same point, named the same: {said}");
        assert!(!target.exists() && nothing_runs_under(&target), "{shape}: the copy is gone");

        // Asked for explicitly: the continuous WAL's end, said as such.
        empty_the_get_queue(&production);
        let target = root.join(format!("continuous-{shape}"));
        let out = production.backup(&[
            "--json",
            "restore",
            "--target-dir",
            target.to_str().unwrap(),
            "--end-of-continuous-wal",
        ]);
        assert_eq!(out.status.code(), Some(0), "{shape}: {}{}", stdout(&out), stderr(&out));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["hole"]["after"], segments[1], "{shape}: {report}");
        assert!(report["reached"]["last_commit"].is_string(), "{shape}: {report}");
        let mut copy = PgConnection::connect(report["url"].as_str().unwrap()).await.unwrap();
        let restored: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id LIKE 'hole-%' ORDER BY 1")
                .fetch_all(&mut copy)
                .await
                .unwrap();
        copy.close().await.unwrap();
        assert!(
            restored.starts_with(&["hole-0".to_owned(), "hole-1".to_owned()])
                && !restored.contains(&"hole-3".to_owned()),
            "{shape}: {restored:?}"
        );
        cabinet_db::backup::restore::stop_and_remove(&cabinet_db::local_cluster::LocalCluster {
            root: target.clone(),
            ..production.cluster.clone()
        });

        std::fs::write(&victim, &original).unwrap();
    }
}

#[tokio::test]
async fn a_hole_breaks_the_listed_window_fails_the_audit_and_the_drill_until_a_new_full_backup() {
    // Arrange: a full backup, five commits in five segments, the third segment gone.
    let production = Production::start("backup-hole-list").await;
    if production.refuses_a_version_pgbackrest_cannot_read(&production.options()).await {
        return;
    }
    production.set_up_backups().await;
    run::run(&production.config, Kind::Full, None).unwrap();
    let segments = a_commit_per_segment(&production).await;
    std::fs::remove_file(archived_file(&production.repo(), &segments[2])).unwrap();
    let root = production.cluster.root.clone();

    // Act and assert: the listing breaks the window there, the audit fails, the drill too.
    let listed = production.backup(&["list", "--json"]);
    let listing: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listing["holes"][0]["after"], segments[1], "{listing}");
    assert_eq!(listing["holes"][0]["before"], segments[3], "{listing}");
    let windows = listing["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "nothing after the hole is recoverable yet: {listing}");
    assert_eq!(windows[0]["to_wal"], segments[1], "{listing}");
    assert!(windows[0]["from"].is_string() && listing["earliest"].is_string(), "{listing}");
    let text = stdout(&production.backup(&["list"]));
    assert!(text.contains(&format!("a hole after {}", segments[1])), "{text}");
    let judged = production.backup_checks();
    let continuity = judged.iter().find(|(id, _, _)| id == "backup.wal_continuity").unwrap();
    assert_eq!(continuity.1, "fail", "{continuity:?}");
    assert!(continuity.2.contains(&segments[1]), "{continuity:?}");
    // The metrics count it, so an alert pages (CabinetDbWalHole).
    let text = production.metrics();
    assert_eq!(metric_sample(&text, "cabinet_wal_holes{repo=\"1\"}"), Some(1.0), "{text}");
    assert_eq!(metric_sample(&text, "cabinet_backup_repository_ok{repo=\"1\"}"), Some(1.0), "{text}");

    let drilled = production.backup(&["drill"]);
    assert_eq!(drilled.status.code(), Some(1), "{}{}", stdout(&drilled), stderr(&drilled));
    assert!(
        stdout(&drilled).contains(&segments[1]) && stdout(&drilled).contains("drill FAILED"),
        "{}",
        stdout(&drilled)
    );
    let state = root.join("backup/state");
    let records = cabinet_db::backup::drill::recorded(&state.join(cabinet_db::backup::config::DRILLS_FILE));
    assert!(records.last().is_some_and(|r| !r.passed), "{records:?}");

    // A new full backup: recovery to now works again, the hole only narrows the window.
    run::run(&production.config, Kind::Full, None).unwrap();
    exec(production.url.expose(), "INSERT INTO users (user_id) VALUES ('after-the-new-backup')").await;
    let judged = production.backup_checks();
    let continuity = judged.iter().find(|(id, _, _)| id == "backup.wal_continuity").unwrap();
    assert_eq!(continuity.1, "warn", "{continuity:?}");
    let listing: serde_json::Value =
        serde_json::from_str(&stdout(&production.backup(&["list", "--json"]))).unwrap();
    let windows = listing["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{listing}");
    assert_eq!(windows[0]["to_wal"], segments[1], "{listing}");
    assert!(windows[1]["to_wal"].is_null() || windows[1]["to_wal"].is_string(), "{listing}");
    let text = stdout(&production.backup(&["list"]));
    assert!(text.contains("then from"), "{text}");
    empty_the_get_queue(&production);
    let target = root.join("latest-after-new-backup");
    let out = production.backup(&["restore", "--target-dir", target.to_str().unwrap(), "--latest"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("reached: "), "{}", stdout(&out));
    // The stop command it prints works as whoever restored (as root: as the server's user).
    let said = stdout(&out);
    let stop = said.lines().find_map(|l| l.split_once("stop it with: ").map(|(_, c)| c.to_owned())).unwrap();
    if nix::unistd::geteuid().is_root() {
        assert!(stop.starts_with("runuser -u postgres -- "), "{stop}");
    }
    let stopped = std::process::Command::new("/bin/sh").arg("-c").arg(&stop).output().unwrap();
    assert!(stopped.status.success(), "{stop}: {}", stderr(&stopped));
    let copy = cabinet_db::local_cluster::LocalCluster { root: target, ..production.cluster.clone() };
    assert!(!copy.is_running(), "{stop} stopped it");
    cabinet_db::backup::restore::stop_and_remove(&copy);

    // A target through a symlink into the configuration's directory, or into pgBackRest's
    // spool, is refused before anything is written there.
    for (alias, into, named) in [
        ("alias-of-the-config", root.join("backup"), "directory of the pgBackRest configuration"),
        ("alias-of-the-spool", root.join("backup/state/spool"), "spool"),
    ] {
        let alias = root.join(alias);
        std::fs::create_dir_all(&into).unwrap();
        std::os::unix::fs::symlink(&into, &alias).unwrap();
        let out =
            production.backup(&["restore", "--target-dir", alias.join("copy").to_str().unwrap(), "--latest"]);
        assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
        assert!(
            stderr(&out).contains(named) && stderr(&out).contains("symlinks resolved"),
            "{}",
            stderr(&out)
        );
        assert!(!into.join("copy").exists(), "nothing written into {}", into.display());
    }

    // Paths that guard data are judged with symlinks resolved: a drill's work directory and a
    // repository reached through a symlink to the data directory are refused.
    let alias = root.join("alias-of-the-data");
    std::os::unix::fs::symlink(production.cluster.pgdata(), &alias).unwrap();
    let drilled = production.backup(&["drill", "--work-dir", alias.to_str().unwrap()]);
    assert_eq!(drilled.status.code(), Some(1), "{}{}", stdout(&drilled), stderr(&drilled));
    assert!(stdout(&drilled).contains("production data directory"), "{}", stdout(&drilled));
    assert!(
        !std::fs::read_dir(&alias)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("drill-"))
    );
    let mut options = production.options();
    options.local = cabinet_db::backup::repository::Repo::Posix { path: alias.join("repo") };
    let refused = cabinet_db::backup::setup::setup(&production.url, &options).await.unwrap_err();
    assert!(refused.to_string().contains("inside it (symlinks resolved"), "{refused}");
    assert!(!production.cluster.pgdata().join("repo").exists(), "nothing written");
}
