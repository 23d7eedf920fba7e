//! PostgreSQL older than 14 is refused, both as server binaries and as a server. Uses a real
//! PostgreSQL 13 from `scripts/fetch-postgres 13` (or `CABINET_TEST_PG13_BINDIR`).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use cabinet_db::local_cluster::RunAs;
use sqlx::Connection;

use crate::harness::{binary, stderr};

fn pg13_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("CABINET_TEST_PG13_BINDIR") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-postgres");
    let out = Command::new(&script).arg("13").output().expect("run scripts/fetch-postgres");
    assert!(
        out.status.success(),
        "these tests need a PostgreSQL 13; scripts/fetch-postgres 13 failed (it needs npm and the npm registry):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn reachable_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cabinet-db-pg13-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn dev_up_refuses_server_binaries_older_than_14() {
    let dir = reachable_tempdir();
    let data_dir = dir.path().join("dev");
    let out = binary()
        .env("PG_BINDIR", pg13_bindir())
        .args(["dev", "up", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("13.23, but cabinet-db needs 14 or newer"), "{}", stderr(&out));
    assert!(!data_dir.exists(), "nothing is created for a refused server");
}

/// A PostgreSQL 13 server, stopped on drop.
struct Pg13 {
    pgdata: PathBuf,
    bindir: PathBuf,
    run_as: RunAs,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Pg13 {
    fn start() -> Pg13 {
        let dir = reachable_tempdir();
        let bindir = pg13_bindir();
        let run_as = RunAs::detect().unwrap();
        let pgdata = dir.path().join("pgdata");
        std::fs::create_dir(&pgdata).unwrap();
        std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700)).unwrap();
        run_as.hand_over(&pgdata).unwrap();
        run_as.hand_over(dir.path()).unwrap();
        let status = run_as
            .command(&bindir.join("initdb"))
            .arg("-D")
            .arg(&pgdata)
            .args(["-U", "old_super", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(status.status.success(), "initdb 13: {}", String::from_utf8_lossy(&status.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {}", dir.path().display());
        let started = run_as
            .command(&bindir.join("pg_ctl"))
            .args(["start", "-w", "-D"])
            .arg(&pgdata)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .output()
            .unwrap();
        assert!(started.status.success(), "pg_ctl 13: {}", String::from_utf8_lossy(&started.stderr));
        Pg13 { pgdata, bindir, run_as, port, _dir: dir }
    }

    fn url(&self) -> String {
        format!("postgres://old_super@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg13 {
    fn drop(&mut self) {
        let _ = self
            .run_as
            .command(&self.bindir.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.pgdata)
            .output();
    }
}

#[tokio::test]
async fn migrate_refuses_a_server_older_than_14_and_writes_nothing() {
    // Arrange
    let server = Pg13::start();

    // Act
    let out = binary().env("DATABASE_URL", server.url()).args(["migrate", "up"]).output().unwrap();

    // Assert
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("runs PostgreSQL 13.23, but cabinet-db needs 14 or newer"),
        "{}",
        stderr(&out)
    );
    let mut conn = sqlx::PgConnection::connect(&server.url()).await.unwrap();
    let ledger: bool = sqlx::query_scalar("SELECT to_regclass('cabinet_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!ledger, "nothing may be written to a refused server");
}
