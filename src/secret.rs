//! Secrets cabinet-db is given — passwords, a repository's passphrase, TLS private keys. A file
//! that holds one is used only when private to its owner: a regular file, no permission for its
//! group or others (a secret others could read has already leaked), owned by the user reading
//! it or by root (one another user owns, that user can swap).

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why a file may not hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotPrivate {
    #[error("cannot read it ({0})")]
    Unreadable(#[source] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error(
        "the file is readable by others (mode {mode:03o}); a secret there may already have leaked. Run chmod 600 {}",
        .path.display()
    )]
    Readable { mode: u32, path: PathBuf },
    #[error("the file belongs to uid {uid}, neither you nor root")]
    ForeignOwner { uid: u32 },
}

/// Whether `path` is private to its owner, and that owner is the caller or root.
pub fn private_file(path: &Path) -> Result<(), NotPrivate> {
    let meta = std::fs::metadata(path).map_err(NotPrivate::Unreadable)?;
    if !meta.is_file() {
        return Err(NotPrivate::NotAFile);
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NotPrivate::Readable { mode, path: path.to_owned() });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(NotPrivate::ForeignOwner { uid: meta.uid() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_of_mode_0600_or_stricter_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s").unwrap();
        for (mode, private) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(private_file(&path).is_ok(), private, "mode {mode:o}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let readable = private_file(&path).unwrap_err().to_string();
        assert!(
            readable.contains("readable by others (mode 640)") && readable.contains("chmod 600"),
            "{readable}"
        );
        assert!(matches!(private_file(dir.path()), Err(NotPrivate::NotAFile)));
        assert!(matches!(private_file(&dir.path().join("absent")), Err(NotPrivate::Unreadable(_))));
    }
}
