use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use cabinet_db::cli::Cli;
use clap::CommandFactory;

use super::{
    HOST,
    completions::pages,
    debian_cluster::{DebianCluster, run},
};
use crate::harness::{binary, stderr, stdout};

/// The units the package installs, each as `systemd-analyze verify` takes it.
const UNITS: [&str; 13] = [
    "cabinet-db-serve.service",
    "cabinet-db-firewall.service",
    "cabinet-db-backup@full.service",
    "cabinet-db-backup-full.timer",
    "cabinet-db-backup-incr.timer",
    "cabinet-db-drill.service",
    "cabinet-db-drill.timer",
    "cabinet-db-audit.service",
    "cabinet-db-audit.timer",
    "cabinet-db-metrics.service",
    "cabinet-db-metrics.timer",
    "cabinet-db-backup-server.service",
    "cabinet-db-failed@cabinet-db-audit.service.service",
];

/// The package `scripts/package` built (scripts/test builds it first and names it in
/// CABINET_DEB); never skipped when missing.
pub(super) fn package() -> PathBuf {
    if let Some(path) = std::env::var_os("CABINET_DEB") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join(format!("debian/cabinet-db_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    assert!(path.exists(), "no {}: build it with scripts/package (scripts/test does, first)", path.display());
    path
}

/// The package is gone and so is what it leaves in /etc, whatever happened in the test.
pub(super) struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "cabinet-db"]).output();
        let _ = std::fs::remove_dir_all("/etc/cabinet-db");
    }
}

fn dpkg_field(deb: &Path, field: &str) -> String {
    stdout(&run("dpkg-deb", &["--field", deb.to_str().unwrap(), field])).trim().to_owned()
}

