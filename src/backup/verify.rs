//! `backup verify`: pgBackRest's `verify` re-reads every file of every backup and the WAL
//! archive against their checksums. It exits 0 even when it finds damage (upstream issue
//! #2502), naming a damaged file only in an INFO line — so its output is read here, and damage
//! is a failure that names each file.

use std::path::Path;

use serde::Serialize;

use super::{BackupError, run::pgbackrest_for};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Nothing damaged or missing.
    pub ok: bool,
    /// Files whose checksum does not match, as pgBackRest names them (`<backup>/pg_data/…`).
    pub damaged: Vec<String>,
    /// pgBackRest's own summary (`status: …`, per backup and archive).
    pub summary: String,
}

pub fn verify(config_path: &Path) -> Result<VerifyReport, BackupError> {
    let pgbackrest = pgbackrest_for(config_path)?;
    let out = pgbackrest.run("verify", &["--log-level-console=info".to_owned()])?;
    Ok(read_output(&format!("{}\n{}", out.stdout, out.stderr)))
}

fn read_output(text: &str) -> VerifyReport {
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
    VerifyReport { ok: damaged.is_empty() && !status_error, damaged, summary: summary.join("\n") }
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
        let report = read_output(text);
        assert!(!report.ok);
        assert_eq!(report.damaged, vec!["20261127-123027F/pg_data/base/5/2655.gz"]);
        assert!(report.summary.contains("checksum invalid: 1"), "{}", report.summary);
        let clean = read_output(
            "P00   INFO: stanza: cabinet\n    status: ok\nP00   INFO: verify command end: completed successfully",
        );
        assert!(clean.ok, "{clean:?}");
    }
}
