//! The `pgbackrest` program: one place that builds its command lines, runs it as the server's
//! OS user (it must own what it writes, and it connects by peer), captures its output, and
//! turns a failure into an error that says what to do.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{BackupError, STANZA, secrets::include_dir};
use crate::local_cluster::RunAs;

/// `pgbackrest` on `PATH`, as a path.
pub fn locate() -> Result<PathBuf, BackupError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("pgbackrest"))
        .find(|p| p.is_file())
        .ok_or(BackupError::NotInstalled)
}

/// What `program version` says, as (major, minor) and as printed.
pub fn version_of(program: &Path) -> Result<((u32, u32), String), BackupError> {
    let out = Command::new(program).arg("version").output().map_err(BackupError::Spawn)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let version = parse_version(&text)
        .ok_or_else(|| BackupError::Config(format!("cannot read pgBackRest's version from {text:?}")))?;
    Ok((version, text))
}

/// `pgBackRest 2.45` → (2, 45).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let number = text.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split(['.', 'd']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A way to run pgBackRest for our stanza.
#[derive(Debug, Clone)]
pub struct PgBackRest {
    pub(crate) program: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) run_as: RunAs,
}

/// What a successful run printed.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl PgBackRest {
    pub fn new(config: &Path, run_as: RunAs) -> Result<PgBackRest, BackupError> {
        Ok(PgBackRest { program: locate()?, config: config.to_owned(), run_as })
    }

    /// The installed version as (major, minor) and as printed.
    pub(crate) fn version(&self) -> Result<((u32, u32), String), BackupError> {
        version_of(&self.program)
    }

    /// `pgbackrest --config=… --config-include-path=… --stanza=cabinet <command> <args…>`, as
    /// the server's user.
    pub fn command(&self, command: &str, args: &[String]) -> Command {
        let mut cmd = self.run_as.command(&self.program);
        cmd.arg(format!("--config={}", self.config.display()))
            .arg(format!("--config-include-path={}", include_dir(&self.config).display()))
            .arg(format!("--stanza={STANZA}"))
            .arg(command)
            .args(args);
        cmd
    }

    /// Runs a command and fails with its message and a hint when it exits non-zero.
    pub fn run(&self, command: &str, args: &[String]) -> Result<RunOutput, BackupError> {
        tracing::debug!(command, ?args, "pgbackrest");
        let out = self.command(command, args).output().map_err(BackupError::Spawn)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(RunOutput { stdout, stderr });
        }
        let message = error_message(&stdout, &stderr);
        Err(BackupError::Tool {
            command: command.to_owned(),
            code: out.status.code().unwrap_or(-1),
            hint: hint_for(&message),
            message,
        })
    }

    /// `pgbackrest info --output=json`, parsed.
    pub fn info_json(&self) -> Result<serde_json::Value, BackupError> {
        let out = self.run("info", &["--output=json".to_owned()])?;
        serde_json::from_str(&out.stdout)
            .map_err(|source| BackupError::BadJson { command: "info".into(), source })
    }
}

/// pgBackRest's own `ERROR: [code]: …` lines, else the last lines it printed.
fn error_message(stdout: &str, stderr: &str) -> String {
    let text = format!("{stdout}\n{stderr}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR:")).map(str::trim).collect();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("; ")
}

/// What to do about the errors we know.
fn hint_for(message: &str) -> String {
    let hint = if message.contains("was not archived before the") || message.contains("archive_command") {
        "WAL archiving does not work: check the server's archive_command (cabinet-db backup setup sets it) and pg_stat_archiver.last_failed_wal; `cabinet-db audit` says more"
    } else if message.contains("VersionNotSupportedError") || message.contains("unexpected control version") {
        "this pgBackRest is too old for the server's PostgreSQL version"
    } else if message.contains("must be run on the repository host") {
        "backups of this server are taken on its repository host: run cabinet-db backup run there (its timers do)"
    } else if message.contains("access denied") {
        "the other host's pgBackRest server refused this host's certificate: each server admits only its peer's certificate name (tls-server-auth); issue it with cabinet-db backup certs --host <the name the other host uses for this one>"
    } else if message.contains("for greeting key 'version'") {
        "both hosts need the same pgBackRest version"
    } else if message.contains("certificate") || message.contains("TLS") || message.contains("SSL") {
        "the TLS handshake with the other host failed: both hosts need certificates from the same CA (cabinet-db backup certs), each named as the other host reaches it"
    } else if message.contains("HostConnectError") || message.contains("unable to connect to '") {
        "the other host's pgBackRest server is not reachable: start cabinet-db-backup-server.service there (from `cabinet-db backup schedule`) and check the host name, its tailnet address and --tls-port"
    } else if message.contains("unable to find primary cluster") || message.contains("connect") {
        "pgBackRest connects to the server over its unix socket as the bootstrap superuser by peer: pg_hba.conf needs `local all postgres peer` (or the cluster's superuser), and the server must run"
    } else if message.contains("[055]") || message.contains("does not exist") {
        "the stanza is not set up: run cabinet-db backup setup"
    } else if message.contains("[050]") || message.contains("lock") {
        "another pgBackRest command holds the lock for this stanza: wait for it"
    } else {
        ""
    };
    if hint.is_empty() { String::new() } else { format!("\nhint: {hint}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read() {
        assert_eq!(parse_version("pgBackRest 2.45"), Some((2, 45)));
        assert_eq!(parse_version("pgBackRest 2.55.1"), Some((2, 55)));
        assert_eq!(parse_version("pgBackRest 2.56dev"), Some((2, 56)));
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn errors_keep_pgbackrests_own_lines() {
        let out = "P00   INFO: backup command begin\nP00  ERROR: [082]: WAL segment 000000010000000000000003 was not archived before the 60000ms timeout\n";
        let message = error_message(out, "");
        assert!(message.starts_with("P00  ERROR: [082]"), "{message}");
        assert!(hint_for(&message).contains("WAL archiving does not work"));
    }
}
