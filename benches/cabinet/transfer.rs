//! Import and export of a million users against `psql \\copy`, and the memory they take.

use std::{io::Write, path::Path, process::Command};

use crate::{
    Bench,
    history::set_history,
    measure::timed,
    report::{Row, Stats, time_row},
};

pub fn write_users_csv(path: &Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "user_id,email,first_seen,last_seen").unwrap();
    for i in 0..rows {
        writeln!(
            out,
            "{},user{i}@example.com,2026-01-01T00:00:00Z,2026-02-01T00:00:{:02}.{:06}Z",
            290_000_000_000_000_000u64 + i as u64,
            i % 60,
            i % 1_000_000
        )
        .unwrap();
    }
    out.flush().unwrap();
}

pub async fn import_export(bench: &Bench) -> Vec<Row> {
    let rows = bench.args.import_rows;
    let file = bench.work.path().join("users.csv");
    write_users_csv(&file, rows);
    let url = bench.url("bench");
    let psql = bench.pg_tool("psql");
    let psql_cmd = |command: &str| {
        let mut c = Command::new(&psql);
        c.args(["-X", "-q", url.expose(), "-c", command]);
        c
    };
    let columns = "user_id, email, first_seen, last_seen";
    let (mut ours_in, mut ref_in, mut ours_out, mut ref_out, mut rss, mut no_history) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let import = || {
        let mut c = Command::new(&bench.binary);
        c.args(["users", "import", file.to_str().unwrap(), "--mode", "insert"])
            .env("DATABASE_URL", url.expose());
        c
    };
    for _ in 0..bench.repeat() {
        // The same import without the history's triggers: what recording it costs.
        empty_users(bench).await;
        set_history(bench, "users", false).await;
        no_history.push(timed(&mut import()).0);
        set_history(bench, "users", true).await;
        empty_users(bench).await;
        let (secs, kib) = timed(&mut import());
        ours_in.push(secs);
        rss.push(kib);
        let out = bench.work.path().join("export.csv");
        ours_out.push(
            timed(
                Command::new(&bench.binary)
                    .args(["users", "export", "--out", out.to_str().unwrap()])
                    .env("DATABASE_URL", url.expose()),
            )
            .0,
        );
        ref_out.push(
            timed(&mut psql_cmd(&format!(
                "\\copy users ({columns}) to '{}' with (format csv, header)",
                out.display()
            )))
            .0,
        );
        empty_users(bench).await;
        ref_in.push(
            timed(&mut psql_cmd(&format!(
                "\\copy users ({columns}) from '{}' with (format csv, header)",
                file.display()
            )))
            .0,
        );
    }
    // Memory stays flat as the file grows: 4× the rows.
    let big = bench.work.path().join("users4.csv");
    write_users_csv(&big, rows * 4);
    empty_users(bench).await;
    let (_, big_kib) = timed(
        Command::new(&bench.binary)
            .args(["users", "import", big.to_str().unwrap(), "--mode", "insert"])
            .env("DATABASE_URL", url.expose()),
    );
    let _ = std::fs::remove_file(&big);
    let small_kib = *rss.iter().max().unwrap() as f64;
    let one = |v: f64| Stats { min: v, median: v, max: v };
    vec![
        time_row(
            &format!("import {rows} users (CSV)"),
            Stats::of(ours_in.clone()),
            "psql \\copy from",
            Stats::of(ref_in),
            1.3,
        ),
        time_row(
            &format!("import {rows} users, history on"),
            Stats::of(ours_in),
            "same, history triggers disabled",
            Stats::of(no_history),
            1.5,
        ),
        time_row(
            &format!("export {rows} users (CSV)"),
            Stats::of(ours_out),
            "psql \\copy to",
            Stats::of(ref_out),
            1.3,
        ),
        Row {
            work: format!("import peak memory, {} rows vs {rows}", rows * 4),
            unit: "MiB".into(),
            ours: one(big_kib as f64 / 1024.0),
            reference_name: format!("cabinet-db, {rows} rows"),
            reference: one(small_kib / 1024.0),
            ratio: big_kib as f64 / small_kib,
            goal: "flat (≤ 1.2×)".into(),
            met: big_kib as f64 / small_kib <= 1.2,
        },
    ]
}

/// An empty `users` and no history of it, without recording a million deletions first
/// (`session_replication_role = replica` skips the triggers, the append-only guard included).
async fn empty_users(bench: &Bench) {
    bench
        .exec("bench", "SET session_replication_role = replica; TRUNCATE users, users_history; RESET session_replication_role")
        .await;
}
