use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use crate::{
    backup::{
        repository::{DEFAULT_S3_PATH, Repo, S3Options, S3Repo, UriStyle},
        secrets::{CipherPass, S3Credentials},
        setup::{self, Offsite, SetupOptions},
    },
    cli::{args::ConnectionArgs, backup::tls::TlsArgs, outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    #[command(flatten)]
    pub(crate) repository: RepositoryArgs,
}

/// Where backups go and how pgBackRest gets there (shared with `host apply`).
#[derive(Debug, ClapArgs)]
pub(crate) struct RepositoryArgs {
    /// The first repository: a directory on this host (or a mounted one); with --repo-host,
    /// the directory on that host.
    #[arg(long, env = "CABINET_BACKUP_REPO", default_value = "/var/lib/pgbackrest")]
    pub(crate) repo: PathBuf,
    /// Keep the repository on a second tailnet host instead (set it up there first with
    /// `backup setup-repo-host`); needs the --tls-… options. Backups then run on that host.
    #[arg(long, value_name = "HOST", env = "CABINET_BACKUP_REPO_HOST", requires_all = ["tls_ca", "tls_cert", "tls_key", "tls_listen"])]
    pub(crate) repo_host: Option<String>,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    /// Where pgBackRest keeps its logs, locks and archive spool.
    #[arg(long, env = "CABINET_BACKUP_STATE_DIR", default_value = "/var/lib/cabinet-db/pgbackrest")]
    pub(crate) state_dir: PathBuf,
    /// WAL that may wait for an unreachable repository before pgBackRest drops it (the
    /// primary's disk never fills; point-in-time recovery across the dropped WAL is lost).
    #[arg(long, value_name = "SIZE", default_value = "4GiB")]
    pub(crate) archive_queue_max: String,
    /// Seconds pgBackRest waits on a repository that makes no progress (also how long one
    /// attempt to push WAL to an unreachable repository lasts) [default: pgBackRest's, 60].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) io_timeout: Option<u32>,
    #[command(flatten)]
    pub(crate) offsite: OffsiteArgs,
}

/// The offsite repository: an S3-compatible bucket, always encrypted. Credentials come from
/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
#[derive(Debug, ClapArgs)]
pub(crate) struct OffsiteArgs {
    /// The service, over HTTPS: e.g. `https://s3.eu-central-1.amazonaws.com`.
    #[arg(long, value_name = "URL", env = "CABINET_BACKUP_S3_ENDPOINT", requires_all = ["s3_bucket", "s3_region", "cipher_pass_file"])]
    pub(crate) s3_endpoint: Option<String>,
    #[arg(long, value_name = "BUCKET", env = "CABINET_BACKUP_S3_BUCKET", requires = "s3_endpoint")]
    pub(crate) s3_bucket: Option<String>,
    #[arg(long, value_name = "REGION", env = "CABINET_BACKUP_S3_REGION", requires = "s3_endpoint")]
    pub(crate) s3_region: Option<String>,
    /// The stanza's folder inside the bucket.
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_S3_PATH", default_value = DEFAULT_S3_PATH, requires = "s3_endpoint")]
    pub(crate) s3_path: String,
    /// `host` (bucket.endpoint, as AWS) or `path` (endpoint/bucket, most self-hosted services).
    #[arg(
        long,
        value_enum,
        env = "CABINET_BACKUP_S3_URI_STYLE",
        default_value = "host",
        requires = "s3_endpoint"
    )]
    pub(crate) s3_uri_style: UriStyle,
    /// CA certificates (PEM) for a service whose certificate no public authority signed.
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_S3_CA_FILE", requires = "s3_endpoint")]
    pub(crate) s3_ca_file: Option<PathBuf>,
    /// The passphrase that encrypts the offsite repository: a file only its owner can read
    /// (chmod 600). Keep a copy away from this host: without it the offsite backups are lost.
    #[arg(long, value_name = "PATH", env = "CABINET_BACKUP_CIPHER_PASS_FILE", requires = "s3_endpoint")]
    pub(crate) cipher_pass_file: Option<PathBuf>,
    /// Stop copying offsite (the bucket's contents stay where they are).
    #[arg(long, conflicts_with = "s3_endpoint")]
    pub(crate) remove_offsite: bool,
}

