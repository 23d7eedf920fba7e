use std::path::PathBuf;

use cabinet_db::tailnet::render::RenderedFile;

use crate::harness::{assert_snapshots, binary, stderr, stdout};

#[test]
fn the_schedule_units_match_their_golden_copies() {
    // Their snapshots are under tests/snapshots/backup-schedule.
    let scratch = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["backup", "--config", "/etc/cabinet-db/pgbackrest.conf", "schedule", "--out"])
        .arg(scratch.path())
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Vec<PathBuf> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(written.len(), 11);
    let units: Vec<RenderedFile> = written
        .iter()
        .map(|path| RenderedFile {
            path: path.file_name().unwrap().into(),
            contents: std::fs::read_to_string(path).unwrap(),
        })
        .collect();
    assert_snapshots("backup-schedule", &units);
    // systemd itself accepts them (with this build's binary in ExecStart, which must exist).
    let units = tempfile::tempdir().unwrap();
    let rendered = binary()
        .args([
            "backup",
            "schedule",
            "--out",
            units.path().to_str().unwrap(),
            "--binary",
            env!("CARGO_BIN_EXE_cabinet-db"),
        ])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(
            [
                "cabinet-db-backup-full.timer",
                "cabinet-db-backup-incr.timer",
                "cabinet-db-drill.timer",
                "cabinet-db-drill.service",
                "cabinet-db-backup-server.service",
                "cabinet-db-audit.timer",
                "cabinet-db-audit.service",
                "cabinet-db-metrics.timer",
                "cabinet-db-metrics.service",
            ]
            .map(|u| units.path().join(u)),
        )
        .output()
        .expect("systemd-analyze (Debian's systemd package) checks the units");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A drill URL with a password would leave it in a unit file: refused.
    let refused = binary()
        .args([
            "backup",
            "schedule",
            "--out",
            "/tmp/never",
            "--drill-database-url",
            "postgres://postgres:pw@localhost/cabinet",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("carries a password"), "{}", stderr(&refused));
}
