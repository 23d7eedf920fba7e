//! The dashboard: how much there is, and whether the schema is where this build expects it.

use std::sync::Arc;

use axum::{
    Extension,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use maud::{Markup, html};

use crate::panel::html::wants_fragment;

use crate::{
    audit::{self, AuditOptions, Verdict},
    backup::{config::BackupConfig, drill, run},
    migrations::{MigrationSet, runner},
    panel::{
        error::PanelError,
        html::{Section, page, time},
        identity::Identity,
        state::PanelState,
    },
};

pub(crate) async fn show(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
) -> Result<Response, PanelError> {
    let totals = crate::data::totals(&panel.pool).await?;
    let migrations = match MigrationSet::embedded() {
        Ok(set) => runner::status(&panel.database_url, &set)
            .await
            .map(|a| (a, set.head()))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let body = html! {
        div.cards {
            div.card { div.big { (totals.sites) } "sites" }
            div.card { div.big { (totals.users) } "users" }
            div.card { div.big { (totals.site_versions) } "recorded site versions" }
            div.card {
                strong { "Schema" } br;
                @match &migrations {
                    Ok((assessment, head)) => {
                        @let current = assessment.current.unwrap_or(0);
                        @if !assessment.problems.is_empty() {
                            span.verdict-fail { "problems: " (assessment.problems.len()) } " — run cabinet-db migrate status"
                        } @else if current == *head {
                            span.verdict-pass { "up to date" } " at " (format!("{current:04}"))
                        } @else {
                            span.verdict-warn { (format!("at {current:04}, this build knows {head:04}")) } " — run cabinet-db migrate up"
                        }
                    }
                    Err(e) => { span.verdict-warn { "unknown" } ": " (e) }
                }
            }
        }
        // Slower checks load after the page (htmx); without scripts, their own pages.
        h2 { "Audit" }
        div hx-get="/dashboard/audit" hx-trigger="load" hx-swap="outerHTML" {
            p.muted { "Running the audit… " a href="/dashboard/audit" { "open it" } }
        }
        h2 { "Backups" }
        div hx-get="/dashboard/backups" hx-trigger="load" hx-swap="outerHTML" {
            p.muted { "Reading the backup repositories… " a href="/dashboard/backups" { "open it" } }
        }
        h2 { "Monitoring" }
        div hx-get="/dashboard/metrics" hx-trigger="load" hx-swap="outerHTML" {
            p.muted { "Reading the metrics… " a href="/dashboard/metrics" { "open it" } }
        }
    };
    Ok(page(&me, Section::Dashboard, "Dashboard", body).into_response())
}

/// A fragment for htmx, a page of its own otherwise.
fn fragment_or_page(me: &Identity, headers: &HeaderMap, title: &str, body: Markup) -> Response {
    if wants_fragment(headers) {
        html! { div { (body) } }.into_response()
    } else {
        page(me, Section::Dashboard, title, body).into_response()
    }
}

/// The audit as the panel's role sees it: what failed or warns, with the remedy.
pub(crate) async fn audit(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    let options = AuditOptions {
        roles: panel.roles.clone(),
        socket: panel.tailscaled_socket.clone(),
        socket_explicit: false,
        proc_root: "/proc".into(),
        secrets_dir: None,
        backup_config: panel.backup_config.clone(),
        panel_port: panel.panel_port,
        cluster_members: vec![],
    };
    let result = match MigrationSet::embedded() {
        Ok(set) => audit::audit(&panel.database_url, &set, &options)
            .await
            .map_err(|e| PanelError::Internal(e.to_string()).message()),
        Err(e) => Err(e.to_string()),
    };
    let body = match result {
        Err(e) => html! { p { span.verdict-warn { "could not run" } ": " (e) } },
        Ok(checks) => {
            let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
            let overall = audit::overall(&checks);
            let (class, word) = match overall {
                Verdict::Pass => ("verdict-pass", "pass"),
                Verdict::Warn => ("verdict-warn", "warnings"),
                Verdict::Fail => ("verdict-fail", "FAIL"),
            };
            html! {
                p {
                    strong class=(class) { (word) } " — " (count(Verdict::Pass)) " passed, " (count(Verdict::Warn)) " warn, " (count(Verdict::Fail)) " failed"
                    span.muted { " (as the panel's role; `cabinet-db audit` as a superuser checks everything)" }
                }
                @let shown: Vec<_> = checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
                @if !shown.is_empty() {
                    div.table-wrap { table {
                        thead { tr { th { "verdict" } th { "check" } th { "found" } th { "remedy" } } }
                        tbody {
                            @for c in shown {
                                tr {
                                    td class=(if c.verdict == Verdict::Fail { "verdict-fail" } else { "verdict-warn" }) { (format!("{:?}", c.verdict).to_lowercase()) }
                                    td.mono { (c.id) } td { (c.detail) } td { (c.remedy) }
                                }
                            }
                        }
                    } }
                }
            }
        }
    };
    Ok(fragment_or_page(&me, &headers, "Audit", body))
}

/// Backup status: the newest backup, the recoverable window, the last drill.
pub(crate) async fn backups(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    let listing = run::list(&panel.backup_config, Some(&panel.database_url)).await;
    let last_drill = BackupConfig::read(&panel.backup_config)
        .ok()
        .and_then(|config| drill::recorded(&drill::drills_file(&config)).pop());
    let body = html! {
        @match &listing {
            Err(e) => p { span.verdict-warn { "unavailable" } ": " (PanelError::Internal(e.to_string()).message()) " — " span.mono { "cabinet-db backup list" } " on the database host shows it." },
            Ok(listing) => {
                dl.fields {
                    dt { "newest backup" }
                    dd {
                        @match listing.catalog.backups.iter().filter(|b| !b.error).max_by_key(|b| b.stopped) {
                            Some(b) => { (b.kind) " " span.mono { (b.label) } @if let Some(t) = b.stopped { ", finished " (time(t)) } }
                            None => span.verdict-fail { "none: cabinet-db backup run" },
                        }
                    }
                    dt { "recoverable" }
                    dd {
                        @match (listing.earliest, listing.latest) {
                            (Some(from), Some(to)) => { "from " (time(from)) " to " (time(to)) }
                            (Some(from), None) if listing.holes.is_empty() => { "from " (time(from)) }
                            (Some(_), None) => span.verdict-fail { "not to the present" },
                            _ => span.verdict-fail { "nothing" },
                        }
                    }
                    @for hole in &listing.holes {
                        dt { "hole" }
                        dd { span.verdict-fail { "WAL missing" } " " (hole.explain()) " — " (hole.remedy()) }
                    }
                }
            }
        }
        dl.fields {
            dt { "last drill" }
            dd {
                @match &last_drill {
                    Some(d) if d.passed => { span.verdict-pass { "passed" } " " (time(d.at)) " from repo" (d.repo) }
                    Some(d) => { span.verdict-fail { "FAILED" } " " (time(d.at)) ": " (d.problems.join("; ")) }
                    None => span.verdict-warn { "none recorded: cabinet-db backup drill" },
                }
            }
        }
    };
    Ok(fragment_or_page(&me, &headers, "Backups", body))
}

/// What Prometheus reads at /metrics, as a person reads it: the same scrape (the host's stored
/// one and the panel's counters), each family's help and samples, times as ages.
pub(crate) async fn metrics(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    headers: HeaderMap,
) -> Result<Response, PanelError> {
    let ready = panel.readiness.check(&panel.pool).await.is_ok();
    let scrape = crate::metrics::panel_scrape(&panel.metrics_file, &panel.counters, ready);
    let families = crate::metrics::exposition::parse(&scrape);
    let now = chrono::Utc::now();
    let body = html! {
        p.muted {
            "The scrape Prometheus reads at " span.mono { "/metrics" } " (the alert rules judge it; "
            span.mono { "cabinet-db metrics" } " on the database host prints it)."
        }
        div.table-wrap { table {
            thead { tr { th { "metric" } th { "labels" } th { "value" } } }
            tbody {
                @for family in &families {
                    @for (name, labels, value) in family.samples.iter().filter(|(n, _, _)| !n.ends_with("_bucket")) {
                        tr {
                            td { span.mono { (name) } br; span.muted { (family.help) } }
                            td.mono { (labels) }
                            td { (shown(name, *value, now)) }
                        }
                    }
                }
            }
        } }
    };
    Ok(fragment_or_page(&me, &headers, "Monitoring", body))
}

/// A sample's value in a person's units: times as when and how long ago, bytes in binary units.
fn shown(name: &str, value: f64, now: chrono::DateTime<chrono::Utc>) -> String {
    if name.ends_with("_timestamp_seconds") {
        return match chrono::DateTime::from_timestamp(value as i64, 0) {
            Some(_) if value <= 0.0 => "never".to_owned(),
            Some(at) => {
                let minutes = (now - at).num_minutes();
                format!(
                    "{} ({})",
                    time(at),
                    if minutes < 1 { "just now".to_owned() } else { format!("{minutes} min ago") }
                )
            }
            None => number(value),
        };
    }
    if name.ends_with("_bytes") && value.is_finite() {
        let mut size = value;
        for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
            if size.abs() < 1024.0 || unit == "TiB" {
                return if unit == "B" { format!("{size} {unit}") } else { format!("{size:.1} {unit}") };
            }
            size /= 1024.0;
        }
    }
    number(value)
}

/// A number as a person writes it: whole numbers plainly, huge or tiny ones with an exponent.
fn number(value: f64) -> String {
    if value.is_finite() && value != 0.0 && !(1e-4..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_in_a_persons_units() {
        let now: chrono::DateTime<chrono::Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        assert_eq!(shown("cabinet_drill_last_success_timestamp_seconds", 0.0, now), "never");
        assert_eq!(
            shown("cabinet_audit_last_timestamp_seconds", (now.timestamp() - 600) as f64, now),
            "2026-12-03 11:50:00 UTC (10 min ago)"
        );
        assert_eq!(shown("cabinet_filesystem_avail_bytes", 3.5 * 1024.0 * 1024.0 * 1024.0, now), "3.5 GiB");
        assert_eq!(shown("cabinet_filesystem_avail_bytes", 512.0, now), "512 B");
        assert_eq!(shown("cabinet_role_connections", 3.0, now), "3");
        assert_eq!(shown("cabinet_wal_oldest_ready_timestamp_seconds", 1e300, now), "1e300");
    }
}
