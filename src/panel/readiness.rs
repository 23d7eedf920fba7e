//! Whether the database answers, for `/readyz` and for the page a request gets when it does not.
//! Two causes are told apart, within about two seconds either way instead of a page that hangs:
//! **unreachable** (nothing answers: the server is down or restarting, the network or a
//! forwarder is cut) and **busy** (the database answers, but every connection of the panel's
//! pool is in use — `--pool-size` of them, each held by a request that waits, e.g. on a lock).
//! From the pool both look the same — a connection is not had in time — so a timed-out wait
//! is settled by a probe: one fresh connection, outside the pool, that runs `SELECT 1`.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

/// How long a page waits for a pooled connection (the panel's pool only; other commands keep
/// `db::CONNECT_TIMEOUT_SECS`). Pages take milliseconds, so a wait this long means the
/// database is gone or the pool is full; the person learns which within the 2–3 s they would
/// wait for a slow page anyway, plus the probe.
pub(crate) const PANEL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `/readyz` waits for a pooled connection before it probes: its answer, probe
/// included, comes within two seconds, what a monitor's check usually allows.
const READY_WAIT: Duration = Duration::from_secs(1);

/// How long `SELECT 1` on a pooled connection may take for `/readyz`.
const READY_QUERY_TIMEOUT: Duration = Duration::from_millis(500);

/// How long the probe may take to connect and answer: a database on this host or the tailnet
/// answers in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// How long a probe's verdict is reused, so that a flood of `/readyz` or of failing pages opens
/// at most one probe connection a second (`/readyz` needs no sign-in).
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// How long a `/readyz` verdict is everyone's answer. Checks run one at a time, and callers
/// that arrive meanwhile take the one in flight: `/readyz` needs no sign-in, and a peer asking
/// it in a loop must not take the pool's connections from the pages.
pub const READY_REUSE: Duration = Duration::from_millis(250);

/// Why the database cannot serve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("the database is unreachable")]
    Unreachable,
    #[error("every database connection is busy")]
    Busy,
}

/// What a failed database call says about the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trouble {
    Known(Unavailable),
    /// No pooled connection in time: a full pool or a server that does not answer; the probe
    /// says which.
    TimedOut,
}

/// The trouble `error` shows with the database itself, if any (as opposed to a query's own
/// failure: a constraint, a missing row).
pub(crate) fn trouble(error: &sqlx::Error) -> Option<Trouble> {
    use Unavailable::*;
    match error {
        sqlx::Error::PoolTimedOut => Some(Trouble::TimedOut),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some(Trouble::Known(Unreachable))
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // too_many_connections: the server answers, but has no connection to spare.
            Some("53300") => Some(Trouble::Known(Busy)),
            // connection_exception (08…), admin_shutdown, crash_shutdown, cannot_connect_now.
            Some(code) if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") => {
                Some(Trouble::Known(Unreachable))
            }
            _ => None,
        },
        _ => None,
    }
}

/// When a verdict was reached, and what it was.
type Verdict = Option<(Instant, Result<(), Unavailable>)>;

/// The last verdicts of `/readyz` and of the probe, shared by every request.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    last_check: Mutex<Verdict>,
    last_probe: Mutex<Verdict>,
    /// The state last logged, so that each change is logged once, whichever path saw it.
    logged: std::sync::Mutex<Option<Result<(), Unavailable>>>,
}

impl Readiness {
    /// Whether a pooled connection answers `SELECT 1`, within two seconds (see [`READY_REUSE`]).
    pub(crate) async fn check(&self, pool: &PgPool) -> Result<(), Unavailable> {
        let mut last = self.last_check.lock().await;
        if let Some((at, verdict)) = *last
            && at.elapsed() < READY_REUSE
        {
            return verdict;
        }
        let verdict = self.check_now(pool).await;
        self.note(pool, verdict, None);
        *last = Some((Instant::now(), verdict));
        verdict
    }

