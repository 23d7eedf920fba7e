//! Patroni's REST API: the members as Patroni sees them (`GET /cluster`) and a planned
//! switchover (`POST /switchover`, which needs the API's password).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ClusterError;

/// A replica further behind than this is a problem (`cluster status`, `audit`): 16 MiB is one
/// WAL segment; on a tailnet a healthy standby is kilobytes behind.
pub const DEFAULT_MAX_LAG_BYTES: u64 = 16 * 1024 * 1024;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Patroni answers `POST /switchover` once the switchover is done (or failed): seconds, more
/// on a loaded host.
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// One member of `GET /cluster`. Patroni's names: role `leader`, `sync_standby`, `replica`
/// (…); state `running`, `streaming`, `stopped` (…); lag in bytes, or `"unknown"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MemberView {
    pub name: String,
    pub(crate) role: String,
    pub state: String,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) api_url: Option<String>,
    pub timeline: Option<u64>,
    pub(crate) lag: Option<serde_json::Value>,
}

impl MemberView {
    pub(crate) fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    /// `host:port` of its REST API, from `api_url` (`http://host:port/patroni`).
    pub(crate) fn api_address(&self) -> Option<&str> {
        let url = self.api_url.as_deref()?;
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
        rest.split('/').next()
    }

    /// Bytes behind the leader, when Patroni knows.
    pub(crate) fn lag_bytes(&self) -> Option<u64> {
        self.lag.as_ref()?.as_u64()
    }
}

/// `GET /cluster`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ClusterView {
    pub members: Vec<MemberView>,
    /// Maintenance mode: Patroni does not fail over while paused.
    pub(crate) pause: bool,
}

impl ClusterView {
    pub fn leader(&self) -> Option<&MemberView> {
        self.members.iter().find(|m| m.is_leader())
    }

    /// The leader and the timeline it runs on, in words.
    fn claim(&self) -> String {
        match self.leader() {
            Some(l) => format!(
                "leader {} on timeline {}",
                l.name,
                l.timeline.map(|t| t.to_string()).unwrap_or("?".into())
            ),
            None => "there is no leader".to_owned(),
        }
    }

    /// Orders views by how new they are: a running leader's timeline, then any timeline.
    fn recency(&self) -> (Option<u64>, Option<u64>) {
        (self.leader().and_then(|l| l.timeline), self.members.iter().filter_map(|m| m.timeline).max())
    }

    /// Members that confirm every commit before it is acknowledged, and stream right now.
    pub fn streaming_sync_standbys(&self) -> Vec<&MemberView> {
        self.members.iter().filter(|m| m.role == "sync_standby" && m.state == "streaming").collect()
    }

    /// What is wrong, aspect by aspect; nothing when a leader runs, a synchronous standby
    /// streams, no replica lags or is stopped, and nothing is paused. (`Survey::health` adds
    /// whether the members agree.)
    pub(crate) fn health(&self, max_lag_bytes: u64) -> Vec<(Aspect, Vec<String>)> {
        let mut leader = Vec::new();
        match self.leader() {
            None => leader.push("no leader: nothing accepts writes".to_owned()),
            Some(l) if l.state != "running" => {
                leader.push(format!("the leader {} is {}, not running", l.name, l.state))
            }
            Some(_) => {}
        }
        let mut sync = Vec::new();
        if self.streaming_sync_standbys().is_empty() {
            sync.push(
                "no synchronous standby is streaming: a failover now could lose acknowledged commits, or find no candidate"
                    .to_owned(),
            );
        }
        let replicas = || self.members.iter().filter(|m| !m.is_leader());
        let lag = replicas()
            .filter_map(|m| Some((m, m.lag_bytes()?)))
            .filter(|(_, lag)| *lag > max_lag_bytes)
            .map(|(m, lag)| format!("{} is {lag} bytes behind the leader", m.name))
            .collect();
        let stopped = replicas()
            .filter(|m| !["streaming", "running"].contains(&m.state.as_str()))
            .map(|m| format!("{} is {}", m.name, m.state))
            .collect();
        let pause = if self.pause {
            vec![format!(
                "the cluster is paused: Patroni will not fail over (patronictl -c {}/patroni.yml resume)",
                super::render::NODE_CONFIG_DIR
            )]
        } else {
            vec![]
        };
        vec![
            (Aspect::Leader, leader),
            (Aspect::SyncStandby, sync),
            (Aspect::Lag, lag),
            (Aspect::Members, stopped),
            (Aspect::Pause, pause),
        ]
    }
}

