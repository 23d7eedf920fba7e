//! Files that hold secrets: created 0600 from the start (never chmod-ed after the fact), and
//! replaced whole.

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// Writes `contents` to `path`, readable and writable by its owner only. An existing file is
/// replaced through a rename, so a reader never sees half a secret.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let _ = fs::remove_file(&partial);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    fs::rename(&partial, path)
}