#[test]
fn the_package_holds_the_binary_pages_completions_units_and_one_conffile_and_lintian_finds_no_error() {
    let deb = package();
    let deb_arg = deb.to_str().unwrap();

    // Every file with its mode, owned by root.
    let listing = stdout(&run("dpkg-deb", &["--contents", deb_arg]));
    let entries: Vec<(String, String, String)> = listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0].to_owned(), fields[1].to_owned(), fields[5].trim_start_matches('.').to_owned())
        })
        .collect();
    let mode_of = |path: &str| {
        entries.iter().find(|(_, _, p)| p == path).map(|(mode, _, _)| mode.clone()).unwrap_or_else(|| {
            panic!("the package lacks {path}:\n{listing}");
        })
    };
    assert!(entries.iter().all(|(_, owner, _)| owner == "0/0"), "{listing}");
    assert_eq!(mode_of("/usr/bin/cabinet-db"), "-rwxr-xr-x");
    assert_eq!(mode_of("/etc/cabinet-db/cabinet-db.toml"), "-rw-r--r--");
    for unit in UNITS.iter().filter(|u| !u.starts_with("cabinet-db-failed@")) {
        let file = unit.replace("@full", "@");
        assert_eq!(mode_of(&format!("/lib/systemd/system/{file}")), "-rw-r--r--");
    }
    for completion in [
        "/usr/share/bash-completion/completions/cabinet-db",
        "/usr/share/zsh/vendor-completions/_cabinet-db",
        "/usr/share/fish/vendor_completions.d/cabinet-db.fish",
    ] {
        assert_eq!(mode_of(completion), "-rw-r--r--");
    }
    let mut commands = Vec::new();
    pages(&Cli::command(), "cabinet-db", "cabinet-db", &mut commands);
    for (page, _) in &commands {
        assert_eq!(mode_of(&format!("/usr/share/man/man1/{page}.1.gz")), "-rw-r--r--");
    }
    // The alert rules Prometheus loads, and the runbook their links point at.
    assert_eq!(mode_of("/usr/share/cabinet-db/prometheus/alerts.yml"), "-rw-r--r--");
    assert_eq!(mode_of("/usr/share/doc/cabinet-db/alerts.md"), "-rw-r--r--");
    assert_eq!(mode_of("/usr/share/doc/cabinet-db/metrics.md"), "-rw-r--r--");
    mode_of("/usr/share/doc/cabinet-db/copyright");
    mode_of("/usr/share/doc/cabinet-db/changelog.Debian.gz");

    // The control file: the one conffile, and what the host needs.
    let control = tempfile::tempdir().unwrap();
    run("dpkg-deb", &["--control", deb_arg, control.path().to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(control.path().join("conffiles")).unwrap(),
        "/etc/cabinet-db/cabinet-db.toml\n"
    );
    let depends = dpkg_field(&deb, "Depends");
    for needed in ["postgresql (>= 14)", "postgresql-common", "pgbackrest", "nftables", "adduser"] {
        assert!(depends.contains(needed), "Depends lacks {needed}: {depends}");
    }
    assert_eq!(dpkg_field(&deb, "Recommends"), "tailscale");
    assert_eq!(dpkg_field(&deb, "Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));

    // Debian's own checker: no error.
    let lintian = Command::new("lintian").args(["--fail-on", "error", deb_arg]).output().expect("lintian");
    assert!(lintian.status.success(), "lintian: {}{}", stdout(&lintian), stderr(&lintian));
}

#[test]
fn install_remove_and_purge_keep_the_database_and_take_only_what_the_package_made() {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let deb = package();
    let deb_arg = deb.to_str().unwrap();
    let _uninstall = Uninstall;
    drop(Command::new("dpkg").args(["--purge", "cabinet-db"]).output());
    // Arrange: a Debian cluster holding a row that must outlive the package.
    let cluster = DebianCluster::create("cdbpkg", 5497);
    cluster.psql("postgres", "CREATE DATABASE kept");
    cluster.psql("kept", "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");

    // Install.
    run("dpkg", &["--install", deb_arg]);
    let version = stdout(&run("/usr/bin/cabinet-db", &["--version"]));
    assert_eq!(version.trim(), format!("cabinet-db {}", env!("CARGO_PKG_VERSION")));
    let user = stdout(&run("getent", &["passwd", "cabinet-db"]));
    assert!(user.trim().ends_with(":/nonexistent:/usr/sbin/nologin"), "{user}");
    // It is this build's package: the installed completion is what this binary prints.
    let completion = binary().args(["completions", "bash"]).output().unwrap();
    assert_eq!(
        std::fs::read_to_string("/usr/share/bash-completion/completions/cabinet-db").unwrap(),
        stdout(&completion),
        "the package is stale: rebuild it with scripts/package"
    );
    // systemd accepts every unit as installed (ExecStart's binary, the user, the sandboxing).
    let units: Vec<String> = UNITS.iter().map(|u| format!("/lib/systemd/system/{u}")).collect();
    let verify = Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    assert!(verify.status.success() && verify.stderr.is_empty(), "{}", stderr(&verify));
    let man = Command::new("man").args(["-w", "cabinet-db-serve"]).output().unwrap();
    assert_eq!(stdout(&man).trim(), "/usr/share/man/man1/cabinet-db-serve.1.gz");
    // Every command reads the installed configuration file.
    let shown = Command::new("/usr/bin/cabinet-db")
        .args(["--json", "config", "show"])
        .env_remove("CABINET_CONFIG")
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["file"], "/etc/cabinet-db/cabinet-db.toml");
    assert_eq!(shown["settings"][0]["source"]["kind"], "file");

    // The operator enables a timer and edits the file.
    run("systemctl", &["enable", "cabinet-db-audit.timer"]);
    let config = Path::new("/etc/cabinet-db/cabinet-db.toml");
    let edited = format!("{}# edited by the operator\n", std::fs::read_to_string(config).unwrap());
    std::fs::write(config, &edited).unwrap();

    // apt-get remove: the program goes, the configuration stays as edited, no timer is left enabled.
    let apt_get = |action: &str| {
        let out = Command::new("apt-get")
            .args([action, "--yes", "--quiet", "cabinet-db"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        assert!(out.status.success(), "apt-get {action}: {}{}", stdout(&out), stderr(&out));
        out
    };
    apt_get("remove");
    assert!(!Path::new("/usr/bin/cabinet-db").exists());
    assert_eq!(std::fs::read_to_string(config).unwrap(), edited);
    assert!(!Path::new("/etc/systemd/system/timers.target.wants/cabinet-db-audit.timer").exists());
    assert!(Command::new("getent").args(["passwd", "cabinet-db"]).output().unwrap().status.success());
    assert!(cluster.is_online());
    assert_eq!(cluster.psql("kept", "SELECT x FROM t"), "42");

    // Purge, with a password file the package did not install.
    std::fs::create_dir_all("/etc/cabinet-db/secrets").unwrap();
    let secret = Path::new("/etc/cabinet-db/secrets/cabinet_admin.password");
    std::fs::write(secret, "not the package's\n").unwrap();
    std::fs::set_permissions(secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let purge = apt_get("purge");
    assert!(!config.exists(), "purge removes the configuration file");
    assert!(secret.exists(), "purge never removes what the package did not install");
    // apt-get passes dpkg's and the maintainer scripts' messages on, on either stream.
    let said = format!("{}{}", stdout(&purge), stderr(&purge));
    assert!(said.contains("/etc/cabinet-db still holds files the package did not install"), "{said}");
    let exists = |database: &str| {
        Command::new("getent").args([database, "cabinet-db"]).output().unwrap().status.success()
    };
    assert!(!exists("passwd") && !exists("group"), "purge removes the system user and its group");
    assert!(cluster.is_online() && cluster.data_dir().join("PG_VERSION").exists());
    assert_eq!(cluster.psql("kept", "SELECT x FROM t"), "42", "the database outlives the package");
}
