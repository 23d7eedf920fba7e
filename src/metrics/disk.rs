//! Free space of the filesystems that hold the data: the data directory's and each local
//! repository's (a repository on another host or in a bucket is measured there). A full data
//! directory stops the server; a full repository stops archiving, and then the data directory
//! fills with WAL.

use std::path::PathBuf;

use super::exposition::{Family, Kind};

/// What the filesystems at `paths` (label value, path) have: available to unprivileged users
/// and in all. A path that cannot be measured has no sample (and is logged).
pub(super) fn families(paths: &[(String, PathBuf)]) -> Vec<Family> {
    let mut avail = Family::new(
        "cabinet_filesystem_avail_bytes",
        "Bytes available to unprivileged users on the filesystem holding the data directory or a local repository.",
        Kind::Gauge,
    );
    let mut size = Family::new(
        "cabinet_filesystem_size_bytes",
        "Size of the filesystem holding the data directory or a local repository.",
        Kind::Gauge,
    );
    for (name, path) in paths {
        match nix::sys::statvfs::statvfs(path.as_path()) {
            Ok(fs) => {
                let block = fs.fragment_size() as f64;
                let labels = [("filesystem", name.as_str())];
                avail.push(&labels, fs.blocks_available() as f64 * block);
                size.push(&labels, fs.blocks() as f64 * block);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the filesystem could not be measured")
            }
        }
    }
    vec![avail, size]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_filesystem_has_room_and_a_missing_path_has_no_sample() {
        let dir = tempfile::tempdir().unwrap();
        let text = super::super::exposition::render(&families(&[
            ("data".to_owned(), dir.path().to_owned()),
            ("repo1".to_owned(), PathBuf::from("/nonexistent/cabinet")),
        ]));
        let avail: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("cabinet_filesystem_avail_bytes{filesystem=\"data\"} "))
            .expect(&text)
            .parse()
            .unwrap();
        assert!(avail > 0.0, "{text}");
        assert!(!text.contains("repo1"), "{text}");
    }
}
