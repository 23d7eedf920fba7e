//! The Patroni cluster as every member's REST API shows it (`cluster status`'s survey): a
//! leader running, synchronous standbys streaming, members by state, each replica's lag, the
//! members that did not answer. Patroni's own `/metrics` says what one node is; this is what
//! the members say together. Member names and states come from peers: label values are
//! escaped by the exposition.

use super::exposition::{Family, Kind};
use crate::cluster::patroni::{PatroniApi, survey};

/// The families for the members' REST APIs at `members` (none without members: no cluster).
pub(super) async fn families(members: &[String]) -> Vec<Family> {
    if members.is_empty() {
        return Vec::new();
    }
    let apis: Vec<PatroniApi> = members.iter().map(PatroniApi::new).collect();
    let survey = survey(&apis).await;
    let answered = Family::single(
        "cabinet_cluster_members_answering",
        "Members whose REST API answered this scrape's survey.",
        Kind::Gauge,
        survey.as_ref().map_or(0, |s| members.len() - s.unreachable.len().min(members.len())) as f64,
    );
    let Ok(survey) = survey else {
        return vec![
            answered,
            Family::single("cabinet_cluster_leader", "1 when a leader runs, else 0.", Kind::Gauge, 0.0),
        ];
    };
    let view = &survey.view;
    let leader = view.leader().is_some_and(|l| l.state == "running");
    let mut by_state = Family::new(
        "cabinet_cluster_members",
        "Members by role and state, as the newest view (Patroni's GET /cluster) names them.",
        Kind::Gauge,
    );
    let mut counted: Vec<((String, String), usize)> = Vec::new();
    for member in &view.members {
        let key = (member.role.clone(), member.state.clone());
        match counted.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counted.push((key, 1)),
        }
    }
    for ((role, state), n) in &counted {
        by_state.push(&[("role", role), ("state", state)], *n as f64);
    }
    let mut lag = Family::new(
        "cabinet_cluster_member_lag_bytes",
        "How far each replica's received WAL is behind the leader, in bytes (Patroni's lag).",
        Kind::Gauge,
    );
    for member in view.members.iter().filter(|m| !m.is_leader()) {
        if let Some(bytes) = member.lag_bytes() {
            lag.push(&[("member", &member.name)], bytes as f64);
        }
    }
    vec![
        answered,
        Family::single(
            "cabinet_cluster_leader",
            "1 when a leader runs, else 0.",
            Kind::Gauge,
            f64::from(u8::from(leader)),
        ),
        Family::single(
            "cabinet_cluster_sync_standbys_streaming",
            "Synchronous standbys streaming now (0: commits wait or run unprotected).",
            Kind::Gauge,
            view.streaming_sync_standbys().len() as f64,
        ),
        Family::single(
            "cabinet_cluster_disagreeing_members",
            "Members naming another leader or timeline than the newest view (cut off from etcd).",
            Kind::Gauge,
            survey.disagreeing.len() as f64,
        ),
        Family::single(
            "cabinet_cluster_paused",
            "1 when the cluster is in maintenance mode (Patroni does not fail over), else 0.",
            Kind::Gauge,
            f64::from(u8::from(view.pause)),
        ),
        by_state,
        lag,
    ]
}
