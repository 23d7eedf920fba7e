use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::repo_host::{self, RepoHostOptions},
    cli::{
        backup::{setup::OffsiteArgs, tls::TlsArgs},
        outcome::Outcome,
        output,
        output::outln,
    },
};

#[derive(Debug, ClapArgs)]
#[command(after_help = "On the repository host, as root (the order on a new pair):
  1. cabinet-db backup setup-repo-host --db-host db.tail0123.ts.net --tls-listen 100.64.0.2 \\
       --tls-ca ca.crt --tls-cert backup.tail0123.ts.net.crt --tls-key backup.tail0123.ts.net.key
  2. start this host's pgBackRest server (cabinet-db-backup-server.service from `backup schedule`)
  3. on the database host: cabinet-db backup setup --repo-host backup.tail0123.ts.net --tls-…
     and start its server too
  4. here again: step 1 (it checks the whole chain), then cabinet-db backup run --type full

For a Patroni cluster, name every node: --db-host db1.tail0123.ts.net --db-host db2.tail0123.ts.net
(backups are then taken from a streaming standby when there is one).")]
pub(crate) struct Args {
    /// The database host, as this host reaches it (the name in its certificate); repeat it for
    /// each node of a Patroni cluster.
    #[arg(long, value_name = "HOST", required = true)]
    pub(crate) db_host: Vec<String>,
    /// The repository: a directory on this host.
    #[arg(long, default_value = "/var/lib/pgbackrest")]
    pub(crate) repo: PathBuf,
    /// Where pgBackRest keeps its logs, locks and spool here.
    #[arg(long, default_value = "/var/lib/cabinet-db/pgbackrest")]
    pub(crate) state_dir: PathBuf,
    /// The data directory on the database host: once for all, or once per --db-host, in order.
    #[arg(long, value_name = "PATH", default_value = "/var/lib/postgresql/15/main")]
    pub(crate) pg_path: Vec<PathBuf>,
    /// The server's port on the database host.
    #[arg(long, value_parser = crate::cli::args::parse_port, value_name = "PORT", default_value_t = 5432)]
    pub(crate) pg_port: u16,
    /// The server's socket directory on the database host: once for all, or once per --db-host.
    #[arg(long, value_name = "PATH", default_value = "/var/run/postgresql")]
    pub(crate) pg_socket: Vec<PathBuf>,
    /// The superuser pgBackRest connects as there (by peer, over the socket).
    #[arg(long, value_name = "ROLE", default_value = "postgres")]
    pub(crate) pg_user: String,
    /// The OS user that runs pgBackRest here and owns the repository.
    #[arg(long, value_name = "USER", default_value = "postgres")]
    pub(crate) os_user: String,
    /// Seconds pgBackRest waits on the other host when it makes no progress [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) io_timeout: Option<u32>,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    /// The same offsite bucket and passphrase as on the database host.
    #[command(flatten)]
    pub(crate) offsite: OffsiteArgs,
}

/// Exit 0 when the chain is checked from here; 1 when it is written but not yet checked.
pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let Some(tls) = args.tls.options()? else {
        anyhow::bail!(
            "a repository host needs --tls-ca, --tls-cert, --tls-key (cabinet-db backup certs makes them) and --tls-listen (this host's tailnet address). Nothing was changed"
        );
    };
    let report = repo_host::setup_repo_host(&RepoHostOptions {
        config_path: config.to_owned(),
        state_dir: args.state_dir,
        repo: args.repo,
        db_hosts: args.db_host.clone(),
        pg_paths: args.pg_path,
        pg_port: args.pg_port,
        pg_sockets: args.pg_socket,
        pg_user: args.pg_user,
        os_user: args.os_user,
        tls,
        io_timeout: args.io_timeout,
        offsite: args.offsite.offsite()?,
        remove_offsite: args.offsite.remove_offsite,
    })?;
    if json {
        output::print_json(&report)?;
    } else {
        outln!("wrote {} ({})", report.config.display(), report.pgbackrest_version)?;
        for (n, repo) in report.repos.iter().enumerate() {
            outln!("repo{}: {repo}", n + 1)?;
        }
        match &report.not_checked_because {
            None => outln!(
                "checked from here: WAL from {} arrives and backups can be taken; take the first with cabinet-db backup run --type full",
                args.db_host.join(", ")
            )?,
            Some(why) => outln!(
                "not checked yet: {why}\nStart this host's pgBackRest server, set up {} (cabinet-db backup setup --repo-host …) and start its server, then run this again",
                args.db_host.join(", ")
            )?,
        }
    }
    Ok(if report.checked { Outcome::Success } else { Outcome::CheckFailed })
}