/// What `ClusterView::health` judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aspect {
    /// A leader exists and runs.
    Leader,
    /// A synchronous standby streams (zero-loss failover is possible).
    SyncStandby,
    /// No replica is further behind than the bound.
    Lag,
    /// No replica is stopped, starting or crashed.
    Members,
    /// Patroni is not paused (maintenance mode disables failover).
    Pause,
    /// Every member asked answers and names the same leader and timeline (`Survey` only).
    Agreement,
}

/// The REST API of one member, `host:port`.
#[derive(Clone)]
pub struct PatroniApi {
    pub(crate) address: String,
    /// For changing endpoints: (user, password), e.g. from `patroni.env`.
    pub(crate) auth: Option<(String, String)>,
}

impl std::fmt::Debug for PatroniApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatroniApi")
            .field("address", &self.address)
            .field("auth", &self.auth.as_ref().map(|(user, _)| format!("{user}:<redacted>")))
            .finish()
    }
}

impl PatroniApi {
    pub fn new(address: impl Into<String>) -> PatroniApi {
        PatroniApi { address: address.into(), auth: None }
    }

    pub(crate) async fn cluster(&self) -> Result<ClusterView, ClusterError> {
        let (status, body) = self.request("GET", "/cluster", None, REQUEST_TIMEOUT).await?;
        if status != 200 {
            return Err(self.error(format!(
                "GET /cluster answered {status}: {}",
                crate::models::characters::peer_excerpt(&body)
            )));
        }
        serde_json::from_str(&body)
            .map_err(|e| self.error(format!("GET /cluster is not Patroni's JSON: {e}")))
    }

    /// Hands the leader role from `leader` to `candidate` now; Patroni's answer.
    pub(crate) async fn switchover(&self, leader: &str, candidate: &str) -> Result<String, ClusterError> {
        if self.auth.is_none() {
            return Err(self.error(
                "a switchover needs the REST API's password (PATRONI_RESTAPI_PASSWORD in patroni.env)".into(),
            ));
        }
        let body = serde_json::json!({ "leader": leader, "candidate": candidate }).to_string();
        let (status, answer) = self.request("POST", "/switchover", Some(&body), SWITCHOVER_TIMEOUT).await?;
        if status != 200 {
            return Err(self.error(format!(
                "the switchover was refused ({status}): {}",
                crate::models::characters::peer_excerpt(&answer)
            )));
        }
        Ok(answer.trim().to_owned())
    }

    fn error(&self, reason: String) -> ClusterError {
        ClusterError::Api { address: self.address.clone(), reason }
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, String), ClusterError> {
        use base64::Engine;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::ACCEPT, "application/json");
        if let Some((user, password)) = &self.auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        crate::http_client::tcp_request(&self.address, request, body.to_owned(), timeout)
            .await
            .map_err(|e| self.error(e))
    }
}

/// Every member's view of the cluster. A member cut off from etcd keeps answering `/cluster`
/// from its last view (seen here: a former leader, just reconnected, still named itself leader
/// on the old timeline), so one member's word is not enough.
#[derive(Debug, Clone)]
pub struct Survey {
    /// The newest view: the highest timeline a leader runs on (a view with a leader first).
    pub view: ClusterView,
    /// The member whose view that is (changing requests go to it).
    pub(crate) asked: PatroniApi,
    /// Members whose API did not answer, and why.
    pub(crate) unreachable: Vec<(String, String)>,
    /// Members that name another leader or timeline than the newest view: (address, what it says).
    pub(crate) disagreeing: Vec<(String, String)>,
}

impl Survey {
    /// `ClusterView::health`, plus whether every member answers and agrees.
    pub(crate) fn health(&self, max_lag_bytes: u64) -> Vec<(Aspect, Vec<String>)> {
        let mut health = self.view.health(max_lag_bytes);
        let mut agreement: Vec<String> = self
            .unreachable
            .iter()
            .map(|(address, why)| format!("{address} did not answer: {why}"))
            .collect();
        agreement.extend(self.disagreeing.iter().map(|(address, says)| {
            format!("{address} says {says}: a member cut off from etcd shows its last view")
        }));
        health.push((Aspect::Agreement, agreement));
        health
    }

    pub fn problems(&self, max_lag_bytes: u64) -> Vec<String> {
        self.health(max_lag_bytes).into_iter().flat_map(|(_, problems)| problems).collect()
    }
}

