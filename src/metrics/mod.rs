//! Metrics of what only cabinet-db knows, in Prometheus' text format: `cabinet-db metrics`
//! prints them (for node_exporter's textfile collector, for `serve`'s `/metrics`, and for
//! people). What postgres_exporter and Patroni's own `/metrics` export is left to them.

/// The newest recorded audit: when, checks by verdict, each failing check.
mod audit;
/// The repositories as pgBackRest lists them: newest backups, readability, WAL holes.
mod backups;
/// The Patroni cluster as its members say together.
mod cluster;
/// What the database says: connections per role against their limits, migrations, history,
/// archiving, replication.
mod database;
/// Free space of the data directory's and the local repositories' filesystems.
mod disk;
/// The drills' record: the newest drill, whether it passed, the newest that did.
mod drills;
/// Prometheus' text format, label values escaped.
pub(crate) mod exposition;
/// pgBackRest's configuration and the records of its state directory.
mod host;
/// The admin panel's own counters, kept by `serve`.
pub(crate) mod panel;
/// The scheduled jobs' last runs.
mod schedule;

use std::path::{Path, PathBuf};

use exposition::{Family, Kind};

use crate::{db::DatabaseUrl, roles::Roles};

/// The largest stored scrape `serve` passes on (ours are a few kilobytes).
const MAX_STORED_BYTES: u64 = 4 * 1024 * 1024;

/// Where a scrape looks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub(crate) database: &'a DatabaseUrl,
    pub(crate) roles: &'a Roles,
    /// pgBackRest's configuration, whose state directory holds the records.
    pub(crate) backup_config: &'a Path,
    /// The Patroni members' REST APIs (`HOST:PORT`); none without a cluster.
    pub(crate) cluster_members: &'a [String],
}

/// One scrape's text: every family cabinet-db exports from here, then when it was collected
/// and how long that took (a reader of a stored scrape can tell its age).
pub(crate) async fn scrape(sources: Sources<'_>) -> String {
    let started = std::time::Instant::now();
    let (database, (host, local_repos), cluster) = tokio::join!(
        database::families(sources.database, sources.roles),
        host::families(sources.backup_config, sources.database),
        cluster::families(sources.cluster_members),
    );
    let mut families = database.families;
    families.extend(host);
    families.extend(cluster);
    let mut filesystems: Vec<(String, PathBuf)> =
        database.data_directory.map(|d| ("data".to_owned(), d)).into_iter().collect();
    filesystems.extend(local_repos);
    families.extend(disk::families(&filesystems));
    families.push(Family::single(
        "cabinet_metrics_collected_timestamp_seconds",
        "When this scrape was collected (Unix time): a stored scrape older than a few minutes is stale.",
        Kind::Gauge,
        chrono::Utc::now().timestamp() as f64,
    ));
    families.push(Family::single(
        "cabinet_metrics_collect_duration_seconds",
        "How long collecting this scrape took.",
        Kind::Gauge,
        started.elapsed().as_secs_f64(),
    ));
    exposition::render(&families)
}

/// `serve`'s `/metrics`: the stored scrape at `stored` (when there is one that reads as ours:
/// every line a comment or a `cabinet_` sample), then the panel's own counters and whether it
/// is ready.
pub(crate) fn panel_scrape(stored: &Path, counters: &panel::PanelCounters, ready: bool) -> String {
    let text =
        crate::secret::read_regular(stored, MAX_STORED_BYTES).map_err(|e| e.to_string()).and_then(|text| {
            match text.lines().position(|line| !(line.starts_with("# ") || line.starts_with("cabinet_"))) {
                None => Ok(text),
                Some(n) => Err(format!("line {} is not a comment or a cabinet_ sample", n + 1)),
            }
        });
    let mut families = counters.families(ready);
    let stored_ok = match &text {
        Ok(_) => 1.0,
        Err(e) => {
            tracing::warn!(path = %stored.display(), error = %e, "the stored scrape is not passed on");
            0.0
        }
    };
    families.push(Family::single(
        "cabinet_panel_stored_scrape_read",
        "1 when the host's stored scrape (the metrics unit's) was read and passed on, else 0.",
        Kind::Gauge,
        stored_ok,
    ));
    let mut out = text.unwrap_or_default();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&exposition::render(&families));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_scrape_is_passed_on_only_when_it_reads_as_ours() {
        let dir = tempfile::tempdir().unwrap();
        let stored = dir.path().join("cabinet-db.prom");
        let counters = panel::PanelCounters::default();
        std::fs::write(
            &stored,
            "# HELP cabinet_database_up x\n# TYPE cabinet_database_up gauge\ncabinet_database_up 1",
        )
        .unwrap();
        let text = panel_scrape(&stored, &counters, true);
        assert!(
            text.starts_with("# HELP cabinet_database_up x\n")
                && text.contains("cabinet_database_up 1\n# HELP"),
            "{text}"
        );
        assert!(text.contains("cabinet_panel_stored_scrape_read 1\n"), "{text}");
        // Someone else's text (another exporter's families, a forged sample after a blank line)
        // is not passed on: said by the gauge, not served.
        for hostile in ["cabinet_database_up 1\nnode_forged 1\n", "cabinet_database_up 1\n\nup 0\n"] {
            std::fs::write(&stored, hostile).unwrap();
            let text = panel_scrape(&stored, &counters, true);
            assert!(
                !text.contains("forged") && !text.contains("\nup 0") && !text.contains("cabinet_database_up"),
                "{text}"
            );
            assert!(text.contains("cabinet_panel_stored_scrape_read 0\n"), "{text}");
        }
        // None, a directory, a FIFO: 0, at once.
        for absent in [dir.path().join("missing.prom"), dir.path().to_owned()] {
            assert!(panel_scrape(&absent, &counters, false).contains("cabinet_panel_stored_scrape_read 0\n"));
        }
        let fifo = dir.path().join("fifo.prom");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(panel_scrape(&fifo, &counters, false).contains("cabinet_panel_stored_scrape_read 0\n"));
    }
}
