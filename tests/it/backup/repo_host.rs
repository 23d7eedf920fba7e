//! A repository on a second tailnet host: two network namespaces (root only: CI runs as root)
//! joined by one link, each with a tailnet address and its own `pgbackrest server`. The
//! database host archives to the repository host over TLS, the repository host takes the
//! backups, the database host restores from it — and a certificate from the same CA with
//! another name, or one from a foreign CA with the right name, is refused.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    time::Duration,
};

use cabinet_db::{
    backup::{
        pgbackrest::PgBackRest,
        repository::Repo,
        restore::{self, RestoreOptions, Target},
        setup::SetupOptions,
        tls::{TlsFiles, TlsOptions},
    },
    local_cluster::RunAs,
};

use super::{
    Copy, Production, archived_wal, assert_refused_before_writing, exec,
    fake_s3::{FakeS3, passphrase_file},
    fingerprint, mistake_after_t,
    offsite::{KEY, SECRET, offsite_of},
};
use crate::{
    harness::{stderr, stdout},
    lab::{add_namespaces, forward_into, in_netns, sh},
};

const DB_IP: &str = "100.101.104.1";
const REPO_IP: &str = "100.101.104.2";
/// Not pgBackRest's default, so the port is proven to come from the configuration.
const TLS_PORT: u16 = 18432;

/// Two namespaces and their link; removed on drop.
struct Pair {
    db: String,
    repo: String,
}

