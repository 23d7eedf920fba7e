use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output, output::outln},
    cluster::patroni::{PatroniApi, survey},
};

/// Show the cluster as Patroni sees it: members, role, state, timeline, lag, and what is
/// wrong (exit 1 when there is no leader, no streaming synchronous standby, a lagging or
/// stopped member, a member that does not answer or names another leader, the cluster is
/// paused, or — with --etcd — an etcd member is lost).
///
/// Example:
///   cabinet-db cluster status --member 100.64.0.1:8008 --member 100.64.0.2:8008 \
///       --etcd 100.64.0.1:2379 --etcd 100.64.0.2:2379 --etcd 100.64.0.3:2379
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// A member's REST API, HOST:PORT; repeatable: every member is asked, the newest view is
    /// shown.
    #[arg(long = "member", value_name = "HOST:PORT", env = "CABINET_CLUSTER_MEMBERS", value_delimiter = ',')]
    pub(crate) members: Vec<String>,
    /// An etcd member's client address, HOST:PORT (2379); repeatable: each is asked for its
    /// health, and a lost member (or quorum) is a problem.
    #[arg(long = "etcd", value_name = "HOST:PORT", env = "CABINET_CLUSTER_ETCD", value_delimiter = ',')]
    pub(crate) etcd: Vec<String>,
    /// A replica further behind than this (bytes) is a problem.
    #[arg(long, default_value_t = crate::cluster::patroni::DEFAULT_MAX_LAG_BYTES)]
    pub(crate) max_lag_bytes: u64,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    super::members::require_members(&args.members)?;
    let apis: Vec<PatroniApi> = args.members.iter().map(PatroniApi::new).collect();
    let (survey, etcd) = tokio::join!(survey(&apis), crate::cluster::etcd::health(&args.etcd));
    let survey = survey?;
    let mut problems = survey.problems(args.max_lag_bytes);
    problems.extend(crate::cluster::etcd::problems(&etcd));
    let view = &survey.view;
    if json {
        output::print_json(&serde_json::json!({
            "asked": survey.asked.address, "members": view.members, "pause": view.pause, "etcd": etcd,
            "problems": problems,
        }))?;
    } else {
        let rows: Vec<Vec<String>> = view
            .members
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.host.clone().unwrap_or_default(),
                    m.role.clone(),
                    m.state.clone(),
                    m.timeline.map(|t| t.to_string()).unwrap_or_default(),
                    match (&m.lag, m.is_leader()) {
                        (_, true) => String::new(),
                        (Some(lag), _) => lag.to_string().trim_matches('"').to_owned(),
                        (None, _) => "?".to_owned(),
                    },
                ]
            })
            .collect();
        output::print_table(&["member", "host", "role", "state", "timeline", "lag (bytes)"], &rows)?;
        if !etcd.is_empty() {
            let healthy = etcd.iter().filter(|m| m.healthy).count();
            outln!("etcd: {healthy} of {} members healthy", etcd.len())?;
        }
        if problems.is_empty() {
            outln!("\nhealthy: a leader, a streaming synchronous standby; every member agrees")?;
        } else {
            for p in &problems {
                // Names and reasons come from the members' answers: shown escaped.
                outln!("problem: {}", output::terminal_safe(p, false))?;
            }
        }
    }
    Ok(if problems.is_empty() { Outcome::Success } else { Outcome::CheckFailed })
}
