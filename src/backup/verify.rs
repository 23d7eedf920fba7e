//! `backup verify`: pgBackRest's `verify` re-reads every file of every backup and the WAL
//! archive of a repository against their checksums, each repository in turn. It exits 0 even
//! when it finds damage (upstream issue #2502), naming a damaged file only in an INFO line, and
//! lists holes in the WAL archive without calling them errors — so its output is read here:
//! damage is a failure that names each file, and a hole that stops a restore short of the
//! present is a failure that says point-in-time recovery across it is lost.

use std::path::Path;

use serde::Serialize;

use super::{
    BackupError,
    archive::{self, WalGap},
    catalog::Catalog,
    config::BackupConfig,
    run::pgbackrest_for,
};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyReport {
    /// Nothing damaged, and every repository's WAL reaches the present from its newest backup.
    pub(crate) ok: bool,
    /// Each repository's result.
    pub(crate) repos: Vec<RepoVerified>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RepoVerified {
    pub(crate) repo: u32,
    /// Nothing damaged or missing in this repository.
    pub(crate) ok: bool,
    /// Files whose checksum does not match, as pgBackRest names them (`<backup>/pg_data/…`).
    pub(crate) damaged: Vec<String>,
    /// Holes in the WAL archive; one not behind the newest backup fails the verification.
    pub(crate) gaps: Vec<WalGap>,
    /// pgBackRest's own summary (`status: …`, per backup and archive).
    pub(crate) summary: String,
}

impl RepoVerified {
    /// Each thing found wrong, one line each.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> =
            self.damaged.iter().map(|file| format!("repo{}: damaged: {file}", self.repo)).collect();
        if self.damaged.is_empty() && !self.ok && self.gaps.iter().all(|g| g.behind_newest_backup) {
            problems.push(format!("repo{}: pgBackRest verify found damage:\n{}", self.repo, self.summary));
        }
        problems.extend(self.gaps.iter().filter(|g| !g.behind_newest_backup).map(WalGap::explain));
        problems
    }
}

/// Verifies one repository, or each.
pub(crate) fn verify(config_path: &Path, only: Option<u32>) -> Result<VerifyReport, BackupError> {
    let pgbackrest = pgbackrest_for(config_path)?;
    let config = BackupConfig::read(config_path)?;
    // A repository on another host is verified there. Measured with Debian's 2.45: verify
    // through the TLS server makes the remote process segfault on the first archived segment
    // it opens (the kernel logs it); on the repository host, where the files are local, it
    // works. Without --repo the others (the offsite bucket) are verified from here.
    let numbers: Vec<u32> =
        config.repo_numbers(only)?.into_iter().filter(|n| !config.is_remote(*n)).collect();
    if numbers.is_empty() {
        let host = config.repo_host().unwrap_or_default();
        return Err(BackupError::Config(format!(
            "the repository is on {host}: run cabinet-db backup verify there (pgBackRest verifies a repository on the host that holds it)"
        )));
    }
    let catalog = Catalog::from_info(&pgbackrest.info_json()?);
    let mut repos = Vec::new();
    for repo in numbers {
        let out =
            pgbackrest.run("verify", &[format!("--repo={repo}"), "--log-level-console=detail".to_owned()])?;
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let (damaged, summary, status_error) = read_output(&text);
        let gaps = archive::gaps(&archive::runs_from_verify(repo, &text), &catalog);
        let ok = damaged.is_empty() && !status_error && gaps.iter().all(|g| g.behind_newest_backup);
        repos.push(RepoVerified { repo, ok, damaged, gaps, summary });
    }
    Ok(VerifyReport { ok: repos.iter().all(|r| r.ok), repos })
}

/// The damaged files, pgBackRest's summary, and whether it says `status: error`.
fn read_output(text: &str) -> (Vec<String>, String, bool) {
    let mut damaged = Vec::new();
    let mut summary = Vec::new();
    let mut in_summary = false;
    for line in text.lines() {
        if let Some((_, rest)) = line.split_once("INFO: invalid checksum '")
            && let Some(file) = rest.strip_suffix('\'')
        {
            damaged.push(file.to_owned());
        } else if line.contains("INFO: invalid") || line.contains("INFO: missing") {
            damaged.push(line.split_once("INFO: ").map_or(line, |(_, r)| r).to_owned());
        }
        if line.contains("INFO: stanza:") {
            in_summary = true;
        } else if in_summary && line.contains("INFO: verify command end") {
            in_summary = false;
        }
        if in_summary {
            summary.push(line.split_once("INFO: ").map_or(line.trim(), |(_, r)| r).trim().to_owned());
        }
    }
    let status_error =
        summary.iter().any(|l| l.starts_with("status: error") || l.contains("status: invalid"));
    (damaged, summary.join("\n"), status_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_read_from_the_info_lines_although_verify_exits_0() {
        let text = "2026-11-27 12:35:33.853 P00   INFO: verify command begin 2.45: --stanza=cabinet
2026-11-27 12:35:34.149 P01   INFO: invalid checksum '20261127-123027F/pg_data/base/5/2655.gz'
2026-11-27 12:35:34.277 P00   INFO: stanza: cabinet
                                    status: error
                                      backup: 20261127-123027F, status: invalid, total files checked: 1278, total valid files: 1277
                                        checksum invalid: 1
2026-11-27 12:35:34.277 P00   INFO: verify command end: completed successfully (425ms)";
        let (damaged, summary, status_error) = read_output(text);
        assert!(status_error);
        assert_eq!(damaged, vec!["20261127-123027F/pg_data/base/5/2655.gz"]);
        assert!(summary.contains("checksum invalid: 1"), "{summary}");
        let (damaged, _, status_error) = read_output(
            "P00   INFO: stanza: cabinet\n    status: ok\nP00   INFO: verify command end: completed successfully",
        );
        assert!(damaged.is_empty() && !status_error);
    }
}
