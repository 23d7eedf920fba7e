use std::path::PathBuf;

use anyhow::bail;
use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output, output::outln},
    cluster::{
        patroni::{PatroniApi, survey},
        render::read_restapi_auth,
    },
};

/// Hand the leader role to another member now (maintenance on the leader's host), through
/// Patroni: the candidate must be a streaming synchronous standby, so nothing is lost.
///
/// Example:
///   cabinet-db cluster switchover --member 100.64.0.1:8008 --to db2 --secrets /etc/cabinet-db/cluster/patroni.env
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// A member's REST API, HOST:PORT; repeatable.
    #[arg(long = "member", value_name = "HOST:PORT", env = "CABINET_CLUSTER_MEMBERS", value_delimiter = ',')]
    pub(crate) members: Vec<String>,
    /// The member to become the leader.
    #[arg(long)]
    pub(crate) to: String,
    /// The cluster's patroni.env (for the REST API's password).
    #[arg(long, default_value = "/etc/cabinet-db/cluster/patroni.env")]
    pub(crate) secrets: PathBuf,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    super::members::require_members(&args.members)?;
    let auth = read_restapi_auth(&args.secrets)?;
    let apis: Vec<PatroniApi> =
        args.members.iter().map(|m| PatroniApi { address: m.clone(), auth: Some(auth.clone()) }).collect();
    let survey = survey(&apis).await?;
    // Names and answers are the members': shown as text, never as terminal control.
    let safe = |text: &str| crate::models::characters::peer_excerpt(text);
    if let Some((address, says)) = survey.disagreeing.first() {
        bail!(
            "the members disagree ({address} says {}): a member cut off from etcd shows its last view; \
             restore the network and check `cabinet-db cluster status` first",
            safe(says)
        );
    }
    let view = &survey.view;
    let Some(leader) = view.leader() else { bail!("the cluster has no leader to switch over from") };
    if leader.name == args.to {
        bail!("{} is the leader already", safe(&args.to));
    }
    if !view.streaming_sync_standbys().iter().any(|m| m.name == args.to) {
        bail!(
            "{} is not a streaming synchronous standby, so it may lack acknowledged commits; candidates: {}",
            safe(&args.to),
            safe(
                &view
                    .streaming_sync_standbys()
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
    }
    // The leader's own API, when it was given: it carries the switchover out.
    let leader_api = apis.iter().find(|a| leader.api_address() == Some(a.address.as_str()));
    let api = leader_api.unwrap_or(&survey.asked);
    let answer = api.switchover(&leader.name, &args.to).await?;
    if json {
        output::print_json(&serde_json::json!({ "from": leader.name, "to": args.to, "patroni": answer }))?;
    } else {
        outln!("switched over from {} to {}: {}", safe(&leader.name), safe(&args.to), safe(&answer))?;
    }
    Ok(Outcome::Success)
}
