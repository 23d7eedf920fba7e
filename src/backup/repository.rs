//! The repositories a stanza writes to: a directory on this host (or a mounted one) and,
//! offsite, an S3-compatible bucket that is always encrypted.
//!
//! Every value here ends up in `pgbackrest.conf`, a line-based file that pgBackRest trusts
//! completely: each is checked so that none can end a line, start a section or carry a second
//! setting — a bucket name of `b\nrepo1-path=/etc` is refused, not written.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use super::BackupError;

/// Where an S3 repository keeps the stanza inside its bucket unless told otherwise.
pub const DEFAULT_S3_PATH: &str = "/cabinet-db";

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repo {
    /// A directory on this host (or a mounted one).
    Posix { path: PathBuf },
    /// A bucket on an S3-compatible service.
    S3(S3Repo),
    /// A directory on a second tailnet host, reached through its `pgbackrest server` (TLS).
    Remote { host: String, path: PathBuf },
}

impl Repo {
    /// For messages: `/var/lib/pgbackrest`, `s3://bucket/cabinet-db at s3.example.com`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Repo::Posix { path } => path.display().to_string(),
            Repo::S3(s3) => s3.to_string(),
            Repo::Remote { host, path } => format!("{} on {host} (pgBackRest TLS server)", path.display()),
        }
    }
}

/// How requests name the bucket: `bucket.host` (AWS) or `host/bucket` (most self-hosted
/// services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UriStyle {
    Host,
    Path,
}

/// An S3 bucket as pgBackRest reaches it (always over HTTPS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Repo {
    /// Host name of the service.
    pub(crate) endpoint: String,
    pub(crate) port: u16,
    pub(crate) bucket: String,
    pub(crate) region: String,
    /// The stanza's folder inside the bucket.
    pub(crate) path: String,
    pub(crate) uri_style: UriStyle,
    /// A CA bundle for a service whose certificate is not signed by a public authority.
    pub(crate) ca_file: Option<PathBuf>,
    /// `repo<N>-cipher-type=aes-256-cbc`: `backup setup` always writes it; a file edited by
    /// hand may not, and the audit fails then.
    pub(crate) encrypted: bool,
}

impl fmt::Display for S3Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}{} at {}", self.bucket, self.path, self.endpoint)?;
        if self.port != 443 {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// What `backup setup` was told about the offsite bucket, as given on the command line.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub path: String,
    pub uri_style: UriStyle,
    pub ca_file: Option<PathBuf>,
}

impl S3Repo {
    /// Checks each value; the error names the option, shows the value escaped and says what
    /// is allowed.
    pub fn from_options(options: &S3Options) -> Result<S3Repo, BackupError> {
        let (endpoint, port) = parse_endpoint(&options.endpoint)?;
        check_bucket(&options.bucket)?;
        if options.region.is_empty()
            || options.region.len() > 64
            || !options.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad(
                "--s3-region",
                &options.region,
                "a region is lowercase letters, digits and '-' (e.g. eu-central-1; self-hosted services often accept us-east-1)",
            ));
        }
        check_repo_path("--s3-path", &options.path)?;
        if let Some(ca) = &options.ca_file {
            check_config_path("--s3-ca-file", ca)?;
            if !ca.is_file() {
                return Err(bad("--s3-ca-file", &ca.display().to_string(), "no such file: give a PEM file"));
            }
        }
        Ok(S3Repo {
            endpoint,
            port,
            bucket: options.bucket.clone(),
            region: options.region.clone(),
            path: options.path.clone(),
            uri_style: options.uri_style,
            ca_file: options.ca_file.clone(),
            encrypted: true,
        })
    }
}

fn bad(option: &str, value: &str, why: &str) -> BackupError {
    BackupError::BadSetting { option: option.to_owned(), value: value.to_owned(), why: why.to_owned() }
}

/// `https://host[:port][/]` → (host, port). pgBackRest speaks only HTTPS to S3.
fn parse_endpoint(url: &str) -> Result<(String, u16), BackupError> {
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", _)) => {
            return Err(bad(
                "--s3-endpoint",
                url,
                "pgBackRest reaches S3 only over HTTPS: give https://… (put TLS in front of a plain-HTTP service)",
            ));
        }
        _ => {
            return Err(bad(
                "--s3-endpoint",
                url,
                "give a URL such as https://s3.eu-central-1.amazonaws.com",
            ));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("--s3-endpoint", url, "the port must be a number from 1 to 65535"))?;
            (host, port)
        }
        None => (authority, 443),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !host_ok {
        return Err(bad(
            "--s3-endpoint",
            url,
            "give https://HOST[:PORT] with a DNS host name (letters, digits, '-' and '.'), nothing after it",
        ));
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// S3's bucket naming rules (3–63 characters, lowercase letters, digits, '.', '-').
fn check_bucket(bucket: &str) -> Result<(), BackupError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(bad(
            "--s3-bucket",
            bucket,
            "a bucket name is 3 to 63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit",
        ))
    }
}

