//! Who runs PostgreSQL. The server refuses to run as root, so as root we run it as an
//! unprivileged user (`postgres`, or `$CABINET_PG_USER`) and hand it the directories it owns.

use std::{os::unix::process::CommandExt, path::Path, process::Command};

use nix::unistd::{Gid, Uid, User, chown, geteuid};

use super::error::ClusterError;

/// The user PostgreSQL runs as when we are root, unless `$CABINET_PG_USER` names another.
pub(crate) const DEFAULT_SERVER_USER: &str = "postgres";

#[derive(Debug, Clone)]
pub enum RunAs {
    /// We are not root: PostgreSQL runs as us.
    CurrentUser,
    /// We are root: PostgreSQL runs as this user.
    User { name: String, uid: Uid, gid: Gid },
}

impl RunAs {
    pub fn detect() -> Result<Self, ClusterError> {
        if !geteuid().is_root() {
            return Ok(RunAs::CurrentUser);
        }
        let name = std::env::var("CABINET_PG_USER").unwrap_or_else(|_| DEFAULT_SERVER_USER.to_owned());
        match User::from_name(&name) {
            Ok(Some(user)) if !user.uid.is_root() => Ok(RunAs::User { name, uid: user.uid, gid: user.gid }),
            Ok(Some(_)) => Err(ClusterError::NoServerUser { name, reason: "it is root".to_owned() }),
            Ok(None) => Err(ClusterError::NoServerUser { name, reason: "it does not exist".to_owned() }),
            Err(e) => Err(ClusterError::NoServerUser { name, reason: e.to_string() }),
        }
    }

    pub(crate) fn user_name(&self) -> String {
        match self {
            RunAs::CurrentUser => {
                User::from_uid(geteuid()).ok().flatten().map_or_else(|| geteuid().to_string(), |u| u.name)
            }
            RunAs::User { name, .. } => name.clone(),
        }
    }

    /// A command that runs as the server user.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let RunAs::User { uid, gid, .. } = self {
            // std drops supplementary groups when it switches uid from root.
            command.uid(uid.as_raw()).gid(gid.as_raw());
            command.current_dir("/");
        }
        command
    }

    /// Gives a path we created to the server user.
    pub fn hand_over(&self, path: &Path) -> Result<(), ClusterError> {
        if let RunAs::User { uid, gid, .. } = self {
            chown(path, Some(*uid), Some(*gid)).map_err(|e| ClusterError::Io {
                action: format!("chown {} to the server user", path.display()),
                source: std::io::Error::from(e),
            })?;
        }
        Ok(())
    }
}