/// Asks every member (at once) for its view; `Err` only when none answers.
pub async fn survey(members: &[PatroniApi]) -> Result<Survey, ClusterError> {
    let answers = futures_util::future::join_all(
        members.iter().map(|api| async move { (api.clone(), api.cluster().await) }),
    )
    .await;
    Survey::from_answers(answers)
}

impl Survey {
    /// Judges the members' answers: the newest view wins, the others must agree with it.
    pub(crate) fn from_answers(
        answers: Vec<(PatroniApi, Result<ClusterView, ClusterError>)>,
    ) -> Result<Survey, ClusterError> {
        let mut unreachable = Vec::new();
        let mut views = Vec::new();
        for (api, answer) in answers {
            match answer {
                Ok(view) => views.push((api, view)),
                Err(e) => unreachable.push((api.address.clone(), e.to_string())),
            }
        }
        // Among equally new views, the first member asked (`max_by_key` would take the last).
        let newest = views.iter().rev().max_by_key(|(_, v)| v.recency()).cloned();
        let Some((asked, view)) = newest else {
            let reasons: Vec<String> = unreachable.into_iter().map(|(_, why)| why).collect();
            return Err(ClusterError::NoMemberAnswered(reasons));
        };
        let disagreeing = views
            .iter()
            .filter(|(_, v)| v.claim() != view.claim())
            .map(|(api, v)| (api.address.clone(), v.claim()))
            .collect();
        Ok(Survey { view, asked, unreachable, disagreeing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patroni_cluster_json_reads_and_judges() {
        let view: ClusterView = serde_json::from_str(
            r#"{"members":[{"name":"db1","role":"leader","state":"running","api_url":"http://100.64.0.1:8008/patroni","host":"100.64.0.1","port":5432,"timeline":2},
                           {"name":"db2","role":"sync_standby","state":"streaming","host":"100.64.0.2","port":5432,"timeline":2,"lag":0,"receive_lag":0}],
                "scope":"cabinet"}"#,
        )
        .unwrap();
        assert_eq!(view.leader().unwrap().name, "db1");
        assert_eq!(view.leader().unwrap().api_address(), Some("100.64.0.1:8008"));
        let problems =
            |v: &ClusterView| v.health(1 << 20).into_iter().flat_map(|(_, p)| p).collect::<Vec<_>>();
        assert!(problems(&view).is_empty(), "{:?}", problems(&view));
        let degraded: ClusterView = serde_json::from_str(
            r#"{"members":[{"name":"db2","role":"replica","state":"stopped","lag":"unknown"}],"pause":true}"#,
        )
        .unwrap();
        let problems = problems(&degraded).join("\n");
        for expected in ["no leader", "no synchronous standby", "db2 is stopped", "paused"] {
            assert!(problems.contains(expected), "{problems}");
        }
    }

    #[test]
    fn a_member_cut_off_from_etcd_is_outvoted_by_the_newest_view_and_named() {
        let view = |leader: &str, other: &str, timeline: u64| -> ClusterView {
            serde_json::from_str(&format!(
                r#"{{"members":[{{"name":"{leader}","role":"leader","state":"running","timeline":{timeline}}},
                               {{"name":"{other}","role":"sync_standby","state":"streaming","timeline":{timeline},"lag":0}}]}}"#
            ))
            .unwrap()
        };
        // db1 was the leader on timeline 3, was cut off, and still says so; db2 took over (4).
        let stale = (PatroniApi::new("100.64.0.1:8008"), Ok(view("db1", "db2", 3)));
        let fresh = (PatroniApi::new("100.64.0.2:8008"), Ok(view("db2", "db1", 4)));
        for answers in [vec![stale.clone(), fresh.clone()], vec![fresh.clone(), stale.clone()]] {
            let survey = Survey::from_answers(answers).unwrap();
            assert_eq!(survey.view.leader().unwrap().name, "db2");
            assert_eq!(survey.asked.address, "100.64.0.2:8008");
            let problems = survey.problems(1 << 20).join("\n");
            assert!(problems.contains("100.64.0.1:8008 says leader db1 on timeline 3"), "{problems}");
        }
        let down = (
            PatroniApi::new("100.64.0.1:8008"),
            Err(ClusterError::Api { address: "100.64.0.1:8008".into(), reason: "cannot reach it".into() }),
        );
        let survey = Survey::from_answers(vec![down.clone(), fresh]).unwrap();
        assert!(survey.problems(1 << 20).join("\n").contains("100.64.0.1:8008 did not answer"));
        assert!(Survey::from_answers(vec![down]).is_err());
    }
}
