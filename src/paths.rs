//! Paths as they really are. A path that guards data — a restore's target against the data
//! directory, a repository against the data it backs up — is compared only after every
//! symlink in it is resolved: `/srv/alias/main` may be the live data directory.

use std::path::{Component, Path, PathBuf};

/// `path` with every symlink resolved: its longest existing ancestor canonicalised, the rest
/// (not created yet) appended — `..` in that rest resolved lexically.
pub(crate) fn really(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// One of the two paths is the other or inside it, symlinks resolved.
pub(crate) fn overlap(a: &Path, b: &Path) -> bool {
    let (a, b) = (really(a), really(b));
    a.starts_with(&b) || b.starts_with(&a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_through_a_symlinked_parent_is_the_path_it_points_to() {
        let dir = std::env::temp_dir().join(format!("cabinet-paths-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let alias = dir.join("alias");
        let _ = std::fs::remove_file(&alias);
        std::os::unix::fs::symlink(&data, &alias).unwrap();
        assert_eq!(really(&alias.join("not-yet/../copy")), really(&data).join("copy"));
        assert!(overlap(&alias.join("copy"), &data));
        assert!(overlap(&data, &alias));
        assert!(!overlap(&dir.join("elsewhere"), &data));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
