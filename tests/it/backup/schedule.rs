use std::path::PathBuf;

use crate::harness::{binary, stderr, stdout};

#[test]
fn the_schedule_units_match_their_golden_copies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/backup-schedule");
    let scratch = tempfile::tempdir().unwrap();
    let target =
        if std::env::var_os("UPDATE_GOLDEN").is_some() { dir.clone() } else { scratch.path().to_owned() };
    let out = binary()
        .args(["backup", "--config", "/etc/cabinet-db/pgbackrest.conf", "schedule", "--out"])
        .arg(&target)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Vec<PathBuf> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(written.len(), 9);
    for path in written {
        let golden = dir.join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&golden)
                .unwrap_or_else(|_| panic!("no {}; run with UPDATE_GOLDEN=1", golden.display())),
            "{}",
            path.display()
        );
    }
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
