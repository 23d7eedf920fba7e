//! The schedule's jobs, each by its last run and result: the backups (`backup run` records
//! itself), the drill and the audit (their own records). A job that never ran has no sample;
//! the alerts on each job's purpose (a backup too old, no drill passed) say so.

use std::path::Path;

use super::exposition::{Family, Kind};
use crate::{
    backup::drill::DrillRecord,
    records::{AuditRecord, RunRecord, backup_run_file},
};

/// The jobs' families from the records in `state_dir` and the drill and audit already read.
pub(super) fn families(state_dir: &Path, drills: &[DrillRecord], audit: Option<&AuditRecord>) -> Vec<Family> {
    let mut runs: Vec<(&str, i64, bool)> = Vec::new();
    for (task, kind) in [("backup-full", "full"), ("backup-diff", "diff"), ("backup-incr", "incr")] {
        if let Some(run) = RunRecord::read(&state_dir.join(backup_run_file(kind))) {
            runs.push((task, run.finished.timestamp(), run.succeeded));
        }
    }
    if let Some(drill) = drills.iter().max_by_key(|d| d.at) {
        runs.push(("drill", drill.at.timestamp(), drill.passed));
    }
    if let Some(audit) = audit {
        runs.push((
            "audit",
            audit.at.timestamp(),
            !audit.checks.iter().any(|(_, verdict)| verdict == "fail"),
        ));
    }
    let mut last = Family::new(
        "cabinet_schedule_last_run_timestamp_seconds",
        "When each scheduled task (backup-full, backup-incr, drill, audit) last finished (Unix time).",
        Kind::Gauge,
    );
    let mut success = Family::new(
        "cabinet_schedule_last_run_success",
        "1 when each scheduled task's last run succeeded (a drill passed, an audit failed nothing), else 0.",
        Kind::Gauge,
    );
    for (task, at, succeeded) in runs {
        last.push(&[("task", task)], at as f64);
        success.push(&[("task", task)], if succeeded { 1.0 } else { 0.0 });
    }
    vec![last, success]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::render;

    #[test]
    fn each_recorded_job_has_its_last_run_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let run = |ok| RunRecord {
            started: "2026-12-03T02:15:00Z".parse().unwrap(),
            finished: "2026-12-03T02:16:40Z".parse().unwrap(),
            succeeded: ok,
        };
        run(true).write(&dir.path().join(backup_run_file("full"))).unwrap();
        run(false).write(&dir.path().join(backup_run_file("incr"))).unwrap();
        let audit = AuditRecord {
            at: "2026-12-03T06:00:00Z".parse().unwrap(),
            checks: vec![("roles.ours".into(), "fail".into())],
        };
        let text = render(&families(dir.path(), &[], Some(&audit)));
        assert!(
            text.contains("cabinet_schedule_last_run_timestamp_seconds{task=\"backup-full\"} 1796264200\n"),
            "{text}"
        );
        assert!(text.contains("cabinet_schedule_last_run_success{task=\"backup-full\"} 1\n"), "{text}");
        assert!(text.contains("cabinet_schedule_last_run_success{task=\"backup-incr\"} 0\n"), "{text}");
        assert!(text.contains("cabinet_schedule_last_run_success{task=\"audit\"} 0\n"), "{text}");
        assert!(!text.contains("task=\"drill\"") && !text.contains("task=\"backup-diff\""), "{text}");
    }
}
