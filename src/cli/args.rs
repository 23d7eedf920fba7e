//! What several subcommands take: where the database is, durations, times, ports, the
//! migrations directory — each read one way everywhere.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use crate::db::DatabaseUrl;

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// PostgreSQL URL, e.g. postgres://cabinet_admin:PASSWORD@cabinet-db.tail1234.ts.net:5432/cabinet.
    /// The password is never logged or echoed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<DatabaseUrl>,
    /// Who makes the changes, as the history records them (default: `$USER@hostname`).
    #[arg(long, env = "CABINET_ACTOR", value_name = "NAME")]
    pub(crate) actor: Option<String>,
}

impl ConnectionArgs {
    /// A connection whose writes the history records as made by `--actor`.
    pub(crate) async fn connect(&self, application_name: &str) -> anyhow::Result<sqlx::PgConnection> {
        let actor = crate::history::Actor::for_cli(self.actor.as_deref())?;
        let mut conn = crate::db::connect(self.url()?, application_name).await?;
        crate::history::set_actor(&mut conn, &actor, false).await?;
        Ok(conn)
    }

    /// The URL given, or an error naming both ways to give one.
    pub(crate) fn url(&self) -> anyhow::Result<&DatabaseUrl> {
        self.database_url.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "no database given: set DATABASE_URL or pass --database-url, e.g. export DATABASE_URL=\"$(cabinet-db dev url --role cabinet_admin)\" on a development machine"
            )
        })
    }
}

/// `500ms`, `30s`, `5m`, `1h`; a bare number means seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 30s, 5m"))?;
    let millis = match unit {
        "ms" => value,
        "" | "s" => value * 1_000,
        "m" | "min" => value * 60_000,
        "h" => value * 3_600_000,
        other => return Err(format!("unknown unit {other:?} in {text:?}; use ms, s, m or h")),
    };
    Ok(Duration::from_millis(millis))
}

/// A duration that clap can print as its own default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationArg(pub(crate) Duration);

impl std::fmt::Display for DurationArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { write!(f, "{}s", ms / 1000) } else { write!(f, "{ms}ms") }
    }
}

pub(crate) fn parse_duration_arg(text: &str) -> Result<DurationArg, String> {
    parse_duration(text).map(DurationArg)
}

/// Every `--time`, `--at`, `--before` … : the one reading of a time a person gives (RFC 3339
/// or PostgreSQL's output, a zone required, the years 1–9999, a leap second read as PostgreSQL
/// reads it — the next minute), the same the import uses.
pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::models::timestamps::parse_in_range(text).map_err(|reason| format!("{text:?} {reason}"))
}

/// Every port option: 1–65535. (0 would ask the system for any free port — nothing a client,
/// a firewall rule or pg_hba could be told.)
pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a TCP port: give a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// The migrations directory option shared by the migrate subcommands.
#[derive(Debug, Clone, Args)]
pub(crate) struct MigrationsDirArgs {
    /// Read migrations from this directory instead of the ones built into the binary
    /// (for trying a new migration before rebuilding).
    #[arg(long, env = "CABINET_MIGRATIONS_DIR", global = true)]
    pub(crate) migrations_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