/// pgBackRest's rules for a repository path (absolute, no `//`, no trailing `/`), plus ours:
/// no character that could end the line it is written on.
pub(crate) fn check_repo_path(option: &str, path: &str) -> Result<(), BackupError> {
    let ok = path.starts_with('/')
        && (path == "/" || !path.ends_with('/'))
        && !path.contains("//")
        && path.chars().all(|c| !c.is_control())
        && path.trim() == path;
    if ok {
        Ok(())
    } else {
        Err(bad(
            option,
            path,
            "give an absolute path (starting with '/', no '//', no '/' at the end, no control characters or edge spaces)",
        ))
    }
}

/// A path written into `pgbackrest.conf` (data directory, repository, state, CA file).
pub(crate) fn check_config_path(option: &str, path: &Path) -> Result<(), BackupError> {
    match path.to_str() {
        Some(text) => check_repo_path(option, text),
        None => Err(bad(option, &path.display().to_string(), "the path must be valid UTF-8")),
    }
}

/// A size as pgBackRest reads it (`4GiB`, `64MiB`, `1073741824`), in bytes.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// The smallest archive queue allowed: one 16 MiB WAL segment. Below it pgBackRest would drop
/// WAL as soon as a single segment waits.
pub(crate) const MIN_ARCHIVE_QUEUE: u64 = 16 << 20;

/// Checks `--archive-queue-max`.
pub(crate) fn check_archive_queue_max(text: &str) -> Result<(), BackupError> {
    match parse_size(text) {
        Some(bytes) if bytes >= MIN_ARCHIVE_QUEUE => Ok(()),
        Some(_) => Err(bad(
            "--archive-queue-max",
            text,
            "at least 16MiB (one WAL segment): a smaller queue drops WAL as soon as one segment waits",
        )),
        None => {
            Err(bad("--archive-queue-max", text, "give a size such as 4GiB, 512MiB or a number of bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> S3Options {
        S3Options {
            endpoint: "https://s3.eu-central-1.amazonaws.com".into(),
            bucket: "cabinet-backups".into(),
            region: "eu-central-1".into(),
            path: DEFAULT_S3_PATH.into(),
            uri_style: UriStyle::Host,
            ca_file: None,
        }
    }

    #[test]
    fn a_valid_bucket_is_taken_with_its_port() {
        let repo = S3Repo::from_options(&options()).unwrap();
        assert_eq!((repo.endpoint.as_str(), repo.port), ("s3.eu-central-1.amazonaws.com", 443));
        assert!(repo.encrypted);
        let on_port =
            S3Repo::from_options(&S3Options { endpoint: "https://localhost:9443/".into(), ..options() })
                .unwrap();
        assert_eq!((on_port.endpoint.as_str(), on_port.port), ("localhost", 9443));
        assert_eq!(on_port.to_string(), "s3://cabinet-backups/cabinet-db at localhost:9443");
    }

    #[test]
    fn values_that_could_rewrite_the_configuration_are_refused() {
        let hostile = [
            S3Options { bucket: "b\nrepo1-path=/etc".into(), ..options() },
            S3Options { bucket: "B".into(), ..options() },
            S3Options { region: "eu\n[global]".into(), ..options() },
            S3Options { endpoint: "https://evil\n.example".into(), ..options() },
            S3Options { endpoint: "https://host/path".into(), ..options() },
            S3Options { endpoint: "http://host".into(), ..options() },
            S3Options { endpoint: "https://host:0".into(), ..options() },
            S3Options { endpoint: "https://host:99999".into(), ..options() },
            S3Options { path: "relative".into(), ..options() },
            S3Options { path: "/a//b".into(), ..options() },
            S3Options { path: "/a\nrepo1-cipher-type=none".into(), ..options() },
            S3Options { path: "/a\u{1b}[2J".into(), ..options() },
        ];
        for options in hostile {
            let err = S3Repo::from_options(&options).unwrap_err();
            assert!(matches!(err, BackupError::BadSetting { .. }), "{options:?}: {err}");
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.contains('\u{1b}'), "shown escaped: {text}");
        }
    }

    #[test]
    fn sizes_read_as_pgbackrest_reads_them() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("1073741824"), Some(1 << 30));
        assert_eq!(parse_size("4 GiB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999TiB"), None, "overflow");
        assert!(check_archive_queue_max("48MiB").is_ok());
        assert!(check_archive_queue_max("1MiB").is_err());
        assert!(check_archive_queue_max("4GiB\narchive-async=n").is_err());
    }
}
