//! Where a restore may go: a new or empty directory of its own, nowhere near what the live
//! server and pgBackRest keep. Every path is compared as it really is, every symlink resolved
//! (`paths::overlap`): `/srv/alias/copy` may be inside the live data directory, the
//! configuration's directory or pgBackRest's spool.
//!
//! Refused when the target is, holds or lies inside: the production data directory, a local
//! repository, the configuration file's directory (the file and its secrets include
//! directory), and the directories pgBackRest writes as the configuration names them
//! (`log-path`, `lock-path`, `spool-path`) and the drills' record. The state directory itself
//! is refused, and anything holding it; a new directory *inside* it (and outside
//! pgBackRest's own) is the drill's scratch space, `backup drill`'s default, so it is allowed
//! even where the state directory lies below the configuration's (as in the tests).

use std::path::{Path, PathBuf};

use super::{
    config::BackupConfig, config::DRILLS_FILE, repository::Repo, restore_error::RestoreError, secrets,
};
use crate::paths::{overlap, really};

/// The target is acceptable, or the reason it is not.
pub(crate) fn check(target: &Path, config_path: &Path, config: &BackupConfig) -> Result<(), RestoreError> {
    let real = really(target);
    if overlap(target, &config.pg_path) {
        return Err(RestoreError::IntoProduction { target: real });
    }
    for repo in &config.repos {
        if let Repo::Posix { path } = repo
            && overlap(target, path)
        {
            return Err(RestoreError::IntoRepository { target: real, repository: path.clone() });
        }
    }
    let refuse = |what: &str, path: &Path| RestoreError::IntoBackupState {
        target: real.clone(),
        what: what.to_owned(),
        path: path.to_owned(),
    };
    let mut own: Vec<(String, PathBuf)> = super::config::state_paths(config_path)
        .into_iter()
        .map(|(option, path)| (format!("pgBackRest's {option}"), path))
        .collect();
    own.extend([
        ("pgBackRest's log directory".to_owned(), config.log_dir()),
        ("pgBackRest's lock directory".to_owned(), config.lock_dir()),
        ("pgBackRest's spool".to_owned(), config.spool_dir()),
        ("the drills' record".to_owned(), config.state_dir.join(DRILLS_FILE)),
        ("the pgBackRest configuration".to_owned(), config_path.to_owned()),
        ("its secrets directory".to_owned(), secrets::include_dir(config_path)),
    ]);
    let state = really(&config.state_dir);
    if state.starts_with(&real) {
        return Err(refuse("the backup state directory", &config.state_dir));
    }
    if let Some((what, path)) = own.iter().find(|(_, path)| overlap(target, path)) {
        return Err(refuse(what, path));
    }
    let in_scratch_space = real.starts_with(&state);
    if let Some(dir) = config_path.parent()
        && !in_scratch_space
        && overlap(target, dir)
    {
        return Err(refuse("the directory of the pgBackRest configuration", dir));
    }
    let has_entries = std::fs::read_dir(target).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if has_entries { Err(RestoreError::NotEmpty(target.to_owned())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_through_a_symlink_into_the_configuration_or_the_spool_is_refused() {
        let dir = std::env::temp_dir().join(format!("cabinet-target-dir-{}", std::process::id()));
        let etc = dir.join("etc");
        let state = dir.join("state");
        std::fs::create_dir_all(state.join("spool")).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        let config_path = etc.join("pgbackrest.conf");
        let config = BackupConfig::with_pg(
            dir.join("data"),
            5432,
            dir.join("run"),
            "postgres".into(),
            state.clone(),
            vec![Repo::Posix { path: dir.join("repo") }],
        );
        std::fs::write(&config_path, config.render()).unwrap();
        let (to_etc, to_spool) = (dir.join("to-etc"), dir.join("to-spool"));
        std::os::unix::fs::symlink(&etc, &to_etc).unwrap();
        std::os::unix::fs::symlink(state.join("spool"), &to_spool).unwrap();

        let judged = |target: PathBuf| check(&target, &config_path, &config).map_err(|e| e.to_string());
        let refused = judged(to_etc.join("copy")).unwrap_err();
        assert!(refused.contains("directory of the pgBackRest configuration"), "{refused}");
        let refused = judged(to_spool.join("copy")).unwrap_err();
        assert!(refused.contains("spool"), "{refused}");
        assert!(judged(dir.join("to-etc/../state")).unwrap_err().contains("state directory"));
        assert!(judged(dir.clone()).is_err(), "a target holding them all");
        assert_eq!(judged(state.join("drill-20261203T153300")), Ok(()), "the drill's scratch space");
        assert_eq!(judged(dir.join("copy")), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
