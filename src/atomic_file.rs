//! Every file cabinet-db writes, written as meant:
//!
//! - a regular file (or a new one) is replaced whole: written under a hidden temporary name in
//!   its directory, private (0600) while it is written, given its mode and renamed over the
//!   target only once complete (a new file's mode is the intended one under the umask; a
//!   replaced file keeps its own mode, never widened — an export over a 0600 file stays 0600 —,
//!   and, when root replaces it, its owner) — nobody ever sees half a file or reads one they should not;
//!   a process killed midway leaves only its private `.NAME.cabinet-db-PID.partial`, which the
//!   next write of that file removes;
//! - a FIFO, a character device, `-` and `/dev/stdout` are written into (the open descriptor
//!   for the last two, whatever it resolves to): there is nothing to replace;
//! - a symlink is followed and its target replaced whole (the link stays) — as root only links
//!   owned by root or by the caller, so a link planted in a shared directory cannot aim a root
//!   command at another file;
//! - anything else (a directory, a socket, a block device) is refused, naming it.

use std::{
    fs::{self, File},
    io::{self, Write},
    os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// The permissions of ordinary output files (before the umask).
pub(crate) const PUBLIC_MODE: u32 = 0o666;
/// Files that hold secrets: readable and writable by their owner only, from creation on
/// (never chmod-ed after the fact).
pub(crate) const PRIVATE_MODE: u32 = 0o600;

/// How many symlinks are followed before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// A file being written; it becomes `target` on [`AtomicFile::commit`], and disappears if
/// dropped before that.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    sink: Sink,
    file: Option<File>,
}

#[derive(Debug)]
enum Sink {
    /// Renamed over `target` with `mode` (and, as root, the replaced file's owner) on commit.
    Replace { target: PathBuf, partial: PathBuf, mode: u32, owner: Option<(u32, u32)> },
    /// Written into: a FIFO, a device, standard output.
    Stream,
}

/// What a path given for output is, once its symlinks are followed.
enum Destination {
    Replace(PathBuf),
    Stream(PathBuf),
    StandardOutput,
}

fn refused(path: &Path, why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {why}", path.display()))
}

/// As root, a directory on the way that is a symlink someone else owns is refused like a
/// final one: a link planted in a shared directory (`/tmp/x -> /etc`) must not aim a root
/// command at `/etc/<name>` either. Each directory is judged as reached, links resolved.
fn refuse_foreign_links_above(path: &Path, me: u32) -> io::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(()) };
    let mut pending: Vec<std::ffi::OsString> =
        parent.components().rev().map(|c| c.as_os_str().to_owned()).collect();
    let mut reached = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        let next = reached.join(&part);
        match fs::symlink_metadata(&next) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                if metadata.uid() != 0 && metadata.uid() != me {
                    return Err(refused(
                        &next,
                        format!(
                            "a symlink owned by uid {} on the way to the file: run as root, cabinet-db follows only links owned by root or by itself; give a path without it",
                            metadata.uid()
                        ),
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(refused(
                        path,
                        format!("more than {MAX_LINKS} symlinks; give the file's path"),
                    ));
                }
                let link = fs::read_link(&next)?;
                if link.is_absolute() {
                    reached = PathBuf::new();
                }
                pending.extend(link.components().rev().map(|c| c.as_os_str().to_owned()));
            }
            // Not there (yet): nothing further down can be a link.
            Err(_) => return Ok(()),
            Ok(_) => reached = next,
        }
    }
    Ok(())
}

fn resolve(target: &Path) -> io::Result<Destination> {
    if target == Path::new("-") || target == Path::new("/dev/stdout") {
        return Ok(Destination::StandardOutput);
    }
    let root = nix::unistd::geteuid().is_root();
    let me = nix::unistd::geteuid().as_raw();
    let mut path = target.to_owned();
    for _ in 0..MAX_LINKS {
        if root {
            refuse_foreign_links_above(&path, me)?;
        }
        let metadata = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Replace(path)),
            Err(e) => return Err(e),
            Ok(metadata) => metadata,
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            if root && metadata.uid() != 0 && metadata.uid() != me {
                return Err(refused(
                    &path,
                    format!(
                        "a symlink owned by uid {}: run as root, cabinet-db follows only links owned by root or by itself (a link planted in a shared directory could aim it at any file); write to the link's target directly",
                        metadata.uid()
                    ),
                ));
            }
            let link = fs::read_link(&path)?;
            path = match path.parent() {
                Some(dir) if link.is_relative() => dir.join(link),
                _ => link,
            };
        } else if kind.is_file() {
            return Ok(Destination::Replace(path));
        } else if kind.is_fifo() || kind.is_char_device() {
            return Ok(Destination::Stream(path));
        } else {
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() {
                "a block device"
            } else {
                "not a regular file"
            };
            return Err(refused(&path, format!("is {what}; give the path of a file to write")));
        }
    }
    Err(refused(target, format!("more than {MAX_LINKS} symlinks in a row; give the file's path")))
}