impl Pair {
    fn create() -> Pair {
        let [db, repo] = add_namespaces("the repository-host test", ["bdb", "brp"]);
        let pair = Pair { db, repo };
        let pid = std::process::id();
        let (db_dev, repo_dev) = (format!("bdb{pid}"), format!("brp{pid}"));
        sh(&[
            "ip", "link", "add", &db_dev, "netns", &pair.db, "type", "veth", "peer", "name", &repo_dev,
            "netns", &pair.repo,
        ]);
        for (ns, dev, ip) in [(&pair.db, &db_dev, DB_IP), (&pair.repo, &repo_dev, REPO_IP)] {
            sh(&["ip", "-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in [&self.db, &self.repo] {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A `pgbackrest server`, stopped when the test ends.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this configuration's server from the calling thread's namespace and waits until it
/// listens.
fn start_server(config: &Path, run_as: &RunAs, listen: &str) -> ServerProcess {
    let pgbackrest = PgBackRest::new(config, run_as.clone()).unwrap();
    let child = cabinet_db::testing::pgbackrest_server(&pgbackrest).spawn().expect("pgbackrest server");
    let server = ServerProcess(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect((listen, TLS_PORT)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("pgbackrest server did not listen on {listen}:{TLS_PORT}");
}

fn cabinet_db(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cabinet-db"))
        .env("CABINET_CONFIG", crate::harness::NO_CONFIG)
        .args(args)
        .output()
        .unwrap()
}

/// `backup certs` for one host.
fn issue(pki: &Path, host: &str) -> TlsFiles {
    let out = cabinet_db(&["backup", "certs", "--dir", pki.to_str().unwrap(), "--host", host]);
    assert!(out.status.success(), "{}", stderr(&out));
    TlsFiles {
        ca: pki.join("ca.crt"),
        cert: pki.join(format!("{host}.crt")),
        key: pki.join(format!("{host}.key")),
    }
}

#[test]
fn a_second_host_keeps_the_backups_over_tls_and_admits_no_one_else() {
    let pair = Pair::create();
    let repo_ns = pair.repo.clone();
    // The offsite bucket, reachable from both hosts at https://localhost:<port> as on loopback.
    let s3 = FakeS3::start("repo-host-offsite");
    for ns in [&pair.db, &pair.repo] {
        forward_into(ns, s3.https_port);
    }
    let secrets_dir = tempfile::tempdir().unwrap();
    let pass_file = passphrase_file(secrets_dir.path());
    let offsite = offsite_of(&s3, &pass_file);
    let s3_args = [
        "--s3-endpoint".to_owned(),
        s3.endpoint(),
        "--s3-bucket".to_owned(),
        s3.bucket.clone(),
        "--s3-region".to_owned(),
        "us-east-1".to_owned(),
        "--s3-uri-style".to_owned(),
        "path".to_owned(),
        "--s3-ca-file".to_owned(),
        s3.ca_file().display().to_string(),
        "--cipher-pass-file".to_owned(),
        pass_file.display().to_string(),
    ];
    in_netns(&pair.db.clone(), async move || {
        // Arrange: a database host with rows, certificates for both hosts from one CA.
        let production = Production::start("backup-repo-host").await;
        let RunAs::User { name: os_user, .. } = production.cluster.run_as.clone() else {
            unreachable!("root runs the cluster as its own user")
        };
        let root = production.cluster.root.clone();
        let pki = root.join("pki");
        let db_tls = issue(&pki, DB_IP);
        let repo_tls = issue(&pki, REPO_IP);
        let (repo_config, repo_dir) = (root.join("repohost/pgbackrest.conf"), root.join("repohost/repo"));
        let options = SetupOptions {
            local: Repo::Remote { host: REPO_IP.to_owned(), path: repo_dir.clone() },
            tls: Some(TlsOptions { files: db_tls.clone(), listen: DB_IP.to_owned(), port: TLS_PORT }),
            offsite: Some(offsite),
            ..production.options()
        };
        if production.refuses_a_version_pgbackrest_cannot_read(&options).await {
            return;
        }

        // The repository host first: written, not yet checked (nothing answers on the db side).
        let repo_host_args: Vec<String> = [
            "backup",
            "--config",
            repo_config.to_str().unwrap(),
            "setup-repo-host",
            "--db-host",
            DB_IP,
            "--repo",
            repo_dir.to_str().unwrap(),
            "--state-dir",
            root.join("repohost/state").to_str().unwrap(),
            "--pg-path",
            production.cluster.pgdata().to_str().unwrap(),
            "--pg-port",
            &production.cluster.port.to_string(),
            "--pg-socket",
            production.cluster.socket_dir().to_str().unwrap(),
            "--pg-user",
            crate::harness::TEST_SUPERUSER,
            "--os-user",
            &os_user,
            "--tls-ca",
            repo_tls.ca.to_str().unwrap(),
            "--tls-cert",
            repo_tls.cert.to_str().unwrap(),
            "--tls-key",
            repo_tls.key.to_str().unwrap(),
            "--tls-listen",
            REPO_IP,
            "--tls-port",
            &TLS_PORT.to_string(),
        ]
        .map(str::to_owned)
        .into_iter()
        // The same bucket and passphrase as the database host: backups go there too.
        .chain(s3_args)
        .collect();
        let on_repo_host = {
            let (ns, args) = (repo_ns.clone(), repo_host_args.clone());
            move || {
                let (ns, args) = (ns.clone(), args.clone());
                in_netns(&ns, async move || {
                    Command::new(env!("CARGO_BIN_EXE_cabinet-db"))
                        .env("CABINET_CONFIG", crate::harness::NO_CONFIG)
                        .env("AWS_ACCESS_KEY_ID", KEY)
                        .env("AWS_SECRET_ACCESS_KEY", SECRET)
                        .args(&args)
                        .output()
                        .unwrap()
                })
            }
        };
        let first = on_repo_host();
        assert_eq!(first.status.code(), Some(1), "{}{}", stdout(&first), stderr(&first));
        assert!(stdout(&first).contains("not checked yet"), "{}", stdout(&first));
        let config_text = std::fs::read_to_string(&repo_config).unwrap();
        assert!(
            config_text.contains(&format!("tls-server-auth={DB_IP}=cabinet\n"))
                && config_text.contains(&format!("pg1-host={DB_IP}\npg1-host-type=tls\n")),
            "{config_text}"
        );
        let key_mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(TlsFiles::installed(&repo_config).key).unwrap().permissions(),
        );
        assert_eq!(key_mode & 0o777, 0o600);
        let (config, run_as) = (repo_config.clone(), production.cluster.run_as.clone());
        let _repo_server = in_netns(&repo_ns, async move || start_server(&config, &run_as, REPO_IP));

        // The database host: archiving to the repository host, stanza and check through it.
        production.set_up_backups_with(&options).await;
        let _db_server = start_server(&production.config, &production.cluster.run_as, DB_IP);
        assert!(!archived_wal(&repo_dir).is_empty(), "WAL arrived in the repository host's directory");
        let local = production.cluster.root.join("backup/repo");
        assert!(!local.join("archive").exists(), "nothing is kept on the database host");

        // The repository host again: the whole chain checked from there; it takes the backup.
        let second = on_repo_host();
        assert!(second.status.success(), "{}{}", stdout(&second), stderr(&second));
        let repo_config_arg = repo_config.to_str().unwrap().to_owned();
        let backup = in_netns(&repo_ns, async move || {
            cabinet_db(&["backup", "--config", &repo_config_arg, "run", "--type", "full", "--json"])
        });
        assert!(backup.status.success(), "{}", stderr(&backup));
        let ran: serde_json::Value = serde_json::from_str(&stdout(&backup)).unwrap();
        let sets = ran["backups"].as_array().unwrap();
        assert_eq!(sets.len(), 2, "into the repository host and the bucket: {sets:?}");
        assert!(ran["from_standby"].is_null(), "one database host: {ran}");
        // The database host cannot take one (pgBackRest backs up only on the repository host)
        // and says where to; it lists what the repository host holds.
        let refused = production.backup(&["run"]);
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains(&format!("taken on its repository host, {REPO_IP}")),
            "{}",
            stderr(&refused)
        );
        let listed = production.backup(&["list", "--json"]);
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert!(stdout(&listed).contains("\"full\""), "{}", stdout(&listed));
        // verify runs where the repository is (pgBackRest 2.45's crashes through the server);
        // the bucket, which this host reaches directly, it verifies from here (the offsite
        // drill below does).
        let elsewhere = production.backup(&["verify", "--repo", "1"]);
        assert!(!elsewhere.status.success());
        assert!(
            stderr(&elsewhere)
                .contains(&format!("repository is on {REPO_IP}: run cabinet-db backup verify there")),
            "{}",
            stderr(&elsewhere)
        );
        let repo_config_arg = repo_config.to_str().unwrap().to_owned();
        let verified =
            in_netns(&repo_ns, async move || cabinet_db(&["backup", "--config", &repo_config_arg, "verify"]));
        assert!(verified.status.success(), "{}{}", stdout(&verified), stderr(&verified));

        // A point in time, restored on the database host from the repository host.
        let (before, t) = mistake_after_t(&production.url, "DELETE FROM sites").await;
        exec(production.url.expose(), "SELECT pg_switch_wal()").await;
        let report = restore::restore(&RestoreOptions {
            config_path: production.config.clone(),
            target_dir: root.join("copy"),
            port: None,
            target: Target::Time(t),
            repo: None,
            live: Some(production.url.clone()),
            database: "cabinet".to_owned(),
        })
        .await
        .unwrap();
        let _copy = Copy::of(&production, &report.data_dir);
        assert_eq!(fingerprint(report.url.expose()).await, before, "every row as at T");

        // The drill restores through the repository host, and from the bucket (verified from
        // here: it is reachable directly), and the audit is satisfied.
        let offsite_drill = production.backup(&["drill", "--repo", "2"]);
        assert!(offsite_drill.status.success(), "{}{}", stdout(&offsite_drill), stderr(&offsite_drill));
        let drill = production.backup(&["drill"]);
        assert!(
            drill.status.success(),
            "{}{}\nthe logs said:\n{}",
            stdout(&drill),
            stderr(&drill),
            logs(&root)
        );
        assert_eq!(production.backup_failures(), Vec::<(String, String)>::new());

        // Strangers: the same CA with another name, then a foreign CA with the right name.
        let stranger = issue(&pki, "stranger");
        let foreign = issue(&root.join("foreign-pki"), DB_IP);
        let wal = archived_wal(&repo_dir).remove(0)[..24].to_owned();
        for (who, files, expected) in
            [("stranger", &stranger, "access denied"), ("foreign", &foreign, "TLS error")]
        {
            let refused = fetch_wal_as(&production, files, &root.join(who), &wal);
            assert!(!refused.status.success(), "{who} fetched WAL: {}", stdout(&refused));
            let text = format!("{}{}", stdout(&refused), stderr(&refused));
            assert!(text.contains(expected), "{who}: {text}");
            assert!(!root.join(who).join("wal").exists(), "{who} got nothing");
        }
        // The control: the database host's own certificate fetches it.
        let own = TlsFiles::installed(&production.config);
        let fetched = fetch_wal_as(&production, &own, &root.join("own"), &wal);
        assert!(fetched.status.success(), "{}", stderr(&fetched));
    });
}

/// `pgbackrest archive-get` from the database host's configuration, presenting `files`'s
/// certificate and key (and trusting our CA, so only the server's verdict can stop it).
fn fetch_wal_as(production: &Production, files: &TlsFiles, dir: &Path, wal: &str) -> Output {
    std::fs::create_dir_all(dir.join("pgbackrest.d")).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (from, to) in [(&files.cert, &cert), (&files.key, &key)] {
        std::fs::copy(from, to).unwrap();
        production.cluster.run_as.hand_over(to).unwrap();
    }
    for owned in [dir.to_owned(), dir.join("pgbackrest.d")] {
        production.cluster.run_as.hand_over(&owned).unwrap();
    }
    let own = TlsFiles::installed(&production.config);
    let config = dir.join("pgbackrest.conf");
    // Only the link to the repository host (not the bucket, which needs its own secrets).
    let text = std::fs::read_to_string(&production.config)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("repo2-"))
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        .replace(
            &format!("repo1-host-cert-file={}", own.cert.display()),
            &format!("repo1-host-cert-file={}", cert.display()),
        )
        .replace(
            &format!("repo1-host-key-file={}", own.key.display()),
            &format!("repo1-host-key-file={}", key.display()),
        );
    std::fs::write(&config, text).unwrap();
    let pgbackrest = PgBackRest::new(&config, production.cluster.run_as.clone()).unwrap();
    let target: PathBuf = dir.join("wal");
    pgbackrest.command("archive-get", &[wal.to_owned(), target.display().to_string()]).output().unwrap()
}

/// The tails of pgBackRest's logs on both hosts, for a failure's message.
fn logs(root: &Path) -> String {
    let mut out = String::new();
    for dir in ["repohost/state/log", "backup/state/log"] {
        for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "== {}\n{}\n",
                entry.path().display(),
                lines[lines.len().saturating_sub(12)..].join("\n")
            ));
        }
    }
    out
}

#[test]
fn hostile_repository_host_options_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/pgbackrest.conf");
    let state = dir.path().join("state");
    let pki = dir.path().join("pki");
    let good = issue(&pki, "repo.example");
    let leaked_key = dir.path().join("leaked.key");
    std::fs::copy(&good.key, &leaked_key).unwrap();
    std::fs::set_permissions(&leaked_key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let cert_as_key = dir.path().join("cert-as.key");
    std::fs::copy(&good.cert, &cert_as_key).unwrap();
    std::fs::set_permissions(&cert_as_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let tls = |listen: &str, key: &Path| {
        [
            "--tls-ca",
            good.ca.to_str().unwrap(),
            "--tls-cert",
            good.cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-listen",
            listen,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let with =
        |extra: &[&str], tls: Vec<String>| [extra.iter().map(|s| s.to_string()).collect(), tls].concat();
    let tailnet = "100.101.104.9";
    let setup_cases: Vec<(Vec<String>, &str)> = vec![
        (with(&["--repo-host", "repo\nrepo1-path=/etc"], tls(tailnet, &good.key)), r"repo\nrepo1-path=/etc"),
        (with(&["--repo-host", "repo"], tls("0.0.0.0", &good.key)), "tailnet address"),
        (with(&["--repo-host", "repo"], tls("198.51.100.7", &good.key)), "tailnet address"),
        (with(&["--repo-host", "repo"], tls(tailnet, &leaked_key)), "chmod 600"),
        (with(&["--repo-host", "repo"], tls(tailnet, &cert_as_key)), "not a PEM private key"),
        (with(&["--repo-host", "repo", "--repo", "rel/repo"], tls(tailnet, &good.key)), "absolute path"),
        (with(&["--repo-host", "repo"], vec![]), "--tls-ca"),
        (with(&[], tls(tailnet, &good.key)), "give --repo-host too"),
    ];
    assert_refused_before_writing("setup", &config, &state, &[], setup_cases);
    let repo_host_cases: Vec<(Vec<String>, &str)> = vec![
        (with(&["--db-host", "db host"], tls(tailnet, &good.key)), "not a host name"),
        (
            with(&["--db-host", "db", "--pg-user", "postgres\npg1-path=/"], tls(tailnet, &good.key)),
            "--pg-user",
        ),
        (
            with(&["--db-host", "db", "--pg-path", "/data\n[global]"], tls(tailnet, &good.key)),
            r"/data\n[global]",
        ),
        (
            with(&["--db-host", "db", "--os-user", "no-such-user-here"], tls(tailnet, &good.key)),
            "no such user",
        ),
        (with(&["--db-host", "db"], tls("::", &good.key)), "tailnet address"),
        (with(&["--db-host", "db"], vec![]), "needs --tls-ca"),
        // A cluster's nodes: each named once; a data or socket directory for all or one each.
        (with(&["--db-host", "db1", "--db-host", "db1"], tls(tailnet, &good.key)), "named twice"),
        (
            with(
                &[
                    "--db-host",
                    "db1",
                    "--db-host",
                    "db2",
                    "--pg-path",
                    "/a",
                    "--pg-path",
                    "/b",
                    "--pg-path",
                    "/c",
                ],
                tls(tailnet, &good.key),
            ),
            "one per --db-host (2 given)",
        ),
        (
            with(&["--db-host", "db1", "--db-host", "db2\npg3-host=evil"], tls(tailnet, &good.key)),
            "not a host name",
        ),
        (
            with(
                &[
                    "--db-host",
                    "db1",
                    "--db-host",
                    "db2",
                    "--pg-socket",
                    "/s",
                    "--pg-socket",
                    "/run/x\n[global]",
                ],
                tls(tailnet, &good.key),
            ),
            r"/run/x\n[global]",
        ),
    ];
    assert_refused_before_writing("setup-repo-host", &config, &state, &[], repo_host_cases);
    // A second certificate for the same host is refused; the first stays.
    let before = std::fs::read(&good.cert).unwrap();
    let again = cabinet_db(&["backup", "certs", "--dir", pki.to_str().unwrap(), "--host", "repo.example"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&good.cert).unwrap(), before);
}
