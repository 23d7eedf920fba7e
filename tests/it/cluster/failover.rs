//! The live cluster through its faults, under a writer and an n8n-like reader on the client
//! host: a planned switchover, `kill -9` of the leader, the killed node's return (pg_rewind),
//! and a leader cut off the network (it must stop taking writes before another node takes
//! over: no split brain), each losing no acknowledged commit.

use std::time::Duration;

use sqlx::{ConnectOptions, Connection};

use crate::lab::{
    cluster::{Live, Passwords},
    load::{LEADER_PORT, Load, assert_nothing_acknowledged_lost, options},
};
use crate::{
    harness::{metric_sample, stderr, stdout},
    lab::{in_netns, processes_naming},
    panel::{PanelProcess, get},
};

/// Patroni's leader key lifetime (`Timing::default()`): the bound for a failover.
const TTL: Duration = Duration::from_secs(20);

/// `cluster status` from the client host, with Patroni's members and etcd's: its exit code
/// and JSON.
fn cluster_status(live: &Live) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["--json".to_owned(), "cluster".into(), "status".into()];
    args.extend(Live::member_args());
    for host in ["db1", "db2", "witness"] {
        args.extend(["--etcd".to_owned(), format!("{}:2379", Live::ip(host))]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = live.cabinet("client", &args, &[]);
    let json = serde_json::from_str(&stdout(&run))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&run), stderr(&run)));
    (run.status.code(), json)
}

/// `audit`'s cluster checks, run from the client host through HAProxy: id → verdict.
fn cluster_checks(live: &Live, passwords: &Passwords) -> Vec<(String, String)> {
    let url = format!("postgres://cabinet_admin:{}@127.0.0.1:{LEADER_PORT}/cabinet", passwords.admin);
    let run = live.cabinet(
        "client",
        &["--json", "audit", "--cluster-member", "100.101.2.1:8008,100.101.2.2:8008"],
        &[("DATABASE_URL", &url)],
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&run))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&run), stderr(&run)));
    json["checks"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "no checks: {}{}\nHAProxy: {}",
                stdout(&run),
                stderr(&run),
                std::fs::read_to_string(live.out.path().join("haproxy.log")).unwrap_or_default()
            )
        })
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("cluster."))
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["verdict"].as_str().unwrap().to_owned()))
        .collect()
}

fn verdict<'a>(checks: &'a [(String, String)], id: &str) -> &'a str {
    checks
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {id}: {checks:?}"))
}

