//! The newest recorded audit (`audit --record`): when it ran, its checks by verdict, and each
//! failing check by id (a label per check id is bounded: the audit's checks are a fixed set).

use super::exposition::{Family, Kind};
use crate::records::AuditRecord;

pub(super) fn families(record: Option<&AuditRecord>) -> Vec<Family> {
    let Some(record) = record else {
        return vec![Family::single(
            "cabinet_audit_last_timestamp_seconds",
            "When the newest recorded audit ran (Unix time); 0 when none is recorded.",
            Kind::Gauge,
            0.0,
        )];
    };
    let mut by_verdict =
        Family::new("cabinet_audit_checks", "Checks of the newest recorded audit, by verdict.", Kind::Gauge);
    for verdict in ["pass", "warn", "fail"] {
        let count = record.checks.iter().filter(|(_, v)| v == verdict).count();
        by_verdict.push(&[("verdict", verdict)], count as f64);
    }
    let mut failing = Family::new(
        "cabinet_audit_check_failing",
        "1 for each check the newest recorded audit failed (see `cabinet-db audit`).",
        Kind::Gauge,
    );
    for (id, _) in record.checks.iter().filter(|(_, v)| v == "fail") {
        failing.push(&[("check", id)], 1.0);
    }
    vec![
        Family::single(
            "cabinet_audit_last_timestamp_seconds",
            "When the newest recorded audit ran (Unix time); 0 when none is recorded.",
            Kind::Gauge,
            record.at.timestamp() as f64,
        ),
        by_verdict,
        failing,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::render;

    #[test]
    fn verdicts_are_counted_and_failing_ids_labelled_escaped() {
        let record = AuditRecord {
            at: "2026-12-03T06:00:00Z".parse().unwrap(),
            checks: vec![
                ("server.version".into(), "pass".into()),
                ("roles.ours".into(), "fail".into()),
                ("odd\"id\n".into(), "fail".into()),
            ],
        };
        let text = render(&families(Some(&record)));
        assert!(text.contains("cabinet_audit_checks{verdict=\"pass\"} 1\n"), "{text}");
        assert!(text.contains("cabinet_audit_checks{verdict=\"fail\"} 2\n"), "{text}");
        assert!(text.contains("cabinet_audit_check_failing{check=\"roles.ours\"} 1\n"), "{text}");
        assert!(text.contains("cabinet_audit_check_failing{check=\"odd\\\"id\\n\"} 1\n"), "{text}");
        assert!(render(&families(None)).contains("cabinet_audit_last_timestamp_seconds 0\n"));
    }
}