impl AtomicFile {
    pub(crate) fn create(target: &Path, mode: u32) -> io::Result<AtomicFile> {
        match resolve(target)? {
            Destination::StandardOutput => {
                // The open descriptor itself (a pipe, a terminal, a file the shell opened).
                let stdout = io::stdout().lock();
                let fd = std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned()?;
                Ok(AtomicFile { sink: Sink::Stream, file: Some(File::from(fd)) })
            }
            Destination::Stream(path) => {
                let file = fs::OpenOptions::new().write(true).open(path)?;
                Ok(AtomicFile { sink: Sink::Stream, file: Some(file) })
            }
            Destination::Replace(target) => {
                let name = target.file_name().ok_or_else(|| refused(&target, "names no file".to_owned()))?;
                let name = name.to_string_lossy().into_owned();
                sweep_partials(&target, &name);
                let partial =
                    target.with_file_name(format!(".{name}.cabinet-db-{}.partial", std::process::id()));
                let _ = fs::remove_file(&partial);
                // Private while it is written; the intended mode comes just before the rename.
                let file =
                    fs::OpenOptions::new().write(true).create_new(true).mode(PRIVATE_MODE).open(&partial)?;
                let (mode, owner) = match fs::metadata(&target) {
                    // What replaces a file is no more readable than it was, and stays whose it was.
                    Ok(existing) => {
                        let owner =
                            nix::unistd::geteuid().is_root().then(|| (existing.uid(), existing.gid()));
                        (existing.mode() & mode & 0o777, owner)
                    }
                    Err(_) => (mode & !umask(), None),
                };
                Ok(AtomicFile { sink: Sink::Replace { target, partial, mode, owner }, file: Some(file) })
            }
        }
    }

    /// Flushes the data to disk, then renames it over the target (and makes the rename
    /// durable); for a stream, flushes it.
    pub(crate) fn commit(mut self) -> io::Result<()> {
        let mut file = self.file.take().expect("only commit takes the file");
        match &self.sink {
            Sink::Stream => file.flush(),
            Sink::Replace { target, partial, mode, owner } => {
                file.sync_all()?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::fchown(&file, Some(*uid), Some(*gid))?;
                }
                file.set_permissions(fs::Permissions::from_mode(*mode))?;
                drop(file);
                fs::rename(partial, target)?;
                if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                Ok(())
            }
        }
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }
}

/// This process's umask, read without changing it (`umask(2)` can only set it, for every
/// thread at once).
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Removes what killed writers of `target` left: their `.NAME.cabinet-db-PID.partial`, when
/// that process is gone.
fn sweep_partials(target: &Path, name: &str) {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.cabinet-db-");
    let Ok(entries) = fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".partial")) else {
            continue;
        };
        let alive = pid.parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
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
        if self.file.take().is_some()
            && let Sink::Replace { partial, .. } = &self.sink
        {
            let _ = fs::remove_file(partial);
        }
    }
}

/// Writes a secret to `path` (0600), replacing any earlier file whole.
pub(crate) fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut file = AtomicFile::create(path, PRIVATE_MODE)?;
    file.write_all(contents.as_bytes())?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_a_dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        fs::write(&target, "old\n").unwrap();
        let mut file = AtomicFile::create(&target, PUBLIC_MODE).unwrap();
        file.write_all(b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old\n", "the old file stays until commit");
        let partial = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .unwrap();
        assert_eq!(partial.metadata().unwrap().permissions().mode() & 0o777, 0o600, "private while written");
        drop(file);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no partial file is left");

        let mut file = AtomicFile::create(&target, PUBLIC_MODE).unwrap();
        file.write_all(b"new\n").unwrap();
        file.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o666 & !umask(),
            "the intended mode"
        );
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_is_never_widened() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("users.csv");
        for (before, intended, after) in
            [(0o600, PUBLIC_MODE, 0o600), (0o640, PUBLIC_MODE, 0o640), (0o644, PRIVATE_MODE, 0o600)]
        {
            fs::write(&target, "old").unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(before)).unwrap();
            let mut file = AtomicFile::create(&target, intended).unwrap();
            file.write_all(b"new").unwrap();
            file.commit().unwrap();
            let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, after, "{before:o} written with {intended:o}");
        }
    }

    #[test]
    fn a_killed_writers_partial_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("users.csv");
        // No process has pid 4194304 + 1 (above the kernel's maximum).
        let stale = dir.path().join(".users.csv.cabinet-db-4194305.partial");
        fs::write(&stale, "someone@example.com\n").unwrap();
        let mut file = AtomicFile::create(&target, PUBLIC_MODE).unwrap();
        file.write_all(b"x\n").unwrap();
        file.commit().unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn a_symlink_is_followed_and_stays_a_fifo_is_written_into_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.csv");
        fs::write(&real, "old\n").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        let mut file = AtomicFile::create(&link, PUBLIC_MODE).unwrap();
        file.write_all(b"new\n").unwrap();
        file.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let mut file = AtomicFile::create(&fifo, PUBLIC_MODE).unwrap();
        file.write_all(b"through the pipe\n").unwrap();
        file.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe\n");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");

        let err = AtomicFile::create(dir.path(), PUBLIC_MODE).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[test]
    fn secrets_are_private_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role.password");
        write_private(&path, "s3cret\n").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
