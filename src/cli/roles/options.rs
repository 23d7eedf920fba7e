//! What `roles apply` and `roles rotate` share: the connection, the prefix, where passwords
//! come from.

use std::path::PathBuf;

use clap::Args;

use crate::{
    cli::args::ConnectionArgs,
    roles::{DEFAULT_ROLE_PREFIX, Roles, password::PasswordSources},
};

/// Options shared by the roles subcommands.
#[derive(Debug, Clone, Args)]
pub(crate) struct RoleOptions {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Prefix of the role names (owner, admin, n8n, app are appended).
    #[arg(long, env = "CABINET_ROLE_PREFIX", default_value = DEFAULT_ROLE_PREFIX, value_parser = Roles::parse)]
    pub(crate) role_prefix: Roles,
    /// Take a login role's password from a file: ROLE=PATH (repeatable; mode 0600, owned by you
    /// or root — a file others may read is refused). Otherwise
    /// CABINET_ADMIN_PASSWORD / CABINET_N8N_PASSWORD / CABINET_APP_PASSWORD, otherwise one is
    /// generated (only for a role that does not exist yet: an existing role keeps its
    /// password, and nothing is written for it).
    #[arg(long, value_name = "ROLE=PATH", value_parser = parse_password_file)]
    pub(crate) password_file: Vec<(String, PathBuf)>,
    /// Where generated passwords are written, one ROLE.password file each (0600).
    #[arg(long, env = "CABINET_SECRETS_DIR")]
    pub(crate) secrets_dir: Option<PathBuf>,
}

impl RoleOptions {
    pub(crate) fn roles(&self) -> Roles {
        self.role_prefix.clone()
    }

    pub(crate) fn sources(&self) -> PasswordSources {
        PasswordSources { files: self.password_file.clone(), secrets_dir: self.secrets_dir.clone() }
    }
}

fn parse_password_file(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((role, path)) if !role.is_empty() && !path.is_empty() => {
            Ok((role.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("{text:?} should be ROLE=PATH, e.g. cabinet_n8n=/etc/cabinet-db/n8n.password")),
    }
}