    /// Logs a change of the database's state once: down (with why, when known), busy, back.
    fn note(&self, pool: &PgPool, verdict: Result<(), Unavailable>, why: Option<&str>) {
        let mut logged = self.logged.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = logged.replace(verdict);
        if previous == Some(verdict) || (previous.is_none() && verdict.is_ok()) {
            return;
        }
        // The target names the address, never the password (sqlx's errors do not carry it).
        let database = crate::db::describe_target(&pool.connect_options());
        match verdict {
            Ok(()) => tracing::warn!(database = %database, "the database answers again"),
            Err(unavailable) => tracing::warn!(
                database = %database,
                error = why.unwrap_or(""),
                "{unavailable}: pages answer 503 until it answers again"
            ),
        }
    }

    async fn check_now(&self, pool: &PgPool) -> Result<(), Unavailable> {
        match tokio::time::timeout(READY_WAIT, pool.acquire()).await {
            Ok(Ok(mut conn)) => {
                match tokio::time::timeout(READY_QUERY_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *conn))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(self.judge(pool, &error).await.unwrap_or(Unavailable::Unreachable)),
                    Err(_) => {
                        // Cut off mid-query: that connection's state is unknown.
                        conn.close_on_drop();
                        Err(Unavailable::Unreachable)
                    }
                }
            }
            Ok(Err(error)) => Err(self.judge(pool, &error).await.unwrap_or(Unavailable::Unreachable)),
            Err(_) => Err(self.diagnose(pool).await),
        }
    }

    /// What `error` means for the page: `None` when it is not the database's trouble.
    pub(crate) async fn judge(&self, pool: &PgPool, error: &sqlx::Error) -> Option<Unavailable> {
        match trouble(error)? {
            Trouble::Known(unavailable) => {
                self.note(pool, Err(unavailable), Some(&error.to_string()));
                Some(unavailable)
            }
            Trouble::TimedOut => Some(self.diagnose(pool).await),
        }
    }

    /// After a pooled connection was not had in time: busy when the database answers a
    /// connection of its own, unreachable when it does not.
    pub(crate) async fn diagnose(&self, pool: &PgPool) -> Unavailable {
        match self.probe(pool).await {
            Ok(()) => {
                self.note(pool, Err(Unavailable::Busy), None);
                Unavailable::Busy
            }
            Err(unavailable) => unavailable,
        }
    }

    /// One connection outside the pool, at most one at a time and one per [`PROBE_REUSE`].
    async fn probe(&self, pool: &PgPool) -> Result<(), Unavailable> {
        let mut last = self.last_probe.lock().await;
        if let Some((at, verdict)) = *last
            && at.elapsed() < PROBE_REUSE
        {
            return verdict;
        }
        let options = pool.connect_options();
        let attempt = async {
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            conn.close().await
        };
        let verdict = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => match trouble(&error) {
                Some(Trouble::Known(Unavailable::Busy)) => Ok(()),
                _ => Err((Unavailable::Unreachable, error.to_string())),
            },
            Err(_) => {
                Err((Unavailable::Unreachable, format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())))
            }
        };
        let (verdict, why) = match verdict {
            Ok(()) => (Ok(()), None),
            Err((unavailable, why)) => (Err(unavailable), Some(why)),
        };
        // A probe that got through says only that the database answers: `diagnose` knows why
        // it was asked (busy), `check` whether the pool serves again.
        if verdict.is_err() {
            self.note(pool, verdict, why.as_deref());
        }
        *last = Some((Instant::now(), verdict));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_is_not_called_unreachable() {
        assert_eq!(trouble(&sqlx::Error::PoolTimedOut), Some(Trouble::TimedOut), "the probe decides");
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(trouble(&refused), Some(Trouble::Known(Unavailable::Unreachable)));
        assert_eq!(trouble(&sqlx::Error::PoolClosed), Some(Trouble::Known(Unavailable::Unreachable)));
        assert_eq!(trouble(&sqlx::Error::RowNotFound), None, "a query's own failure is not the database's");
        assert_eq!(Unavailable::Busy.to_string(), "every database connection is busy");
        assert_eq!(Unavailable::Unreachable.to_string(), "the database is unreachable");
    }
}
