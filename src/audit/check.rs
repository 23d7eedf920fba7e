//! What every check is given (the options) and what it yields: a verdict, what was found and
//! how to fix it, or a warning that it needs a superuser.

use std::path::PathBuf;

use serde::Serialize;

use crate::{db, roles::Roles};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `pg_hba.final_reject`.
    pub id: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it (empty when it passes).
    pub remedy: String,
    /// The check could not run as this role: it needs a superuser.
    pub(crate) needs_superuser: bool,
}

impl Check {
    pub(crate) fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            verdict: Verdict::Pass,
            detail: detail.into(),
            remedy: String::new(),
            needs_superuser: false,
        }
    }

    pub(crate) fn warn(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check {
            id,
            verdict: Verdict::Warn,
            detail: detail.into(),
            remedy: remedy.into(),
            needs_superuser: false,
        }
    }

    pub(crate) fn fail(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check {
            id,
            verdict: Verdict::Fail,
            detail: detail.into(),
            remedy: remedy.into(),
            needs_superuser: false,
        }
    }

    /// A check this role may not run: `what` could not be read.
    pub(crate) fn needs_superuser(id: &'static str, what: &str) -> Check {
        Check {
            id,
            verdict: Verdict::Warn,
            detail: format!("not checked: this role may not read {what}"),
            remedy: NEEDS_SUPERUSER.to_owned(),
            needs_superuser: true,
        }
    }

    /// Pass when `problems` is empty, else fail listing them.
    pub(crate) fn from_problems(
        id: &'static str,
        problems: Vec<String>,
        passed: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        if problems.is_empty() {
            Check::pass(id, passed)
        } else {
            Check::fail(id, problems.join("; "), remedy)
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub roles: Roles,
    /// tailscaled's socket, and whether the user named it (then its absence is a failure).
    pub socket: PathBuf,
    pub socket_explicit: bool,
    /// Where `net/tcp` and `net/tcp6` are read from (`/proc`).
    pub proc_root: PathBuf,
    /// The login roles' password files (`roles apply --secrets-dir`): when given, each role's
    /// password must still be the one in its file.
    pub secrets_dir: Option<PathBuf>,
    /// pgBackRest's configuration (`backup setup --config`).
    pub backup_config: PathBuf,
    /// The admin panel's port (`serve --port`): whatever listens on it must listen on tailnet
    /// addresses only.
    pub panel_port: u16,
    /// Patroni REST APIs (`HOST:PORT`) of a cluster's members; empty when this is no cluster.
    pub cluster_members: Vec<String>,
}

/// The worst verdict: fail if any check failed.
pub(crate) fn overall(checks: &[Check]) -> Verdict {
    checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Pass)
}

/// Whether an error means "you may not look" rather than "something broke".
pub(super) fn is_permission_denied(error: &sqlx::Error) -> bool {
    db::sqlstate(error).as_deref() == Some("42501")
}

/// A check's result, or — when this role may not read what it needs — one warning saying so.
pub(super) fn or_needs_superuser(
    id: &'static str,
    what: &str,
    result: Result<Vec<Check>, sqlx::Error>,
) -> Result<Vec<Check>, sqlx::Error> {
    match result {
        Err(e) if is_permission_denied(&e) => Ok(vec![Check::needs_superuser(id, what)]),
        other => other,
    }
}

const NEEDS_SUPERUSER: &str = "run the audit as a superuser (e.g. sudo -u postgres cabinet-db audit …)";
