//! The Patroni cluster, when one is configured (`--cluster-member`): a leader, a streaming
//! synchronous standby, lag under the bound, every replica up, not paused, every member
//! answering and agreeing — read from Patroni's REST API as `cluster status` reads it.

use super::check::Check;
use crate::cluster::{
    patroni::{Aspect, DEFAULT_MAX_LAG_BYTES, PatroniApi, survey},
    render::{NODE_CONFIG_DIR, PATRONI_UNIT},
};

pub(crate) async fn checks(members: &[String]) -> Vec<Check> {
    let apis: Vec<PatroniApi> = members.iter().map(PatroniApi::new).collect();
    let survey = match survey(&apis).await {
        Ok(survey) => survey,
        Err(e) => {
            return vec![Check::fail(
                "cluster.reachable",
                e.to_string(),
                format!(
                    "start Patroni on the members (systemctl start {PATRONI_UNIT}) or correct --cluster-member"
                ),
            )];
        }
    };
    let mut checks = vec![Check::pass("cluster.reachable", format!("{} members", survey.view.members.len()))];
    for (aspect, problems) in survey.health(DEFAULT_MAX_LAG_BYTES) {
        let (id, passed, remedy) = match aspect {
            Aspect::Leader => (
                "cluster.leader",
                "a leader runs",
                format!(
                    "see `cabinet-db cluster status` and Patroni's journal (journalctl -u {PATRONI_UNIT}) on each node"
                ),
            ),
            Aspect::SyncStandby => (
                "cluster.sync_standby",
                "a synchronous standby is streaming",
                format!(
                    "start Patroni on a standby (systemctl start {PATRONI_UNIT}); a stopped one rejoins by itself (pg_rewind)"
                ),
            ),
            Aspect::Lag => (
                "cluster.lag",
                "no replica lags",
                format!(
                    "look at the replica's network and disk (journalctl -u {PATRONI_UNIT}); a lagging synchronous standby slows every commit"
                ),
            ),
            Aspect::Members => (
                "cluster.members",
                "every replica streams",
                format!("start Patroni on the stopped members (systemctl start {PATRONI_UNIT})"),
            ),
            Aspect::Pause => (
                "cluster.paused",
                "Patroni is not paused",
                format!("patronictl -c {NODE_CONFIG_DIR}/patroni.yml resume"),
            ),
            Aspect::Agreement => (
                "cluster.agreement",
                "every member answers and names the same leader",
                format!(
                    "a member that does not answer or names another leader is down or cut off from etcd: check its network and {PATRONI_UNIT}"
                ),
            ),
        };
        checks.push(Check::from_problems(id, problems, passed, remedy));
    }
    checks
}
