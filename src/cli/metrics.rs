//! `cabinet-db metrics`: what cabinet-db knows, in Prometheus' text format.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output::outln},
    roles::{DEFAULT_ROLE_PREFIX, Roles},
};

/// Print the metrics only cabinet-db knows, in Prometheus' text format.
///
/// Connections per role of ours against each role's limit, migrations applied against this
/// binary's, the history's size and newest prune; the newest drill, whether it passed, and when
/// one last did (from pgBackRest's state directory, on the database host). With --out the text replaces FILE whole
/// (for node_exporter's textfile collector, e.g.
/// /var/lib/prometheus/node-exporter/cabinet-db.prom). When the database does not answer,
/// `cabinet_database_up 0` says so and the command still succeeds: a scrape that reports the
/// outage is worth more than one that fails.
///
/// Examples:
///   cabinet-db metrics
///   cabinet-db metrics --out /var/lib/prometheus/node-exporter/cabinet-db.prom
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The prefix of our role names.
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// pgBackRest's configuration (`backup setup --config`): its state directory holds the
    /// drills' record.
    #[arg(long, env = "CABINET_BACKUP_CONFIG", default_value = crate::backup::config::DEFAULT_CONFIG)]
    pub(crate) backup_config: PathBuf,
    /// A Patroni member's REST API, HOST:PORT; repeatable (as `cluster status --member`):
    /// the cluster's leader, synchronous standbys, members by state and lag.
    #[arg(long = "member", value_name = "HOST:PORT", env = "CABINET_CLUSTER_MEMBERS", value_delimiter = ',')]
    pub(crate) members: Vec<String>,
    /// Write the text to this file (replaced whole, 0644) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<Outcome> {
    let text = crate::metrics::scrape(crate::metrics::Sources {
        database: args.connection.url()?,
        roles: &args.role_prefix,
        backup_config: &args.backup_config,
        cluster_members: &args.members,
    })
    .await;
    match &args.out {
        Some(path) => {
            use std::io::Write;
            let write = || -> std::io::Result<()> {
                let mut file = crate::atomic_file::AtomicFile::create(path, crate::atomic_file::PUBLIC_MODE)?;
                file.write_all(text.as_bytes())?;
                file.commit()
            };
            write().map_err(|e| {
                anyhow::anyhow!(
                    "cannot write {}: {e} (its directory must exist; nothing was written)",
                    path.display()
                )
            })?;
        }
        None => outln!("{}", text.trim_end())?,
    }
    Ok(Outcome::Success)
}
