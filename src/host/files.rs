//! The files `host apply` owns on a host: where each rendered file goes, what changing it
//! takes (a reload, a restart, loading the firewall, systemd's reload), its diff against what
//! is there, and installing it with the previous contents kept for a restore.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::HostError;
use crate::atomic_file::AtomicFile;

/// What a changed file needs before it is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Effect {
    /// pg_hba.conf and pg_ident.conf: checked by the server (`pg_hba_file_rules`), then a reload.
    ClientAuthentication,
    /// The conf.d drop-in: a reload, and a restart when the server says one is pending
    /// (`listen_addresses`, `port`).
    ServerSettings,
    /// The nftables table: loaded with `nft -f`.
    Firewall,
    /// A systemd unit or drop-in: `systemctl daemon-reload`.
    Systemd,
}

/// A file as the design has it.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) path: PathBuf,
    pub(crate) contents: String,
    /// Mode for a new file (an existing file keeps its owner and mode).
    pub(crate) mode: u32,
    /// Owner for a new file (uid, gid); `None` is root.
    pub(crate) owner: Option<(u32, u32)>,
    pub(crate) effect: Effect,
}

/// A file whose contents differ from the design.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Change {
    pub(crate) path: PathBuf,
    pub(crate) effect: Effect,
    /// A unified diff, the current file (or nothing) against the design.
    pub(crate) diff: String,
    #[serde(skip)]
    pub(crate) previous: Option<Vec<u8>>,
    #[serde(skip)]
    pub(crate) desired: Desired,
}

impl Desired {
    /// `None` when the file is already as designed.
    pub(crate) fn change(&self) -> Result<Option<Change>, HostError> {
        let previous = match std::fs::read(&self.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(HostError::File { path: self.path.clone(), source }),
        };
        if previous.as_deref() == Some(self.contents.as_bytes()) {
            return Ok(None);
        }
        let old = previous.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        let label = self.path.display().to_string();
        let diff = similar::TextDiff::from_lines(old.as_ref(), self.contents.as_str())
            .unified_diff()
            .context_radius(2)
            .header(if previous.is_some() { &label } else { "/dev/null" }, &label)
            .to_string();
        Ok(Some(Change {
            path: self.path.clone(),
            effect: self.effect,
            diff,
            previous,
            desired: self.clone(),
        }))
    }
}

impl Change {
    /// Replaces the file whole (never half-written), keeping an existing file's owner and mode.
    pub(crate) fn install(&self) -> Result<(), HostError> {
        let err = |source| HostError::File { path: self.path.clone(), source };
        let existing = std::fs::metadata(&self.path).ok();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mode = existing.as_ref().map_or(self.desired.mode, |m| m.permissions().mode() & 0o7777);
        let owner = existing.as_ref().map(|m| (m.uid(), m.gid())).or(self.desired.owner);
        let mut file = AtomicFile::create(&self.path, mode).map_err(err)?;
        std::io::Write::write_all(&mut file, self.desired.contents.as_bytes()).map_err(err)?;
        file.commit().map_err(err)?;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&self.path, Some(uid), Some(gid)).map_err(err)?;
        }
        Ok(())
    }

    /// Puts back what was there before [`Change::install`] (or removes a file that was not).
    pub(crate) fn restore(&self) -> Result<(), HostError> {
        let err = |source| HostError::File { path: self.path.clone(), source };
        match &self.previous {
            Some(bytes) => {
                // The owner and mode as they are now (install kept the original's), read before
                // the new file replaces this one.
                let now = std::fs::metadata(&self.path).map_err(err)?;
                let mut file =
                    AtomicFile::create(&self.path, now.permissions().mode() & 0o7777).map_err(err)?;
                std::io::Write::write_all(&mut file, bytes).map_err(err)?;
                file.commit().map_err(err)?;
                std::os::unix::fs::chown(&self.path, Some(now.uid()), Some(now.gid())).map_err(err)
            }
            None => std::fs::remove_file(&self.path).map_err(err),
        }
    }
}

/// Where the firewall table lives on a host (`cabinet-db-firewall.service` loads it at boot).
pub(crate) const FIREWALL_FILE: &str = "/etc/cabinet-db/nftables/cabinet-pg.nft";
/// The systemd drop-in that starts Debian's PostgreSQL units after Tailscale.
pub const POSTGRESQL_DROPIN: &str = "/etc/systemd/system/postgresql@.service.d/cabinet-db.conf";

/// The operator's own pg_hba rules, spliced in before the final rejects (a monitoring host, say).
pub(crate) fn local_hba_rules(etc: &Path) -> PathBuf {
    etc.join("pg_hba.local.conf")
}

/// The rendered pg_hba.conf with the operator's rules (if any) before its final rejects.
pub(crate) fn with_local_rules(rendered: &str, local: Option<(&Path, &str)>) -> String {
    let Some((path, rules)) = local else { return rendered.to_owned() };
    let marker = "\n# Everything else is refused outright";
    let (head, tail) = rendered.split_at(rendered.find(marker).unwrap_or(rendered.len()));
    let mut rules = rules.to_owned();
    if !rules.ends_with('\n') {
        rules.push('\n');
    }
    format!(
        "{head}\n# The operator's rules, from {} (host apply copies them here):\n{rules}{tail}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_rules_go_before_the_final_rejects() {
        let rendered = "local all postgres peer map=dba\n\n# Everything else is refused outright.\nhost all all 0.0.0.0/0 reject\n";
        let merged = with_local_rules(
            rendered,
            Some((
                Path::new("/etc/cabinet-db/pg_hba.local.conf"),
                "host cabinet cabinet_n8n 100.64.0.9/32 scram-sha-256",
            )),
        );
        let local = merged.find("100.64.0.9").unwrap();
        assert!(local < merged.find("0.0.0.0/0 reject").unwrap(), "{merged}");
        assert!(local > merged.find("map=dba").unwrap());
    }

    #[test]
    fn a_changed_file_shows_a_diff_and_restores_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg_hba.conf");
        std::fs::write(&path, "old rule\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let desired = Desired {
            path: path.clone(),
            contents: "new rule\n".into(),
            mode: 0o600,
            owner: None,
            effect: Effect::ClientAuthentication,
        };
        let change = desired.change().unwrap().unwrap();
        assert!(change.diff.contains("-old rule") && change.diff.contains("+new rule"), "{}", change.diff);
        change.install().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new rule\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640, "the mode is kept");
        assert!(desired.change().unwrap().is_none(), "as designed now");
        let owner = |p: &Path| {
            std::fs::metadata(p).map(|m| (m.uid(), m.gid(), m.permissions().mode() & 0o777)).unwrap()
        };
        std::os::unix::fs::chown(&path, Some(1), Some(1)).unwrap();
        let before = owner(&path);
        change.restore().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old rule\n");
        assert_eq!(owner(&path), before, "the owner and mode stay (PostgreSQL must read it)");
    }
}
