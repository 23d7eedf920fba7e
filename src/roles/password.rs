//! Login passwords: given (a file or an environment variable) or generated and written to a
//! 0600 file. They are held in `Password`, whose `Debug` prints nothing of them, and reach
//! PostgreSQL only as SCRAM verifiers.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use super::{RoleKind, RolesError};

/// Shorter passwords are refused: these roles are reachable from the tailnet.
pub(crate) const MIN_PASSWORD_CHARS: usize = 16;

/// A password; `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 32 random alphanumerics: URL-safe, so it can sit in a connection URL unescaped.
    pub(crate) fn generate() -> Password {
        use rand::{Rng, distr::Alphanumeric};
        Password(rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect())
    }

    /// Checks a password someone supplied; `origin` says where it came from, for the error.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Password, RolesError> {
        crate::secret::text(text, MIN_PASSWORD_CHARS)
            .map(|text| Password(text.to_owned()))
            .map_err(|e| RolesError::BadPassword { origin: origin.to_owned(), reason: e.to_string() })
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where passwords come from.
#[derive(Debug, Clone, Default)]
pub struct PasswordSources {
    /// `--password-file ROLE=PATH`.
    pub files: Vec<(String, PathBuf)>,
    /// Where generated passwords are written (`--secrets-dir`), one `<role>.password` each.
    pub secrets_dir: Option<PathBuf>,
}

impl PasswordSources {
    /// A password given for this role: its `--password-file`, else its environment variable.
    pub(crate) fn given(&self, kind: RoleKind, role: &str) -> Result<Option<Password>, RolesError> {
        if let Some((_, path)) = self.files.iter().find(|(r, _)| r == role) {
            let origin = format!("--password-file {}", path.display());
            let text = crate::secret::read_private(path)
                .map_err(|e| RolesError::BadPassword { origin: origin.clone(), reason: e.to_string() })?;
            return Password::parse(&text, &origin).map(Some);
        }
        match std::env::var(kind.password_env()) {
            Ok(text) => Password::parse(&text, kind.password_env()).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The file a generated password for `role` goes to.
    pub(crate) fn generated_path(&self, role: &str) -> Result<PathBuf, RolesError> {
        match &self.secrets_dir {
            Some(dir) => Ok(dir.join(format!("{role}.password"))),
            None => Err(RolesError::NeedsPassword { role: role.to_owned() }),
        }
    }
}

/// Writes a password file readable only by its owner, replacing any earlier one whole.
pub(crate) fn store(path: &Path, password: &Password) -> Result<(), RolesError> {
    let io = |source| RolesError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    crate::atomic_file::write_private(path, &format!("{}\n", password.expose())).map_err(io)
}

pub fn read(path: &Path) -> Result<Password, RolesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| RolesError::PasswordFile { path: path.to_owned(), source })?;
    Ok(Password(text.trim_end().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let p = Password::parse("averylongpassword-123", "test").unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    }

    #[test]
    fn short_or_non_ascii_passwords_are_refused_saying_why() {
        let short = Password::parse("short", "CABINET_N8N_PASSWORD").unwrap_err().to_string();
        assert!(short.contains("CABINET_N8N_PASSWORD") && short.contains("shorter than 16"), "{short}");
        let umlaut = Password::parse("päßwörd-päßwörd-päßwörd", "f").unwrap_err().to_string();
        assert!(umlaut.contains("printable ASCII"), "{umlaut}");
    }
}
