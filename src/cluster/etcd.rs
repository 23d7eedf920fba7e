//! etcd's own view of its members (`GET /health` on each member's client port): Patroni keeps
//! and hands over the leader key through etcd, so without a quorum there is no failover, and
//! with one member lost there is no margin for another.

use std::time::Duration;

use serde::Serialize;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// One member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EtcdMember {
    /// `host:port` of its client URL.
    pub(crate) address: String,
    /// It answers and reaches a quorum (`{"health":"true"}`).
    pub(crate) healthy: bool,
    /// Why not, in words (empty when healthy).
    pub(crate) reason: String,
}

/// Asks every member at once.
pub(crate) async fn health(members: &[String]) -> Vec<EtcdMember> {
    futures_util::future::join_all(members.iter().map(|address| async move {
        let request = hyper::Request::get("/health");
        let answer = crate::http_client::tcp_request(address, request, String::new(), REQUEST_TIMEOUT).await;
        let (healthy, reason) = match answer {
            Ok((200, body)) if healthy_body(&body) => (true, String::new()),
            Ok((status, body)) => {
                (false, format!("answered {status}: {}", crate::models::characters::peer_excerpt(&body)))
            }
            Err(why) => (false, why),
        };
        EtcdMember { address: address.clone(), healthy, reason }
    }))
    .await
}

/// `{"health":"true",…}` (etcd 3.4 writes the boolean as a string).
fn healthy_body(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v["health"] == "true" || v["health"] == true)
}

/// What is wrong, in words: each unhealthy member, and what it costs.
pub(crate) fn problems(members: &[EtcdMember]) -> Vec<String> {
    let healthy = members.iter().filter(|m| m.healthy).count();
    let mut problems: Vec<String> = members
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| format!("etcd member {}: {}", m.address, m.reason))
        .collect();
    if problems.is_empty() {
        return problems;
    }
    if healthy * 2 <= members.len() {
        problems.push(format!(
            "etcd has no quorum ({healthy} of {} healthy): Patroni can neither keep nor hand over the leader key",
            members.len()
        ));
    } else {
        problems.push(format!(
            "{healthy} of {} etcd members healthy: one more failure stops failover",
            members.len()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(address: &str, healthy: bool) -> EtcdMember {
        EtcdMember {
            address: address.into(),
            healthy,
            reason: if healthy { "" } else { "cannot reach it" }.into(),
        }
    }

    #[test]
    fn a_lost_member_costs_the_margin_and_a_lost_majority_the_quorum() {
        assert!(healthy_body(r#"{"health":"true","reason":""}"#) && !healthy_body(r#"{"health":"false"}"#));
        assert!(
            problems(&[member("a:2379", true), member("b:2379", true), member("c:2379", true)]).is_empty()
        );
        let one =
            problems(&[member("a:2379", true), member("b:2379", false), member("c:2379", true)]).join("\n");
        assert!(
            one.contains("etcd member b:2379: cannot reach it") && one.contains("one more failure"),
            "{one}"
        );
        let two =
            problems(&[member("a:2379", false), member("b:2379", false), member("c:2379", true)]).join("\n");
        assert!(two.contains("no quorum (1 of 3 healthy)"), "{two}");
    }
}
