//! `dev up` on an empty directory against a bare initdb + start + first query.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use cabinet_db::local_cluster::RunAs;

use crate::{
    Bench,
    measure::timed,
    report::{Row, Stats, time_row},
};

pub fn cold_start(bench: &Bench) -> Vec<Row> {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    let run_as = RunAs::detect().unwrap();
    for round in 0..bench.repeat() {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let dir = bench.work.path().join(format!("dev{round}"));
        ours.push(
            timed(Command::new(&bench.binary).args(["dev", "up", "--port", &port, "--data-dir"]).arg(&dir)).0,
        );
        let _ = Command::new(&bench.binary).args(["dev", "down", "--data-dir"]).arg(&dir).output();

        // The bare pair: initdb with the same options, start, one query.
        let root = bench.work.path().join(format!("bare{round}"));
        std::fs::create_dir_all(&root).unwrap();
        run_as.hand_over(&root).unwrap();
        let pgdata = root.join("pgdata");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let started = Instant::now();
        let ok = |c: &mut Command| {
            assert!(c.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success(), "{c:?}")
        };
        ok(run_as.command(&bench.pg_tool("initdb")).arg("-D").arg(&pgdata).args([
            "-U",
            "bare",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        ]));
        let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {}", root.display());
        ok(run_as
            .command(&bench.pg_tool("pg_ctl"))
            .args(["start", "-w", "-D"])
            .arg(&pgdata)
            .args(["-o", &options, "-l"])
            .arg(root.join("log")));
        ok(Command::new(bench.pg_tool("psql")).args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "bare",
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ]));
        bare.push(started.elapsed().as_secs_f64());
        let _ = run_as
            .command(&bench.pg_tool("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&pgdata)
            .output();
    }
    let (ours, bare) = (Stats::of(ours), Stats::of(bare));
    let mut row =
        time_row("dev up on an empty dir, to first query", ours, "initdb + pg_ctl start + psql", bare, 2.0);
    row.goal = "≤ 3 s and ≤ 2×".into();
    row.met = ours.median <= 3.0 && row.ratio <= 2.0;
    vec![row]
}
