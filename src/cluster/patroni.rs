//! Patroni's REST API: the members as Patroni sees them (`GET /cluster`) and a planned
//! switchover (`POST /switchover`, which needs the API's password).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ClusterError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One member of `GET /cluster`. Patroni's names: role `leader`, `sync_standby`, `replica`
/// (…); state `running`, `streaming`, `stopped` (…); lag in bytes, or `"unknown"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MemberView {
    pub name: String,
    pub role: String,
    pub state: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub api_url: Option<String>,
    pub timeline: Option<u64>,
    pub lag: Option<serde_json::Value>,
}

impl MemberView {
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    /// Bytes behind the leader, when Patroni knows.
    pub fn lag_bytes(&self) -> Option<u64> {
        self.lag.as_ref()?.as_u64()
    }
}

/// `GET /cluster`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ClusterView {
    pub members: Vec<MemberView>,
    /// Maintenance mode: Patroni does not fail over while paused.
    pub pause: bool,
}

impl ClusterView {
    pub fn leader(&self) -> Option<&MemberView> {
        self.members.iter().find(|m| m.is_leader())
    }

    /// Members that confirm every commit before it is acknowledged, and stream right now.
    pub fn streaming_sync_standbys(&self) -> Vec<&MemberView> {
        self.members.iter().filter(|m| m.role == "sync_standby" && m.state == "streaming").collect()
    }

    /// What is wrong, in words; empty when a leader runs, a synchronous standby streams, and
    /// nothing is paused.
    pub fn problems(&self, max_lag_bytes: u64) -> Vec<String> {
        let mut problems = Vec::new();
        match self.leader() {
            None => problems.push("no leader: nothing accepts writes".to_owned()),
            Some(leader) if leader.state != "running" => {
                problems.push(format!("the leader {} is {}, not running", leader.name, leader.state))
            }
            Some(_) => {}
        }
        if self.streaming_sync_standbys().is_empty() {
            problems.push(
                "no synchronous standby is streaming: a failover now could lose acknowledged commits, or find no candidate"
                    .to_owned(),
            );
        }
        for member in &self.members {
            if !member.is_leader() && member.lag_bytes().is_some_and(|lag| lag > max_lag_bytes) {
                problems.push(format!(
                    "{} is {} bytes behind the leader",
                    member.name,
                    member.lag_bytes().unwrap_or(0)
                ));
            }
            if !member.is_leader() && !["streaming", "running"].contains(&member.state.as_str()) {
                problems.push(format!("{} is {}", member.name, member.state));
            }
        }
        if self.pause {
            problems.push("the cluster is paused: Patroni will not fail over (patronictl resume)".to_owned());
        }
        problems
    }
}

/// The REST API of one member, `host:port`.
#[derive(Clone)]
pub struct PatroniApi {
    pub address: String,
    /// For changing endpoints: (user, password), e.g. from `patroni.env`.
    pub auth: Option<(String, String)>,
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

    pub async fn cluster(&self) -> Result<ClusterView, ClusterError> {
        let (status, body) = self.request("GET", "/cluster", None).await?;
        if status != 200 {
            return Err(self.error(format!("GET /cluster answered {status}: {}", body.trim())));
        }
        serde_json::from_str(&body)
            .map_err(|e| self.error(format!("GET /cluster is not Patroni's JSON: {e}")))
    }

    /// Hands the leader role from `leader` to `candidate` now; Patroni's answer.
    pub async fn switchover(&self, leader: &str, candidate: &str) -> Result<String, ClusterError> {
        if self.auth.is_none() {
            return Err(self.error(
                "a switchover needs the REST API's password (PATRONI_RESTAPI_PASSWORD in patroni.env)".into(),
            ));
        }
        let body = serde_json::json!({ "leader": leader, "candidate": candidate }).to_string();
        let (status, answer) = self.request("POST", "/switchover", Some(&body)).await?;
        if status != 200 {
            return Err(self.error(format!("the switchover was refused ({status}): {}", answer.trim())));
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
    ) -> Result<(u16, String), ClusterError> {
        use base64::Engine;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cabinet-db\r\nAccept: application/json\r\nConnection: close\r\n",
            self.address
        );
        if let Some((user, password)) = &self.auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(&self.address).await?;
            crate::http1::exchange(&mut stream, &head, body.as_bytes()).await
        };
        let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| self.error(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))?
            .map_err(|e| self.error(format!("cannot reach it: {e}")))?;
        crate::http1::parse_response(&raw).map_err(|e| self.error(format!("not an HTTP answer: {e}")))
    }
}

/// The first of `members` whose API answers, with its view of the cluster.
pub async fn first_answer(members: &[PatroniApi]) -> Result<(PatroniApi, ClusterView), ClusterError> {
    let mut reasons = Vec::new();
    for api in members {
        match api.cluster().await {
            Ok(view) => return Ok((api.clone(), view)),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(ClusterError::Api { address: "every member".into(), reason: reasons.join("; ") })
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
        assert!(view.problems(1 << 20).is_empty(), "{:?}", view.problems(1 << 20));
        let degraded: ClusterView = serde_json::from_str(
            r#"{"members":[{"name":"db2","role":"replica","state":"stopped","lag":"unknown"}],"pause":true}"#,
        )
        .unwrap();
        let problems = degraded.problems(1 << 20).join("\n");
        for expected in ["no leader", "no synchronous standby", "db2 is stopped", "paused"] {
            assert!(problems.contains(expected), "{problems}");
        }
    }
}