#[tokio::test]
async fn a_switchover_a_killed_leader_and_a_cut_link_lose_no_acknowledged_commit_and_reads_go_on() {
    let mut live = Live::start().await;
    let first = live.leader_host().await;
    let passwords = live.prepare(first).await;

    let (code, json) = cluster_status(&live);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["members"].as_array().unwrap().len(), 2);
    let etcd = json["etcd"].as_array().unwrap();
    assert!(
        etcd.len() == 3 && etcd.iter().all(|m| m["healthy"] == true),
        "three healthy etcd members: {json}"
    );
    let checks = cluster_checks(&live, &passwords);
    assert_eq!(checks.len(), 7, "{checks:?}");
    assert!(checks.iter().all(|(_, v)| v == "pass"), "a healthy cluster fails the audit: {checks:?}");
    // The metrics say the same, from the leader's host as its metrics unit reads them: a
    // leader, a streaming synchronous standby, every member answering, the standby's lag.
    let mut metrics_args = vec!["metrics".to_owned(), "--backup-config".into(), "/nonexistent".into()];
    metrics_args.extend(Live::member_args());
    let metrics_args: Vec<&str> = metrics_args.iter().map(String::as_str).collect();
    let scraped = live.cabinet(first, &metrics_args, &[("DATABASE_URL", &live.superuser_url("cabinet"))]);
    assert!(scraped.status.success(), "{}", stderr(&scraped));
    let text = stdout(&scraped);
    assert_eq!(metric_sample(&text, "cabinet_cluster_leader"), Some(1.0), "{text}");
    assert_eq!(metric_sample(&text, "cabinet_cluster_sync_standbys_streaming"), Some(1.0), "{text}");
    assert_eq!(metric_sample(&text, "cabinet_cluster_members_answering"), Some(2.0), "{text}");
    let standby = Live::other_node(first);
    let standby_lag = format!("cabinet_replication_lag_bytes{{standby=\"{standby}\"}}");
    assert!(metric_sample(&text, &standby_lag).is_some_and(|bytes| bytes >= 0.0), "{text}");
    let member_lag = format!("cabinet_cluster_member_lag_bytes{{member=\"{standby}\"}}");
    assert!(metric_sample(&text, &member_lag).is_some(), "{text}");

    // Writers refuse a standby, naming the leader it follows; nothing is changed there.
    let standby = Live::other_node(first);
    let on_standby = live.superuser_url("cabinet");
    for args in [
        vec!["migrate", "up"],
        vec!["roles", "apply"],
        vec!["serve", "--dev-identity", "dev@example.com=admin", "--listen", "127.0.0.1:18432"],
    ] {
        let run = live.cabinet(standby, &args, &[("DATABASE_URL", &on_standby)]);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(stderr(&run).contains("read-only standby"), "{args:?}: {}", stderr(&run));
        let leader_at = format!("following the leader at {}:5432", Live::ip(first));
        assert!(stderr(&run).contains(&leader_at), "{args:?}: {}", stderr(&run));
    }

    // Patroni owns the servers' settings: `backup setup` on a node rendered without
    // `--backups` is refused before anything is written, naming the way.
    let config = live.out.path().join("pgbackrest-refused.conf");
    let config_arg = config.display().to_string();
    let refused = live.cabinet(
        first,
        &["backup", "--config", &config_arg, "setup", "--repo", "/tmp/cabinet-refused-repo"],
        &[("DATABASE_URL", &live.superuser_url("cabinet"))],
    );
    assert_eq!(refused.status.code(), Some(2), "{}{}", stdout(&refused), stderr(&refused));
    assert!(stderr(&refused).contains("cluster render --backups"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("Nothing was changed"), "{}", stderr(&refused));
    assert!(!config.exists() && !std::path::Path::new("/tmp/cabinet-refused-repo").exists());

    // 1. A planned switchover under load.
    let writes = live.load("switch-", &passwords);
    writes.flows(200, Duration::from_secs(30), "before the switchover").await;
    let switchover_time = live.switchover_to(standby).await;
    live.wait_healthy("the old leader to follow", Duration::from_secs(60)).await;
    writes.flows(200, Duration::from_secs(30), "after the switchover").await;
    let seen = writes.finish();
    assert_nothing_acknowledged_lost("switchover", &seen, &live.on_leader(&passwords, "switch-").await);
    eprintln!(
        "switchover: a running new leader {switchover_time:?} after `cluster switchover`; longest read gap {:?}",
        seen.longest_read_gap
    );
    assert!(switchover_time <= Duration::from_secs(10), "switchover took {switchover_time:?}");
    let leader = standby;

    // The admin panel on the client host, through the leader port.
    let panel_addr: std::net::SocketAddr = "127.0.0.1:18433".parse().unwrap();
    let mut serve = live.exec_in("client");
    serve
        .arg(env!("CARGO_BIN_EXE_cabinet-db"))
        .args(["serve", "--dev-identity", "dev@example.com=editor", "--listen", &panel_addr.to_string()])
        .env("CABINET_CONFIG", crate::harness::NO_CONFIG)
        .env(
            "DATABASE_URL",
            format!("postgres://cabinet_admin:{}@127.0.0.1:{LEADER_PORT}/cabinet", passwords.admin),
        );
    let panel = PanelProcess::spawn(serve, panel_addr, Some(&live.ns["client"])).await;
    let client_ns = live.ns["client"].clone();
    let sites_page = || {
        in_netns(&client_ns, async move || {
            get(panel_addr, "/sites?q=kill-").await.map(|r| (r.status, r.body))
        })
    };
    assert_eq!(sites_page().unwrap().0, 200);

    // 2. The leader's Patroni and PostgreSQL die at once.
    let writes = live.load("kill-", &passwords);
    writes.flows(100, Duration::from_secs(30), "before the kill").await;
    let (failover, seen) = live.kill_under_load(leader, writes, Duration::from_secs(60)).await;
    eprintln!(
        "failover after kill -9: first acknowledged write {failover:?} after the kill; longest read gap {:?}",
        seen.longest_read_gap
    );
    assert!(failover <= TTL + Duration::from_secs(8), "failover took {failover:?} (ttl {TTL:?})");
    assert_ne!(live.leader_host().await, leader);
    assert_nothing_acknowledged_lost("kill -9", &seen, &live.on_leader(&passwords, "kill-").await);
    // The panel's pooled connections died with the leader; the next page is served by the new
    // one, not an error (each connection is checked before use).
    let (page_status, body) = sites_page().unwrap();
    assert_eq!(page_status, 200, "the first page after the failover: {body}\n{}", panel.log_text());
    assert!(body.contains("kill-1"), "{body}");
    // The audit sees what is missing now.
    let checks = cluster_checks(&live, &passwords);
    assert_eq!(verdict(&checks, "cluster.leader"), "pass", "{checks:?}");
    assert_eq!(verdict(&checks, "cluster.sync_standby"), "fail", "{checks:?}");
    assert_eq!(verdict(&checks, "cluster.agreement"), "fail", "the killed member's API answers? {checks:?}");

    // 3. The killed node comes back: Patroni rewinds it onto the new timeline and it follows.
    live.start_patroni(leader);
    live.wait_healthy("the killed node to rejoin", Duration::from_secs(90)).await;
    let (code, json) = cluster_status(&live);
    assert_eq!(code, Some(0), "after the rejoin: {json}");

    // 4. The leader is cut off the network, with a writer on its own loopback too.
    let leader = live.leader_host().await;
    let writes = live.load("cut-", &passwords);
    let local = Load::start(&live.ns[leader], "iso-", options(5432, "cabinet_admin", &passwords.admin), None);
    writes.flows(100, Duration::from_secs(30), "before the cut").await;
    local.flows(20, Duration::from_secs(30), "on the leader's loopback before the cut").await;
    live.cut(leader);
    let cut = writes.fault();
    local.fault();
    // The isolated leader must stop accepting writes before the key it can no longer renew
    // expires (another node may take over then).
    let superuser = live.superuser_url("cabinet");
    let read_only_after = in_netns(&live.ns[leader], async move || {
        loop {
            let writable = async {
                let options: sqlx::postgres::PgConnectOptions = superuser.parse().ok()?;
                let mut conn = options.connect().await.ok()?;
                let in_recovery: bool =
                    sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.ok()?;
                let _ = conn.close().await;
                Some(!in_recovery)
            };
            if tokio::time::timeout(Duration::from_secs(1), writable).await.ok().flatten() != Some(true) {
                return cut.elapsed();
            }
            assert!(cut.elapsed() < Duration::from_secs(60), "the isolated leader kept accepting writes");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let failover =
        writes.recovered(Duration::from_secs(60), async || format!("{:?}", live.survey().await)).await;
    eprintln!(
        "cut link: the isolated leader stopped accepting writes after {read_only_after:?}; first acknowledged write through the new leader {failover:?} after the cut"
    );
    assert!(read_only_after < TTL, "the isolated leader took {read_only_after:?} to stop (ttl {TTL:?})");
    assert!(
        read_only_after < failover,
        "two leaders: the old one stopped {read_only_after:?}, the new one wrote at {failover:?}"
    );
    assert!(failover <= TTL + Duration::from_secs(8), "failover took {failover:?} (ttl {TTL:?})");

    // While it is cut off, `cluster status` names what is lost: its Patroni and its etcd member.
    let (code, json) = cluster_status(&live);
    let problems = json["problems"].to_string();
    assert_eq!(code, Some(1), "{json}");
    assert!(problems.contains(&format!("etcd member {}:2379", Live::ip(leader))), "{problems}");
    assert!(problems.contains("one more failure stops failover"), "{problems}");

    // It returns and rejoins as a replica.
    live.reconnect(leader);
    live.wait_healthy("the cut-off node to rejoin", Duration::from_secs(90)).await;
    // Healthy on one timeline, so it rejoined as a replica (pg_rewind) first; should another
    // failover have followed (a loaded host can miss a renewal), it too lost nothing (below).
    let now_leading = live.leader_host().await;
    if now_leading == leader {
        eprintln!("cut link: after rejoining, {leader} leads again (a second failover)");
    }
    // Its etcd member catches up with the others too: every member healthy again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut status = cluster_status(&live);
    while status.0 != Some(0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        status = cluster_status(&live);
    }
    assert_eq!(status.0, Some(0), "after the cut-off node returned: {}", status.1);
    let seen = writes.finish();
    let isolated = local.finish();
    assert_nothing_acknowledged_lost(
        "cut link, through HAProxy",
        &seen,
        &live.on_leader(&passwords, "cut-").await,
    );
    assert_nothing_acknowledged_lost(
        "cut link, on the isolated leader",
        &isolated,
        &live.on_leader(&passwords, "iso-").await,
    );
    eprintln!("cut link: longest read gap {:?}", seen.longest_read_gap);
    let checks = cluster_checks(&live, &passwords);
    assert!(checks.iter().all(|(_, v)| v == "pass"), "healthy again, yet: {checks:?}");

    // Nothing of the cluster outlives it (every live cluster once left its Patroni running).
    let dir = live.out.path().to_owned();
    drop(live);
    let left = processes_naming(&dir);
    assert!(left.is_empty(), "still running after the cluster was dropped: {left:#?}");
}
