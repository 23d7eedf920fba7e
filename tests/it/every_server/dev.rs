use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    time::Instant,
};

use sqlx::Connection;

use crate::harness::{binary, stderr, stdout};

/// A development database's directory in /tmp (the server user can reach it when we are
/// root) and a free port; the cluster is stopped when the test ends, passed or failed.
struct DevDir {
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
    port: String,
}

impl DevDir {
    fn new(prefix: &str) -> DevDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir_in("/tmp")
            .unwrap();
        let data_dir = dir.path().join("dev");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        DevDir { _dir: dir, data_dir, port }
    }
}

impl Drop for DevDir {
    fn drop(&mut self) {
        let _ = binary().args(["dev", "down", "--data-dir"]).arg(&self.data_dir).output();
    }
}

fn dev(dir: &Path, args: &[&str]) -> std::process::Output {
    binary().arg("dev").args(args).arg("--data-dir").arg(dir).output().unwrap()
}

#[tokio::test]
async fn dev_up_creates_a_working_database_and_is_idempotent() {
    // Arrange
    let dev_dir = DevDir::new("cabinet-dev-test-");
    let (data_dir, port) = (dev_dir.data_dir.clone(), dev_dir.port.clone());

    // Act
    let started = Instant::now();
    let first = dev(&data_dir, &["up", "--port", &port, "--json"]);
    let first_secs = started.elapsed().as_secs_f64();
    let second = dev(&data_dir, &["up", "--json"]);

    // Assert
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    let first: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    let second: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    eprintln!("dev up (cold) took {first_secs:.2} s");
    assert!(first["actions"].as_array().unwrap().iter().any(|a| a == "loaded demo data"));
    assert_eq!(second["actions"], serde_json::json!([]), "a second up changes nothing");
    assert_eq!(second["migration_version"], crate::harness::real_head());
    assert_eq!(
        second["tables"],
        serde_json::json!([
            {"table": "sites", "rows": 3},
            {"table": "users", "rows": 3},
            {"table": "sites_history", "rows": 3},
            {"table": "users_history", "rows": 3},
            {"table": "history_prunes", "rows": 0}
        ])
    );
    let url = second["database_url"].as_str().unwrap();
    assert!(url.starts_with("postgres://cabinet:") && url.ends_with(&format!("@127.0.0.1:{port}/cabinet")));

    // The URL works for other tools, check finds no drift, and the audit passes.
    let check = binary().env("DATABASE_URL", url).args(["migrate", "check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let audit = binary().env("DATABASE_URL", url).arg("audit").output().unwrap();
    assert_eq!(audit.status.code(), Some(0), "{}", stdout(&audit));
    assert!(stdout(&audit).contains(" 0 failed"), "{}", stdout(&audit));

    // As root, the server runs as the unprivileged postgres user and owns its data.
    if nix::unistd::geteuid().is_root() {
        assert_eq!(second["server_user"], "postgres");
        let owner = std::fs::metadata(data_dir.join("pgdata")).unwrap().uid();
        let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        assert_eq!(owner, postgres.uid.as_raw());
    }

    // The n8n role's URL can read sites and nothing more.
    let n8n_url = second["role_urls"]["cabinet_n8n"].as_str().expect("an n8n URL");
    let mut n8n = sqlx::PgConnection::connect(n8n_url).await.unwrap();
    let sites: i64 = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut n8n).await.unwrap();
    assert_eq!(sites, 3);
    assert!(sqlx::query("SELECT * FROM users").execute(&mut n8n).await.is_err());
    assert!(sqlx::query("DELETE FROM sites").execute(&mut n8n).await.is_err());
    assert!(second["role_urls"]["cabinet_admin"].is_string());

    // The password file is private.
    let mode = std::fs::metadata(data_dir.join("superuser.password")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Human status shows the demo rows; down stops it; status then says stopped.
    let printed_url = dev(&data_dir, &["url"]);
    assert_eq!(stdout(&printed_url).trim(), url);
    let status = dev(&data_dir, &["status"]);
    assert!(stdout(&status).contains("acme.example.com"), "{}", stdout(&status));
    assert!(!stdout(&status).contains(url), "the human output never shows the password");

    // A password with URL-special characters is percent-encoded in the printed URL.
    let awkward = "p@ss/w:rd%#?&=+ x";
    let mut superuser = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER ROLE cabinet_admin PASSWORD '{awkward}'")))
        .execute(&mut superuser)
        .await
        .unwrap();
    std::fs::write(data_dir.join("secrets/cabinet_admin.password"), format!("{awkward}\n")).unwrap();
    let admin_url = stdout(&dev(&data_dir, &["url", "--role", "cabinet_admin"])).trim().to_owned();
    assert!(!admin_url.contains(awkward), "{admin_url}");
    let admin = sqlx::PgConnection::connect(&admin_url).await.expect("the printed URL works");
    admin.close().await.unwrap();
    superuser.close().await.unwrap();

    // A row no reader can show (a superuser dropped the rule): `dev url` still answers (it
    // reads no rows), `dev status` names the row instead of crashing.
    let mut superuser = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE sites DROP CONSTRAINT sites_created_at_range;
         UPDATE sites SET created_at = 'infinity' WHERE site_id = 'demo-acme'",
    )
    .execute(&mut superuser)
    .await
    .unwrap();
    assert_eq!(stdout(&dev(&data_dir, &["url"])).trim(), url);
    let broken = dev(&data_dir, &["status"]);
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
    assert!(
        stderr(&broken).contains("site_id = \"demo-acme\": column created_at holds infinity"),
        "{}",
        stderr(&broken)
    );
    sqlx::raw_sql(
        "UPDATE sites SET created_at = now() WHERE site_id = 'demo-acme';
         ALTER TABLE sites ADD CONSTRAINT sites_created_at_range
           CHECK (created_at >= '0001-01-01 00:00:00+00'::timestamptz AND created_at < '10000-01-01 00:00:00+00'::timestamptz)",
    )
    .execute(&mut superuser)
    .await
    .unwrap();
    superuser.close().await.unwrap();
    let down = dev(&data_dir, &["down"]);
    assert!(stdout(&down).contains("Stopped"), "{}", stdout(&down));
    let stopped: serde_json::Value =
        serde_json::from_str(&stdout(&dev(&data_dir, &["status", "--json"]))).unwrap();
    assert_eq!(stopped["running"], false);
}

#[test]
fn dev_up_without_server_binaries_says_how_to_install_them() {
    let out = binary()
        .env("PG_BINDIR", "/nonexistent/bin")
        .args(["dev", "up", "--data-dir", "/tmp/cabinet-dev-never-created"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("apt-get install postgresql"), "{}", stderr(&out));
    assert!(!Path::new("/tmp/cabinet-dev-never-created").exists());
}

#[tokio::test]
async fn with_backups_a_newcomer_restores_deleted_sites_to_the_second_before() {
    // Arrange: the README's walk, step by step, through the binary.
    let dev_dir = DevDir::new("cabinet-dev-backups-");
    let (data_dir, port) = (dev_dir.data_dir.clone(), dev_dir.port.clone());
    let up = dev(&data_dir, &["up", "--port", &port, "--backups"]);
    let major = cabinet_db::local_cluster::PgBinaries::locate().unwrap().major();
    if let Some(needed) = crate::harness::pgbackrest_needed_for(major) {
        // Debian 12's pgBackRest (2.45) cannot read PostgreSQL 16+: refused, saying what is needed.
        assert_eq!(up.status.code(), Some(2));
        assert!(stderr(&up).contains(&format!("needs pgBackRest {needed} or newer")), "{}", stderr(&up));
        return;
    }
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(stdout(&up).contains("took a full backup"), "{}", stdout(&up));
    let env = stdout(&dev(&data_dir, &["env"]));
    let value = |name: &str| {
        let line = env.lines().find(|l| l.starts_with(&format!("export {name}="))).unwrap();
        line.split_once('=').unwrap().1.trim_matches('\'').to_owned()
    };
    let (url, config) = (value("DATABASE_URL"), value("CABINET_BACKUP_CONFIG"));

    // Act: note the time, delete every site, restore to the second before.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let t = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("DELETE FROM sites").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let restored_dir = data_dir.with_file_name("restored");
    let restore = binary()
        .env("DATABASE_URL", &url)
        .env("CABINET_BACKUP_CONFIG", &config)
        .args(["backup", "restore", "--target-dir", restored_dir.to_str().unwrap(), "--time", &t, "--json"])
        .output()
        .unwrap();
    assert!(restore.status.success(), "{}", stderr(&restore));
    let report: serde_json::Value = serde_json::from_str(&stdout(&restore)).unwrap();
    let copy_url = report["url"].as_str().unwrap();

    // Assert: the three demo sites are back, in the copy.
    let sites = binary().env("DATABASE_URL", copy_url).args(["--json", "sites", "list"]).output().unwrap();
    let page: serde_json::Value = serde_json::from_str(&stdout(&sites)).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    let listed = binary().env("CABINET_BACKUP_CONFIG", &config).args(["backup", "list"]).output().unwrap();
    assert!(listed.status.success() && stdout(&listed).contains("full"), "{}", stdout(&listed));
    cabinet_db::backup::restore::stop_and_remove(&cabinet_db::local_cluster::LocalCluster {
        root: restored_dir,
        port: report["port"].as_u64().unwrap() as u16,
        binaries: cabinet_db::local_cluster::PgBinaries::locate().unwrap(),
        run_as: cabinet_db::local_cluster::RunAs::detect().unwrap(),
    });
}
