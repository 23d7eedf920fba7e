//! The admin panel's own counters, kept by `serve` while it runs: requests by route and status,
//! how long they took, whois calls that failed, and whether the database answers. Routes are
//! the router's patterns (`/sites/{id}`), never the path asked for: a label per site id would
//! grow without bound, and a path is whatever a client sends.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::exposition::{Family, Kind};

/// The latency histogram's upper bounds, in seconds: pages answer in milliseconds, a page
/// waiting on a busy database in seconds (the pool's acquire timeout is a few).
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The route label of a request no route matched (a 404, or a refusal before routing).
pub(crate) const UNMATCHED: &str = "unmatched";

/// What `serve` counts.
#[derive(Debug, Default)]
pub(crate) struct PanelCounters {
    /// (route pattern, status) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Requests at or below each bound of `BUCKETS` (not cumulative here: summed on render).
    buckets: [AtomicU64; BUCKETS.len()],
    /// Requests slower than the last bound.
    over: AtomicU64,
    duration_micros: AtomicU64,
    whois_failures: AtomicU64,
}

impl PanelCounters {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: &str, status: u16, took: Duration) {
        *lock(&self.requests).entry((route.to_owned(), status)).or_default() += 1;
        let seconds = took.as_secs_f64();
        match BUCKETS.iter().position(|bound| seconds <= *bound) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.duration_micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts a whois call tailscaled did not answer.
    pub(crate) fn whois_failed(&self) {
        self.whois_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The families, with `ready` (the database answers the panel's role now).
    pub(crate) fn families(&self, ready: bool) -> Vec<Family> {
        let mut requests = Family::new(
            "cabinet_panel_requests_total",
            "Requests the panel answered, by route pattern and status.",
            Kind::Counter,
        );
        for ((route, status), count) in lock(&self.requests).iter() {
            requests.push(&[("route", route), ("status", &status.to_string())], *count as f64);
        }
        let mut duration = Family::new(
            "cabinet_panel_request_duration_seconds",
            "How long the panel took to answer requests.",
            Kind::Histogram,
        );
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            duration.push_part("_bucket", &[("le", &bound.to_string())], cumulative as f64);
        }
        cumulative += self.over.load(Ordering::Relaxed);
        duration.push_part("_bucket", &[("le", "+Inf")], cumulative as f64);
        duration.push_part("_sum", &[], self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6);
        duration.push_part("_count", &[], cumulative as f64);
        vec![
            requests,
            duration,
            Family::single(
                "cabinet_panel_whois_failures_total",
                "Times tailscaled's LocalAPI could not say who a peer is (every such request got 503).",
                Kind::Counter,
                self.whois_failures.load(Ordering::Relaxed) as f64,
            ),
            Family::single(
                "cabinet_panel_ready",
                "1 when the database answers the panel's role (as /readyz), else 0.",
                Kind::Gauge,
                f64::from(u8::from(ready)),
            ),
        ]
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters left by a panicking request are still counters: keep using them.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::render;

    #[test]
    fn requests_count_by_route_and_status_and_the_histogram_is_cumulative() {
        let counters = PanelCounters::default();
        counters.request("/sites/{id}", 200, Duration::from_millis(3));
        counters.request("/sites/{id}", 200, Duration::from_millis(30));
        counters.request(UNMATCHED, 404, Duration::from_secs(20));
        counters.whois_failed();
        let text = render(&counters.families(true));
        assert!(
            text.contains("cabinet_panel_requests_total{route=\"/sites/{id}\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("cabinet_panel_requests_total{route=\"unmatched\",status=\"404\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("cabinet_panel_request_duration_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("cabinet_panel_request_duration_seconds_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("cabinet_panel_request_duration_seconds_bucket{le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("cabinet_panel_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("cabinet_panel_request_duration_seconds_count 3\n"), "{text}");
        assert!(text.contains("cabinet_panel_request_duration_seconds_sum 20.033\n"), "{text}");
        assert!(text.contains("cabinet_panel_whois_failures_total 1\n"), "{text}");
        assert!(text.contains("cabinet_panel_ready 1\n"), "{text}");
    }
}
