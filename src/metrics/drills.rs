//! The drills' record (`backup drill` appends one line per drill to drills.jsonl in
//! pgBackRest's state directory): when a restore was last tried, whether it passed, when one
//! last passed.

use super::exposition::{Family, Kind};
use crate::backup::drill::DrillRecord;

/// The drill families of these records. With none, the newest success is 0 (the Unix epoch):
/// never is older than any threshold.
pub(super) fn of(drills: &[DrillRecord]) -> Vec<Family> {
    let newest = drills.iter().max_by_key(|d| d.at);
    let newest_pass = drills.iter().filter(|d| d.passed).map(|d| d.at).max();
    let mut families = vec![Family::single(
        "cabinet_drill_last_success_timestamp_seconds",
        "When a drill last proved a restore (Unix time); 0 when none ever did.",
        Kind::Gauge,
        newest_pass.map_or(0.0, |at| at.timestamp() as f64),
    )];
    if let Some(last) = newest {
        families.push(Family::single(
            "cabinet_drill_last_timestamp_seconds",
            "When the newest drill ran (Unix time).",
            Kind::Gauge,
            last.at.timestamp() as f64,
        ));
        families.push(Family::single(
            "cabinet_drill_last_passed",
            "1 when the newest drill restored the backup and found every row, else 0.",
            Kind::Gauge,
            if last.passed { 1.0 } else { 0.0 },
        ));
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::render;

    fn record(line: &str) -> DrillRecord {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn no_drill_is_as_old_as_time_and_the_newest_decides_passed() {
        assert_eq!(
            render(&of(&[])),
            "# HELP cabinet_drill_last_success_timestamp_seconds When a drill last proved a restore (Unix time); 0 when none ever did.\n# TYPE cabinet_drill_last_success_timestamp_seconds gauge\ncabinet_drill_last_success_timestamp_seconds 0\n"
        );
        let passed = record(
            r#"{"at":"2026-11-01T00:00:00Z","passed":true,"seconds_to_recovery":3.0,"restore_point":"p","problems":[],"live":[],"restored":[]}"#,
        );
        let failed = record(
            r#"{"at":"2026-11-08T00:00:00Z","passed":false,"seconds_to_recovery":null,"restore_point":"q","problems":["sites differ"],"live":[],"restored":[]}"#,
        );
        let text = render(&of(&[passed, failed]));
        assert!(text.contains("cabinet_drill_last_success_timestamp_seconds 1793491200\n"), "{text}");
        assert!(text.contains("cabinet_drill_last_timestamp_seconds 1794096000\n"), "{text}");
        assert!(text.contains("cabinet_drill_last_passed 0\n"), "{text}");
    }
}
