//! Secrets cabinet-db is given — passwords, a repository's passphrase, TLS private keys. A file
//! that holds one is used only when private to its owner: a regular file, no permission for its
//! group or others (a secret others could read has already leaked), owned by the user reading
//! it or by root (one another user owns, that user can swap). The text of one is one line of
//! printable ASCII, long enough for what it guards.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why a file may not hold a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotPrivate {
    #[error("cannot read it ({0})")]
    Unreadable(#[source] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("it is longer than {max_bytes} bytes: not a file this option takes")]
    TooLong { max_bytes: u64 },
    #[error(
        "the file is readable by its group or others (mode {mode:03o}); a secret there may already have leaked. Run chmod 600 {}",
        .path.display()
    )]
    Readable { mode: u32, path: PathBuf },
    #[error("the file belongs to uid {uid}, neither you nor root")]
    ForeignOwner { uid: u32 },
}

/// The longest secret file read: keys and passphrases are a few kilobytes at most.
const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// The text of a file that holds a secret, read only when it is private to its owner and that
/// owner is the caller or root. The checks and the read are made on one open file, so a file
/// swapped in between is never read.
pub(crate) fn read_private(path: &Path) -> Result<String, NotPrivate> {
    let file = open_without_waiting(path)?;
    let meta = file.metadata().map_err(NotPrivate::Unreadable)?;
    check_private(&meta, path)?;
    read_whole(file, MAX_SECRET_BYTES)
}

/// A small regular file that holds no secret (a certificate): read whole, at most `max_bytes`,
/// never a FIFO or a device that would wait or never end.
pub(crate) fn read_regular(path: &Path, max_bytes: u64) -> Result<String, NotPrivate> {
    let file = open_without_waiting(path)?;
    if !file.metadata().map_err(NotPrivate::Unreadable)?.is_file() {
        return Err(NotPrivate::NotAFile);
    }
    read_whole(file, max_bytes)
}

/// Opened without blocking: a FIFO would otherwise wait for a writer before any check runs.
fn open_without_waiting(path: &Path) -> Result<std::fs::File, NotPrivate> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(NotPrivate::Unreadable)
}

/// The file's text, refused when longer than `max_bytes` (never cut short: a cut secret or
/// certificate would be taken for another one).
fn read_whole(file: std::fs::File, max_bytes: u64) -> Result<String, NotPrivate> {
    use std::io::Read;
    let mut text = String::new();
    file.take(max_bytes + 1).read_to_string(&mut text).map_err(NotPrivate::Unreadable)?;
    if text.len() as u64 > max_bytes {
        return Err(NotPrivate::TooLong { max_bytes });
    }
    Ok(text)
}

fn check_private(meta: &std::fs::Metadata, path: &Path) -> Result<(), NotPrivate> {
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

/// The longest secret text taken: far beyond any password or passphrase a person or generator
/// makes, short of what a mistaken file (a key, a log) would be.
const MAX_SECRET_CHARS: usize = 1024;

/// Why a text may not be a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadText {
    #[error("it is shorter than {min_chars} characters")]
    Short { min_chars: usize },
    #[error("it must be one line of printable ASCII characters without spaces")]
    NotPrintable,
    #[error("it is longer than {MAX_SECRET_CHARS} characters")]
    Long,
}

/// A secret given as text, its line end removed: at least `min_chars` characters, each printable
/// ASCII. No space or second line (it is written into configuration lines); no other
/// characters (PostgreSQL passes them through SASLprep, which clients apply inconsistently).
pub(crate) fn text(text: &str, min_chars: usize) -> Result<&str, BadText> {
    let text = text.trim_end_matches(['\n', '\r']);
    if text.chars().count() < min_chars {
        Err(BadText::Short { min_chars })
    } else if text.len() > MAX_SECRET_CHARS {
        Err(BadText::Long)
    } else if !text.chars().all(|c| c.is_ascii_graphic()) {
        Err(BadText::NotPrintable)
    } else {
        Ok(text)
    }
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
            assert_eq!(read_private(&path).is_ok(), private, "mode {mode:o}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let readable = read_private(&path).unwrap_err().to_string();
        assert!(
            readable.contains("readable by its group or others (mode 640)") && readable.contains("chmod 600"),
            "{readable}"
        );
        assert!(matches!(read_private(dir.path()), Err(NotPrivate::NotAFile)));
        assert!(matches!(read_private(&dir.path().join("absent")), Err(NotPrivate::Unreadable(_))));
    }

    #[test]
    fn a_secret_text_is_one_long_enough_line_of_printable_ascii() {
        assert_eq!(text("k3J9x2Qp7Lm4\r\n", 12).unwrap(), "k3J9x2Qp7Lm4");
        assert!(matches!(text("short\n", 12), Err(BadText::Short { min_chars: 12 })));
        for bad in ["k3J9x2 Qp7Lm4", "k3J9x2Qp7Lm4\nrepo1-cipher-type=none", "päßwörd-päßwörd"] {
            assert!(matches!(text(bad, 12), Err(BadText::NotPrintable)), "{bad:?}");
        }
    }

    #[test]
    fn a_fifo_is_refused_at_once_and_a_long_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No writer ever comes: a blocking open would wait here for ever.
        assert!(matches!(read_private(&fifo), Err(NotPrivate::NotAFile)));
        assert!(matches!(read_regular(&fifo, 10), Err(NotPrivate::NotAFile)));
        let long = dir.path().join("long");
        std::fs::write(&long, vec![b'a'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        std::fs::set_permissions(&long, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(read_private(&long), Err(NotPrivate::TooLong { .. })));
        assert!(matches!(text(&"a".repeat(MAX_SECRET_CHARS + 1), 16), Err(BadText::Long)));
        assert_eq!(text(&"a".repeat(MAX_SECRET_CHARS), 16).map(str::len).ok(), Some(MAX_SECRET_CHARS));
    }
}
