//! The alert rules the package ships, with Prometheus' own tools: `promtool check rules`, and
//! `promtool test rules` proving each threshold and `for:` in simulated time. Every alert has a
//! case that fires and one that does not, the labels and annotations a person needs, and a
//! section of docs/alerts.md its runbook link lands on.

use std::{path::Path, process::Command};

use crate::harness::{stderr, stdout};

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/prometheus")
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("promtool (scripts/setup tests installs prometheus)")
}

/// The alerts of alerts.yml, each with the lines of its rule.
fn alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rules_dir().join("alerts.yml")).unwrap();
    let mut alerts: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert: ") {
            alerts.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, rule)) = alerts.last_mut() {
            rule.push_str(line);
            rule.push('\n');
        }
    }
    alerts
}

#[test]
fn the_rules_pass_promtool_and_every_alert_is_tested_firing_and_not() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.status.success(), "{}{}", stdout(&checked), stderr(&checked));
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.status.success(), "{}{}", stdout(&tested), stderr(&tested));

    let tests = std::fs::read_to_string(rules_dir().join("alerts.test.yml")).unwrap();
    // Each `alertname:` case, and whether it expects alerts.
    let mut cases: Vec<(String, bool)> = Vec::new();
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname: ") {
            cases.push((name.to_owned(), false));
        } else if line.starts_with("exp_alerts:")
            && let Some(last) = cases.last_mut()
        {
            last.1 = true;
        }
    }
    let runbook =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts.md")).unwrap();
    let alerts = alerts();
    assert!(alerts.len() >= 6, "{alerts:?}");
    for (name, rule) in &alerts {
        let fires = cases.iter().any(|(n, expects)| n == name && *expects);
        let quiet = cases.iter().any(|(n, expects)| n == name && !*expects);
        // The watchdog always fires: it has no quiet case by design.
        assert!(
            fires && (quiet || name == "CabinetDbWatchdog"),
            "{name}: a case that fires and one that does not"
        );
        for needed in ["severity:", "summary:", "description:", "runbook_url:"] {
            assert!(rule.contains(needed), "{name} has no {needed}");
        }
        assert!(
            rule.contains(&format!("alerts.md{{{{ end }}}}#{}'", name.to_lowercase())),
            "{name}'s runbook_url points at its own section"
        );
        assert!(runbook.contains(&format!("\n## {name}\n")), "docs/alerts.md has no section for {name}");
        if name != "CabinetDbWatchdog" {
            assert!(rule.contains("for: "), "{name} has no for: (it would flap)");
        }
    }
}

#[test]
fn the_deployment_guides_prometheus_and_alertmanager_configurations_are_valid() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md")).unwrap();
    // Each ```yaml block whose first line names its file.
    let block = |file: &str| -> String {
        let start = guide
            .find(&format!("```yaml\n# {file}"))
            .unwrap_or_else(|| panic!("docs/deploy.md has no {file}"));
        let body = &guide[start + "```yaml\n".len()..];
        body[..body.find("```").unwrap()].to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("cabinet-db-alerts.yml");
    std::fs::copy(rules_dir().join("alerts.yml"), &rules).unwrap();
    let prometheus = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus,
        block("/etc/prometheus/prometheus.yml")
            .replace("/etc/prometheus/cabinet-db-alerts.yml", rules.to_str().unwrap()),
    )
    .unwrap();
    let checked = Command::new("promtool").args(["check", "config"]).arg(&prometheus).output().unwrap();
    assert!(checked.status.success(), "{}{}", stdout(&checked), stderr(&checked));
    let alertmanager = dir.path().join("alertmanager.yml");
    std::fs::write(&alertmanager, block("/etc/prometheus/alertmanager.yml")).unwrap();
    let checked = Command::new("amtool").arg("check-config").arg(&alertmanager).output().unwrap();
    assert!(checked.status.success(), "{}{}", stdout(&checked), stderr(&checked));
}
