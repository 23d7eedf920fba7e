//! `cabinet-db metrics`: what the database says, in Prometheus' text format, read as the roles
//! that will scrape it.

use cabinet_db::roles::RoleKind;

use crate::harness::{WithRoles, binary, metric_sample as sample, stderr, stdout};

#[tokio::test]
async fn connections_per_role_against_their_limits_migrations_and_an_outage_are_exported() {
    // Arrange: n8n holds two sessions, as its pool would.
    let with = WithRoles::new().await;
    let n8n = with.roles.name(RoleKind::N8n);
    let _first = with.conn(RoleKind::N8n).await;
    let _second = with.conn(RoleKind::N8n).await;

    // Act: a scrape as the admin panel's role, the one `serve` connects as.
    let out = binary()
        .env("DATABASE_URL", with.url_as(RoleKind::Admin).expose())
        .args([
            "metrics",
            "--role-prefix",
            &with.db.role_prefix(),
            "--backup-config",
            "/nonexistent/pgbackrest.conf",
        ])
        .output()
        .unwrap();

    // Assert
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(sample(&text, "cabinet_database_up"), Some(1.0), "{text}");
    assert_eq!(sample(&text, &format!("cabinet_role_connections{{role=\"{n8n}\"}}")), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, &format!("cabinet_role_connection_limit{{role=\"{n8n}\"}}")),
        Some(f64::from(RoleKind::N8n.connection_limit())),
        "{text}"
    );
    let known = sample(&text, "cabinet_migrations_known_version").unwrap();
    assert_eq!(sample(&text, "cabinet_migrations_applied_version"), Some(known), "{text}");
    assert_eq!(sample(&text, "cabinet_migrations_pending"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "cabinet_schema_differences"), Some(0.0), "no drift: {text}");
    assert!(sample(&text, "cabinet_history_rows{table=\"sites_history\"}").is_some(), "{text}");
    // The test cluster does not archive: the counters are there, at zero.
    assert_eq!(sample(&text, "cabinet_wal_archive_failures_total"), Some(0.0), "{text}");
    assert!(sample(&text, "cabinet_wal_archived_total").is_some(), "{text}");
    // No pgBackRest here: said, not guessed (the drills' metrics need its state directory).
    assert_eq!(sample(&text, "cabinet_backup_configured"), Some(0.0), "{text}");
    // Every family has HELP and TYPE, and no secret reaches the text.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")),
            "{name}"
        );
    }
    assert!(!text.contains(&with.password(RoleKind::Admin)) && !text.contains(&with.password(RoleKind::N8n)));
    // Prometheus' own linter accepts the scrape (names, units, HELP).
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup tests installs prometheus)");
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(lint.status.success(), "promtool check metrics: {}{}", stdout(&lint), stderr(&lint));

    // A hand-made index is drift: counted (as the panel's role sees the catalogs).
    with.db.exec("CREATE INDEX by_hand ON sites (brand_name)").await;
    let drifted = binary()
        .env("DATABASE_URL", with.url_as(RoleKind::Admin).expose())
        .args(["metrics", "--role-prefix", &with.db.role_prefix(), "--backup-config", "/nonexistent"])
        .output()
        .unwrap();
    assert!(
        sample(&stdout(&drifted), "cabinet_schema_differences").is_some_and(|n| n >= 1.0),
        "{}",
        stdout(&drifted)
    );

    // The database gone: the scrape says so, and still succeeds; --out replaces the file whole.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cabinet-db.prom");
    std::fs::write(&file, "previous-scrape-marker\n").unwrap();
    let down = binary()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["metrics", "--out", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(sample(&written, "cabinet_database_up"), Some(0.0), "{written}");
    assert!(!written.contains("previous-scrape-marker"));
    // A file that cannot be written is named, with what to do.
    let missing = dir.path().join("no-such-dir/cabinet-db.prom");
    let refused = binary()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["metrics", "--out", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains(missing.to_str().unwrap())
            && stderr(&refused).contains("nothing was written"),
        "{}",
        stderr(&refused)
    );
}

/// Every family the source makes is in docs/metrics.md's table (with who produces it), and the
/// table names no family the source does not make.
#[test]
fn docs_metrics_lists_every_family_and_nothing_else() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut made = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join("src/metrics")).unwrap() {
        let path = entry.unwrap().path();
        // The format itself, which makes families for its callers.
        if path.ends_with("exposition.rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        // The unit tests' own families are not the product's.
        let product = text.split("#[cfg(test)]").next().unwrap();
        for start in ["Family::new(", "Family::single("] {
            for piece in product.split(start).skip(1) {
                let name = piece.trim_start().strip_prefix('"').and_then(|p| p.split('"').next());
                made.insert(
                    name.unwrap_or_else(|| panic!("a family whose name is not a literal: {piece:.80}"))
                        .to_owned(),
                );
            }
        }
    }
    let table = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    let documented: std::collections::BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `cabinet_"))
        .map(|l| format!("cabinet_{}", l.split('`').next().unwrap()))
        .collect();
    assert!(made.len() > 40, "{made:?}");
    assert_eq!(made, documented, "docs/metrics.md and src/metrics disagree");
}
