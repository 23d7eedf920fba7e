//! The offsite repository's secrets: the S3 credentials and the passphrase that encrypts
//! everything pgBackRest stores there.
//!
//! They never enter `pgbackrest.conf` (0640, readable for diagnosis): they live in one file of
//! their own, `<config dir>/<config name>.d/secrets.conf`, 0600, owned by the server's user,
//! which pgBackRest reads as an include file on every run. They are held in types whose
//! `Debug` shows nothing, and never printed.

use std::{
    fmt,
    io::Write,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use super::BackupError;
use crate::{atomic_file::AtomicFile, local_cluster::RunAs};

/// Shorter passphrases are refused (pgBackRest's guide suggests `openssl rand -base64 48`).
pub(crate) const MIN_CIPHER_PASS_CHARS: usize = 20;

/// The passphrase of an encrypted repository; `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct CipherPass(String);

impl fmt::Debug for CipherPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CipherPass(<redacted>)")
    }
}

impl CipherPass {
    /// Reads the passphrase from a file only its owner can read (0600 or stricter): a
    /// passphrase others could read has already leaked.
    pub fn from_file(path: &Path) -> Result<CipherPass, BackupError> {
        let text = read_private_file(path, "--cipher-pass-file")?;
        let pass =
            crate::secret::text(&text, MIN_CIPHER_PASS_CHARS).map_err(|why| BackupError::BadSecret {
                origin: path.display().to_string(),
                why: format!(
                    "{why}; make one with: openssl rand -base64 48 | tr -d '\\n' > {0} && chmod 600 {0}",
                    path.display()
                ),
            })?;
        Ok(CipherPass(pass.to_owned()))
    }
}

/// S3 access key and secret; `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    key: String,
    secret: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3Credentials(<redacted>)")
    }
}

impl S3Credentials {
    /// From `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, as the AWS tools read them.
    pub(crate) fn from_env() -> Result<S3Credentials, BackupError> {
        let get = |name: &str| {
            std::env::var(name).map_err(|_| BackupError::BadSecret {
                origin: name.to_owned(),
                why: "the S3 repository needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for this command (they are stored 0600 for pgBackRest, never printed)".to_owned(),
            })
        };
        S3Credentials::new(&get("AWS_ACCESS_KEY_ID")?, &get("AWS_SECRET_ACCESS_KEY")?)
    }

    /// Checks both: printable ASCII without spaces (each becomes a line of a config file).
    pub fn new(key: &str, secret: &str) -> Result<S3Credentials, BackupError> {
        for (name, value) in [("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret)] {
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
                return Err(BackupError::BadSecret {
                    origin: name.to_owned(),
                    why: "it must be printable ASCII without spaces".to_owned(),
                });
            }
        }
        Ok(S3Credentials { key: key.to_owned(), secret: secret.to_owned() })
    }
}

/// What one repository needs to be opened.
#[derive(Debug, Clone)]
pub(crate) struct RepoSecrets {
    /// 1-based, as in `repo2-…`.
    pub(crate) repo: usize,
    pub(crate) s3: Option<S3Credentials>,
    pub(crate) cipher_pass: Option<CipherPass>,
}

/// The include directory pgBackRest reads next to `config_path`.
pub(crate) fn include_dir(config_path: &Path) -> PathBuf {
    let name = config_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    config_path.with_file_name(format!("{name}.d"))
}

/// The secrets file in it.
pub fn secrets_file(config_path: &Path) -> PathBuf {
    include_dir(config_path).join("secrets.conf")
}

/// The file's text.
fn render(secrets: &[RepoSecrets]) -> String {
    let mut out = String::from(
        "# cabinet-db: secrets of pgBackRest's repositories (0600). Written by `cabinet-db backup setup`.\n[global]\n",
    );
    for repo in secrets {
        let n = repo.repo;
        if let Some(s3) = &repo.s3 {
            out.push_str(&format!("repo{n}-s3-key={}\nrepo{n}-s3-key-secret={}\n", s3.key, s3.secret));
        }
        if let Some(pass) = &repo.cipher_pass {
            out.push_str(&format!("repo{n}-cipher-pass={}\n", pass.0));
        }
    }
    out
}

/// Creates the include directory (0700) and writes the secrets file (0600), both owned by
/// `owner`; with no secrets, removes the file.
pub(crate) fn write(config_path: &Path, secrets: &[RepoSecrets], owner: &RunAs) -> Result<(), BackupError> {
    let dir = include_dir(config_path);
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(BackupError::io(format!("create {}", dir.display())))?;
    }
    owner.hand_over(&dir)?;
    let path = secrets_file(config_path);
    if secrets.iter().all(|s| s.s3.is_none() && s.cipher_pass.is_none()) {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BackupError::Io { action: format!("remove {}", path.display()), source: e })
            }
            _ => Ok(()),
        };
    }
    let io = || BackupError::io(format!("write {}", path.display()));
    let mut file = AtomicFile::create(&path, 0o600).map_err(io())?;
    file.write_all(render(secrets).as_bytes()).map_err(io())?;
    file.commit().map_err(io())?;
    owner.hand_over(&path)?;
    Ok(())
}

/// The content of a file that must be private to its owner.
pub(super) fn read_private_file(path: &Path, option: &str) -> Result<String, BackupError> {
    let origin = path.display().to_string();
    crate::secret::read_private(path)
        .map_err(|e| BackupError::BadSecret { origin, why: format!("{option}: {e}") })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file_with(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("pass");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_passphrase_must_be_private_long_and_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = "k3J9x2Qp7Lm4Zt8Rv1Wy6Ub5";
        let pass = CipherPass::from_file(&file_with(dir.path(), &format!("{good}\n"), 0o600)).unwrap();
        assert_eq!(pass.0, good);
        assert_eq!(format!("{pass:?}"), "CipherPass(<redacted>)");

        let readable = CipherPass::from_file(&file_with(dir.path(), good, 0o644)).unwrap_err();
        assert!(readable.to_string().contains("chmod 600"), "{readable}");
        assert!(!readable.to_string().contains(good), "never shown");
        let short = CipherPass::from_file(&file_with(dir.path(), "short", 0o600)).unwrap_err();
        assert!(short.to_string().contains("openssl rand"), "{short}");
        let injected =
            CipherPass::from_file(&file_with(dir.path(), &format!("{good}\nrepo1-cipher-type=none"), 0o600))
                .unwrap_err();
        assert!(injected.to_string().contains("one line"), "{injected}");
        assert!(CipherPass::from_file(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn the_include_directory_sits_next_to_the_configuration() {
        let config = Path::new("/etc/cabinet-db/pgbackrest.conf");
        assert_eq!(include_dir(config), Path::new("/etc/cabinet-db/pgbackrest.d"));
        assert_eq!(secrets_file(config), Path::new("/etc/cabinet-db/pgbackrest.d/secrets.conf"));
    }

    #[test]
    fn secrets_render_per_repository_and_debug_shows_none() {
        let secrets = [RepoSecrets {
            repo: 2,
            s3: Some(S3Credentials { key: "AKIA1".into(), secret: "s3cr3t".into() }),
            cipher_pass: Some(CipherPass("p".repeat(24))),
        }];
        let text = render(&secrets);
        assert!(
            text.contains("[global]\nrepo2-s3-key=AKIA1\nrepo2-s3-key-secret=s3cr3t\nrepo2-cipher-pass=ppp")
        );
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("AKIA1") && !debug.contains("s3cr3t") && !debug.contains("ppp"), "{debug}");
    }
}
