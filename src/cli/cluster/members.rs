//! The cluster's members, as the commands that ask them are given them.

/// The members to ask: from --member, CABINET_CLUSTER_MEMBERS or the file's cluster.members.
pub(super) fn require_members(members: &[String]) -> anyhow::Result<()> {
    if members.is_empty() {
        anyhow::bail!(
            "no cluster members given: pass --member HOST:PORT (each node's Patroni API, port 8008), \
             or list them as members in the [cluster] section of {}",
            crate::config::DEFAULT_PATH
        );
    }
    Ok(())
}
