use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::{
    cli::{outcome::Outcome, output},
    cluster::{ClusterSpec, Member, Ports, Timing, render},
    roles::{DEFAULT_ROLE_PREFIX, Roles},
};

/// Render a Patroni cluster on the tailnet: PostgreSQL + Patroni + etcd on each --node, etcd
/// only on the --witness, HAProxy for client hosts.
///
/// Examples:
///   cabinet-db cluster render --out cluster --node db1=100.64.0.1 --node db2=100.64.0.2 --witness w=100.64.0.3
///   cabinet-db cluster render --out cluster --node db1=100.64.0.1 --node db2=100.64.0.2 --node db3=100.64.0.3
///
/// The output holds one directory per host, clients/haproxy.cfg, INSTALL.md (what goes where),
/// and patroni.env: the cluster's passwords (0600), generated on the first run and kept after.
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Where to write the files.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// A database node, NAME=TAILSCALE_IP (at least two).
    #[arg(long = "node", value_name = "NAME=IP", env = "CABINET_CLUSTER_NODES", value_delimiter = ',')]
    pub(crate) nodes: Vec<String>,
    /// An etcd-only member, NAME=TAILSCALE_IP, so two nodes still have a three-member quorum.
    #[arg(long, value_name = "NAME=IP", env = "CABINET_CLUSTER_WITNESS")]
    pub(crate) witness: Option<String>,
    /// The cluster's name in etcd.
    #[arg(long, default_value = "cabinet")]
    pub(crate) scope: String,
    /// The leader key's time to live, seconds (Patroni's minimum: 20).
    #[arg(long, default_value_t = Timing::default().ttl)]
    pub(crate) ttl: u32,
    /// How often the leader renews its key, seconds.
    #[arg(long, default_value_t = Timing::default().loop_wait)]
    pub(crate) loop_wait: u32,
    /// How long a call to etcd or PostgreSQL is retried, seconds.
    #[arg(long, default_value_t = Timing::default().retry_timeout)]
    pub(crate) retry_timeout: u32,
    /// PostgreSQL's port on each node.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = Ports::default().postgres)]
    pub(crate) port: u16,
    /// Patroni's REST API port.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = Ports::default().patroni)]
    pub(crate) patroni_port: u16,
    /// HAProxy's frontend on client hosts that reaches only the leader.
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = Ports::default().leader_frontend)]
    pub(crate) leader_port: u16,
    /// HAProxy's frontend on client hosts that reaches any healthy member (for n8n).
    #[arg(long, value_parser = crate::cli::args::parse_port, default_value_t = Ports::default().any_frontend)]
    pub(crate) any_port: u16,
    /// PostgreSQL's data directory on each node.
    #[arg(long, default_value = "/var/lib/postgresql/15/cabinet")]
    pub(crate) data_dir: PathBuf,
    /// PostgreSQL's server binaries on each node.
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pub(crate) bin_dir: PathBuf,
    /// Patroni's virtual environment on each node.
    #[arg(long, default_value = "/opt/cabinet-db/patroni")]
    pub(crate) patroni_dir: PathBuf,
    /// The application database.
    #[arg(long, default_value = "cabinet")]
    pub(crate) database: String,
    /// Prefix of the role names.
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// Archive WAL with pgBackRest: each node's patroni.yml gets archive_mode, archive_command
    /// and restore_command for the pgBackRest configuration at this path (then run `backup
    /// setup --repo-host …` on each node and `backup setup-repo-host --db-host …` with every
    /// node on the repository host).
    #[arg(long, value_name = "CONFIG", num_args = 0..=1, default_missing_value = crate::backup::config::DEFAULT_CONFIG)]
    pub(crate) backups: Option<PathBuf>,
}

pub(crate) fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let nodes = args.nodes.iter().map(|n| Member::parse(n)).collect::<Result<Vec<_>, _>>()?;
    let witness = args.witness.as_deref().map(Member::parse).transpose()?;
    let spec = ClusterSpec {
        scope: args.scope,
        nodes,
        witness,
        ports: Ports {
            postgres: args.port,
            patroni: args.patroni_port,
            leader_frontend: args.leader_port,
            any_frontend: args.any_port,
            ..Ports::default()
        },
        timing: Timing { ttl: args.ttl, loop_wait: args.loop_wait, retry_timeout: args.retry_timeout },
        data_dir: args.data_dir,
        bin_dir: args.bin_dir,
        patroni_dir: args.patroni_dir,
        database: args.database,
        roles: args.role_prefix,
        backup_config: args.backups,
    };
    let files = render::write(&args.out, &spec)?;
    let notes = [
        format!(
            "{} holds the cluster's passwords (0600, kept on reruns).",
            args.out.join(render::SECRETS_FILE).display()
        ),
        format!("{} explains where each file goes.", args.out.join("INSTALL.md").display()),
    ];
    output::report_written(&args.out, &files, json, &notes)?;
    Ok(Outcome::Success)
}
