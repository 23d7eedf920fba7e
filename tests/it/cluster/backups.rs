//! pgBackRest in the live cluster: rendered with `--backups`, the witness is the repository
//! host. The leader archives, the repository host backs up from the streaming standby, and
//! after the leader is killed the new leader archives and backups come from it.

use std::{path::Path, process::Output, time::Duration};

use cabinet_db::backup::{pgbackrest::PgBackRest, server::run_as_owner};

use crate::{
    harness::{stderr, stdout},
    lab::{Killed, cluster::Live, in_netns},
};

const REPO_HOST: &str = "witness";
const TLS_PORT: &str = "18432";

/// `cabinet-db ARGS` on `host`, printing what it said when it fails.
fn on(live: &Live, host: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = live.cabinet(host, args, env);
    eprintln!("{host}: cabinet-db {}: {}{}", args.join(" "), stdout(&out), stderr(&out));
    out
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn the_leader_archives_the_repository_host_backs_up_from_the_standby_and_both_survive_a_failover() {
    let mut live = Live::start_with(true).await;
    let leader = live.leader_host().await;
    let standby = Live::other_node(leader);
    let _passwords = live.prepare(leader).await;
    let postgres = nix::unistd::User::from_name("postgres").unwrap().expect("the postgres user");
    let run_as = run_as_owner(postgres.uid.as_raw()).unwrap();

    // Certificates named by the tailnet addresses the hosts reach each other by.
    let pki = live.out.path().join("pki");
    for host in ["db1", "db2", REPO_HOST] {
        let out =
            on(&live, "client", &["backup", "certs", "--dir", &arg(&pki), "--host", Live::ip(host)], &[]);
        assert!(out.status.success());
    }
    let tls = |host: &str| {
        let ip = Live::ip(host);
        vec![
            "--tls-ca".to_owned(),
            arg(&pki.join("ca.crt")),
            "--tls-cert".to_owned(),
            arg(&pki.join(format!("{ip}.crt"))),
            "--tls-key".to_owned(),
            arg(&pki.join(format!("{ip}.key"))),
            "--tls-listen".to_owned(),
            ip.to_owned(),
            "--tls-port".to_owned(),
            TLS_PORT.to_owned(),
        ]
    };
    let configs: std::collections::HashMap<&str, std::path::PathBuf> =
        ["db1", "db2", REPO_HOST].map(|host| (host, live.dir(host).join("pgbackrest.conf"))).into();
    let config = |host: &str| configs[host].clone();
    let repo = live.dir(REPO_HOST).join("repo");
    let mut servers = Vec::new();
    let start_server = |servers: &mut Vec<Killed>, ns: &str, config: &Path| {
        let pgbackrest = PgBackRest::new(config, run_as.clone()).unwrap();
        let child = in_netns(ns, async move || {
            cabinet_db::testing::pgbackrest_server(&pgbackrest).spawn().expect("pgbackrest server")
        });
        servers.push(Killed(child));
    };

    // The repository host first (written, not yet checked), and its server.
    let mut repo_host_args: Vec<String> =
        ["backup", "--config", &arg(&config(REPO_HOST)), "setup-repo-host"].map(str::to_owned).to_vec();
    for node in ["db1", "db2"] {
        repo_host_args.extend(["--db-host".to_owned(), Live::ip(node).to_owned()]);
        repo_host_args.extend(["--pg-path".to_owned(), arg(&live.data_dir(node))]);
        repo_host_args.extend(["--pg-socket".to_owned(), arg(&live.dir(node).join("sock"))]);
    }
    repo_host_args.extend(["--repo".to_owned(), arg(&repo)]);
    repo_host_args.extend(["--state-dir".to_owned(), arg(&live.dir(REPO_HOST).join("pgbackrest"))]);
    repo_host_args.extend(tls(REPO_HOST));
    let repo_host_args: Vec<&str> = repo_host_args.iter().map(String::as_str).collect();
    let first = on(&live, REPO_HOST, &repo_host_args, &[]);
    assert_eq!(first.status.code(), Some(1), "not checked before the database hosts are set up");
    let text = std::fs::read_to_string(config(REPO_HOST)).unwrap();
    for line in ["pg1-host=100.101.2.1\n", "pg2-host=100.101.2.2\n", "tls-server-auth=100.101.2.2=cabinet\n"]
    {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    start_server(&mut servers, &live.ns[REPO_HOST], &config(REPO_HOST));

    // Each node: pgBackRest towards the repository host. The leader creates the stanza and
    // checks archiving; the standby is ready for when it leads.
    for node in [leader, standby] {
        // As root over the node's socket, as docs/deploy.md does it (the rendered pg_ident
        // lets root be postgres).
        let superuser =
            format!("postgres:///cabinet?host={}&user=postgres", live.dir(node).join("sock").display());
        let mut args: Vec<String> =
            ["backup", "--config", &arg(&config(node)), "setup", "--repo-host"].map(str::to_owned).to_vec();
        args.extend([Live::ip(REPO_HOST).to_owned(), "--repo".to_owned(), arg(&repo)]);
        args.extend(["--state-dir".to_owned(), arg(&live.dir(node).join("pgbackrest"))]);
        args.extend(tls(node));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = on(&live, node, &args, &[("DATABASE_URL", &superuser)]);
        assert_eq!(out.status.code(), Some(0), "{node}");
        if node == standby {
            assert!(stdout(&out).contains("a standby"), "{}", stdout(&out));
        }
        start_server(&mut servers, &live.ns[node], &config(node));
    }

    // The repository host checks the whole chain, then backs up — from the standby.
    let second = on(&live, REPO_HOST, &repo_host_args, &[]);
    assert_eq!(second.status.code(), Some(0), "the chain checked from the repository host");
    let repo_config = arg(&config(REPO_HOST));
    let backup = |live: &Live, kind: &str| {
        let out =
            on(live, REPO_HOST, &["--json", "backup", "--config", &repo_config, "run", "--type", kind], &[]);
        assert!(out.status.success());
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let full = backup(&live, "full");
    assert_eq!(full["from_standby"], true, "{full}");
    assert_eq!(full["backups"].as_array().unwrap().len(), 1, "{full}");

    // The leader dies. The new leader archives (the check forces a WAL switch and waits for
    // the segment) and, with no standby left, the next backup reads the leader's files.
    live.kill_node(leader);
    live.wait_for("the standby to lead", Duration::from_secs(60), |s| {
        s.view.leader().is_some_and(|l| l.name == standby && l.state == "running")
    })
    .await;
    let check = PgBackRest::new(&config(standby), run_as.clone()).unwrap();
    let ns = live.ns[standby].clone();
    let checked = in_netns(&ns, async move || check.run("check", &[]).map(|_| ()));
    assert!(checked.is_ok(), "the new leader's archiving: {checked:?}");
    let incremental = backup(&live, "incr");
    assert_eq!(incremental["from_standby"], false, "{incremental}");

    // The old leader returns (pg_rewind) and streams again: backups come from it.
    live.start_patroni(leader);
    live.wait_healthy("the old leader to rejoin", Duration::from_secs(90)).await;
    let again = backup(&live, "incr");
    assert_eq!(again["from_standby"], true, "{again}");
}