impl OffsiteArgs {
    pub(super) fn offsite(&self) -> anyhow::Result<Option<Offsite>> {
        if self.remove_offsite {
            return Ok(None);
        }
        let parts = [
            ("--s3-endpoint", self.s3_endpoint.is_some()),
            ("--s3-bucket", self.s3_bucket.is_some()),
            ("--s3-region", self.s3_region.is_some()),
            ("--cipher-pass-file", self.cipher_pass_file.is_some()),
        ];
        let (Some(endpoint), Some(bucket), Some(region), Some(pass_file)) =
            (&self.s3_endpoint, &self.s3_bucket, &self.s3_region, &self.cipher_pass_file)
        else {
            // clap checks these together on the command line; from the configuration file or
            // the environment a half-given offsite repository comes here, and must not be
            // silently dropped.
            let missing: Vec<&str> =
                parts.iter().filter(|(_, given)| !given).map(|(name, _)| *name).collect();
            if missing.len() < parts.len() {
                anyhow::bail!(
                    "the offsite repository also needs {} (as options, or backup.s3_… keys in the configuration file). Nothing was changed",
                    missing.join(", ")
                );
            }
            return Ok(None);
        };
        let repo = S3Repo::from_options(&S3Options {
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            region: region.clone(),
            path: self.s3_path.clone(),
            uri_style: self.s3_uri_style,
            ca_file: self.s3_ca_file.clone(),
        })?;
        Ok(Some(Offsite {
            repo,
            credentials: S3Credentials::from_env()?,
            cipher_pass: CipherPass::from_file(pass_file)?,
        }))
    }
}

/// Exit 0 when backups work end to end (on a standby: when it is ready to archive once it
/// leads); 1 when the server must restart first (archive_mode).
impl RepositoryArgs {
    /// The setup's options, with pgBackRest's configuration at `config`.
    pub(crate) fn options(&self, config: &Path) -> anyhow::Result<SetupOptions> {
        Ok(SetupOptions {
            config_path: config.to_owned(),
            state_dir: self.state_dir.clone(),
            local: match &self.repo_host {
                Some(_) if self.tls.options()?.is_none() => anyhow::bail!(
                    "a repository host needs the --tls-ca, --tls-cert, --tls-key and --tls-listen options \
                     (or backup.tls_… keys in the configuration file). Nothing was changed"
                ),
                Some(host) => Repo::Remote { host: host.clone(), path: self.repo.clone() },
                None => Repo::Posix { path: self.repo.clone() },
            },
            tls: self.tls.options()?,
            offsite: self.offsite.offsite()?,
            remove_offsite: self.offsite.remove_offsite,
            archive_queue_max: Some(self.archive_queue_max.clone()),
            io_timeout: self.io_timeout,
        })
    }
}

pub(crate) async fn run(args: Args, config: &Path, json: bool) -> anyhow::Result<Outcome> {
    let options = args.repository.options(config)?;
    let report = setup::setup(args.connection.url()?, &options).await?;
    if json {
        output::print_json(&report)?;
    } else {
        outln!("wrote {} ({})", report.config.display(), report.pgbackrest_version)?;
        for (n, repo) in report.repos.iter().enumerate() {
            outln!("repo{}: {repo}", n + 1)?;
        }
        for change in &report.changed {
            outln!("set {change}")?;
        }
        if report.standby && !report.restart_needed {
            outln!(
                "a standby: it archives once it leads (the rendered patroni.yml already sets archiving); stanza-create and check run on the leader and on the repository host. Keep this host's pgBackRest server running"
            )?;
        } else if report.restart_needed {
            outln!(
                "archive_mode takes effect at a restart: restart PostgreSQL (e.g. sudo systemctl restart postgresql@15-main), then run cabinet-db backup setup again"
            )?;
        } else if let Some(host) = &report.repo_host {
            outln!(
                "stanza checked: WAL reaches {host}. Keep this host's pgBackRest server running (cabinet-db-backup-server.service from `backup schedule`): {host} takes the backups through it, with cabinet-db backup run there"
            )?;
        } else {
            outln!(
                "stanza checked: WAL archiving and backups work; take the first with cabinet-db backup run"
            )?;
        }
    }
    let ready = report.checked || (report.standby && !report.restart_needed);
    Ok(if ready { Outcome::Success } else { Outcome::CheckFailed })
}
