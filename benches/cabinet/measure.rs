//! How things are measured: client tasks against a deadline, pgbench, and a command's wall time
//! and peak memory.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{Bench, SUPERUSER};

/// Runs `tasks` clients calling `op` until the deadline; operations per second.
pub async fn throughput<F, Fut>(tasks: usize, seconds: f64, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = u64> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let n = op(task, i).await;
                    done.fetch_add(n, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub fn pgbench(bench: &Bench, script: &str) -> f64 {
    let file = bench.work.path().join("pgbench.sql");
    std::fs::write(&file, script).unwrap();
    let n = bench.args.concurrency.to_string();
    let seconds = (bench.seconds().ceil() as u64).max(1).to_string();
    let out = Command::new(bench.pg_tool("pgbench"))
        .args(["-n", "-M", "prepared", "-c", &n, "-j", &n, "-T", &seconds, "-f"])
        .arg(&file)
        .args(["-h", "127.0.0.1", "-p", &bench.cluster.port.to_string(), "-U", SUPERUSER, "bench"])
        .env("PGPASSWORD", &bench.password)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| {
            panic!("pgbench printed no tps:\n{text}\n{}", String::from_utf8_lossy(&out.stderr))
        })
}

/// Runs a command to completion: wall seconds and peak resident memory (KiB).
pub fn timed(command: &mut Command) -> (f64, i64) {
    let started = Instant::now();
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below, which also reports its peak memory")]
    let child = command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `usage` is a valid rusage to fill.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    // (Not `{command:?}`: that would print its environment, passwords included.)
    let shown: Vec<_> = std::iter::once(command.get_program()).chain(command.get_args()).collect();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{shown:?} failed");
    (started.elapsed().as_secs_f64(), usage.ru_maxrss)
}
