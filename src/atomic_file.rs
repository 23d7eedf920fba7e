//! Files replaced whole: written under a temporary name in the target's directory and renamed
//! over the target only once complete, so nobody — a reader, a later import, a restarted
//! service — ever sees half a file. A process killed midway leaves only the hidden
//! `.NAME.cabinet-db-PID.partial` file behind, never a plausible but truncated `NAME`.

use std::{
    fs::{self, File},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// The permissions of ordinary output files (before the umask).
pub const PUBLIC_MODE: u32 = 0o666;
/// Files that hold secrets: readable and writable by their owner only, from creation on
/// (never chmod-ed after the fact).
pub const PRIVATE_MODE: u32 = 0o600;

/// A file being written; it becomes `target` on [`AtomicFile::commit`], and disappears if
/// dropped before that.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    partial: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    pub fn create(target: &Path, mode: u32) -> io::Result<AtomicFile> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", target.display()))
        })?;
        let partial = target.with_file_name(format!(
            ".{}.cabinet-db-{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&partial);
        let file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&partial)?;
        Ok(AtomicFile { target: target.to_owned(), partial, file: Some(file) })
    }

    /// Flushes the data to disk, then renames it over the target (and makes the rename
    /// durable).
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("only commit takes the file");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.partial, &self.target)?;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// Writes a secret to `path` (0600), replacing any earlier file whole.
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut file = AtomicFile::create(path, PRIVATE_MODE)?;
    file.write_all(contents.as_bytes())?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_a_dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old\n").unwrap();
        let mut file = AtomicFile::create(&target, PUBLIC_MODE).unwrap();
        file.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n", "the old file stays until commit");
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no partial file is left");

        let mut file = AtomicFile::create(&target, PUBLIC_MODE).unwrap();
        file.write_all(b"new\n").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
    }

    #[test]
    fn secrets_are_private_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role.password");
        write_private(&path, "s3cret\n").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
