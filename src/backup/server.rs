//! The server a stanza backs up, as pgBackRest must see it: read from the running server
//! (so the configuration cannot disagree with it) and from the data directory's owner.

use std::{os::unix::fs::MetadataExt, path::PathBuf};

use nix::unistd::{Uid, User, geteuid};
use sqlx::PgConnection;

use super::BackupError;
use crate::local_cluster::RunAs;

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) data_dir: PathBuf,
    pub(crate) port: u16,
    /// Where the server's unix socket is (the first of `unix_socket_directories`).
    pub(crate) socket_dir: PathBuf,
    /// The bootstrap superuser: pgBackRest connects as it, over the socket.
    pub(crate) superuser: String,
    /// e.g. 15.
    pub(crate) major: u32,
    /// The OS user that owns the data directory: pgBackRest runs as it.
    pub(crate) os_user: RunAs,
}

impl Server {
    /// Reads the running server's settings (needs a superuser or `pg_read_all_settings`) and
    /// who owns its data directory on this host.
    pub(crate) async fn inspect(conn: &mut PgConnection) -> Result<Server, BackupError> {
        let (data_dir, port, sockets, superuser, version): (String, String, String, String, i32) =
            sqlx::query_as(
                "SELECT current_setting('data_directory'), current_setting('port'),
                        current_setting('unix_socket_directories'),
                        (SELECT rolname::text FROM pg_roles WHERE oid = 10),
                        current_setting('server_version_num')::int",
            )
            .fetch_one(&mut *conn)
            .await?;
        let data_dir = PathBuf::from(data_dir);
        let socket_dir = sockets
            .split(',')
            .map(str::trim)
            .find(|d| !d.is_empty() && !d.starts_with('@'))
            .map(PathBuf::from)
            .ok_or_else(|| {
                BackupError::Config(format!(
                    "the server has no unix socket directory (unix_socket_directories = {sockets:?}); pgBackRest connects through one"
                ))
            })?;
        let owner = std::fs::metadata(&data_dir)
            .map_err(|_| BackupError::NotOnThisHost { data_dir: data_dir.clone() })?
            .uid();
        let os_user = run_as_owner(owner)?;
        Ok(Server {
            data_dir,
            port: port.parse().unwrap_or(5432),
            socket_dir,
            superuser,
            major: (version / 10_000) as u32,
            os_user,
        })
    }
}

/// pgBackRest must run as the data directory's owner: as root we switch to it; otherwise we
/// must be it.
pub fn run_as_owner(owner: u32) -> Result<RunAs, BackupError> {
    let me = geteuid();
    if me.as_raw() == owner {
        return Ok(RunAs::CurrentUser);
    }
    let user = User::from_uid(Uid::from_raw(owner)).ok().flatten().ok_or_else(|| {
        BackupError::Config(format!("the data directory's owner (uid {owner}) is not a user on this host"))
    })?;
    if me.is_root() {
        Ok(RunAs::User { name: user.name, uid: user.uid, gid: user.gid })
    } else {
        Err(BackupError::Config(format!(
            "pgBackRest must run as {}, the owner of the data directory: run this as root or as {}",
            user.name, user.name
        )))
    }
}
