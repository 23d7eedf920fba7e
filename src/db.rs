//! Connecting to PostgreSQL: the secret-safe URL type, the server version gate, and the one
//! identifier-quoting helper every piece of dynamic SQL uses.

use std::{fmt, str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The oldest server we support: `server_version_num` of PostgreSQL 14.
pub(crate) const MIN_SERVER_VERSION_NUM: i32 = 140_000;

/// How long to wait for a TCP connection before giving up.
pub(crate) const CONNECT_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database URL is not valid (expected postgres://user:password@host:port/database)")]
    BadUrl(#[source] sqlx::Error),
    #[error("could not connect to {target}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{target} runs PostgreSQL {version}, but cabinet-db needs 14 or newer; upgrade the server (e.g. apt-get install postgresql-16) and migrate the data with pg_upgrade"
    )]
    ServerTooOld { target: String, version: String },
    #[error(
        "{target} is a read-only standby{}: {what} must run against the leader (on a client host, HAProxy's leader port: 127.0.0.1:5432; `cabinet-db cluster status` names it). Nothing was changed",
        .leader.as_ref().map(|l| format!(" following the leader at {l}")).unwrap_or_default()
    )]
    Standby { target: String, what: String, leader: Option<String> },
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// A connection URL that may carry a password: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// `postgres://user:password@host:port/database` with every part percent-encoded, so a
    /// password holding `@`, `/`, `:` or `%` stays one password.
    pub fn from_parts(user: &str, password: &str, host: &str, port: u16, database: &str) -> Self {
        DatabaseUrl(format!(
            "postgres://{}:{}@{host}:{port}/{}",
            percent_encode(user),
            percent_encode(password),
            percent_encode(database)
        ))
    }

    /// The full URL, password included: only for handing to a client or printing on request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn connect_options(&self) -> Result<PgConnectOptions, DbError> {
        let options = PgConnectOptions::from_str(&self.0).map_err(DbError::BadUrl)?;
        // Our statements are logged by us when they matter; sqlx's per-statement INFO
        // lines would only repeat them (and could show values).
        Ok(options.disable_statement_logging())
    }

    /// `user@host:port/database`: enough to say where, nothing secret.
    pub(crate) fn redacted(&self) -> String {
        match self.connect_options() {
            Ok(o) => describe_target(&o),
            Err(_) => "<unparsable database URL>".to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl::new(s))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: whole in any part of a URL
/// (a connection URL's user, password or database; the panel's path segments and query values).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(crate) fn describe_target(options: &PgConnectOptions) -> String {
    // A socket URL's host is a placeholder: name the socket's directory instead.
    let host = match options.get_socket() {
        Some(directory) => directory.display().to_string(),
        None => options.get_host().to_owned(),
    };
    format!(
        "{}@{host}:{}/{}",
        options.get_username(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    )
}

/// One connection, refused when the server is older than we support.
pub async fn connect(url: &DatabaseUrl, application_name: &str) -> Result<PgConnection, DbError> {
    let options = url.connect_options()?.application_name(application_name);
    connect_with(&options).await
}

pub(crate) async fn connect_with(options: &PgConnectOptions) -> Result<PgConnection, DbError> {
    let target = describe_target(options);
    let mut conn = tokio::time::timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS), options.connect())
        .await
        .map_err(|_| DbError::Connect { target: target.clone(), source: sqlx::Error::PoolTimedOut })?
        .map_err(|source| DbError::Connect { target: target.clone(), source })?;
    if let Err(e) = check_server_version(&mut conn, &target).await {
        let _ = conn.close().await;
        return Err(e);
    }
    Ok(conn)
}

/// Whether a pooled connection is pinged before each use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Not pinged: that round trip would double the cost of a point lookup, and a dead
    /// connection surfaces as an error on the query instead, which a service's callers handle
    /// anyway (the library's hot paths, the benchmarks).
    Trusted,
    /// Pinged (one round trip, sqlx's default): a connection that died — the leader failed
    /// over and HAProxy cut its sessions, the server restarted — is replaced before a request
    /// sees it. For the admin panel, whose pages cost milliseconds anyway.
    CheckedBeforeUse,
}

/// A pool for services using the library (and the benchmarks). The server version is checked
/// once, on a first connection. A connection is waited for up to `CONNECT_TIMEOUT_SECS`.
pub async fn pool(
    url: &DatabaseUrl,
    application_name: &str,
    max_connections: u32,
    liveness: Liveness,
) -> Result<PgPool, DbError> {
    pool_waiting(url, application_name, max_connections, liveness, Duration::from_secs(CONNECT_TIMEOUT_SECS))
        .await
}

/// [`pool`], waiting at most `acquire_timeout` for a connection (connecting included) before
/// `sqlx::Error::PoolTimedOut`: the admin panel's pages would rather say the database is
/// unreachable than hang.
pub(crate) async fn pool_waiting(
    url: &DatabaseUrl,
    application_name: &str,
    max_connections: u32,
    liveness: Liveness,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    let options = url.connect_options()?.application_name(application_name);
    connect_with(&options).await?.close().await?;
    let target = describe_target(&options);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(liveness == Liveness::CheckedBeforeUse)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|source| DbError::Connect { target, source })
}

async fn check_server_version(conn: &mut PgConnection, target: &str) -> Result<i32, DbError> {
    let (num, version): (String, String) =
        sqlx::query_as("SELECT current_setting('server_version_num'), current_setting('server_version')")
            .fetch_one(&mut *conn)
            .await?;
    let num: i32 = num.parse().unwrap_or(0);
    if num < MIN_SERVER_VERSION_NUM {
        return Err(DbError::ServerTooOld { target: target.to_owned(), version });
    }
    Ok(num)
}

/// Refuses a standby (a read-only member of a cluster) before `what` changes anything, naming
/// the leader it streams from when this role may see it (`pg_stat_wal_receiver`).
pub(crate) async fn refuse_standby(conn: &mut PgConnection, target: &str, what: &str) -> Result<(), DbError> {
    let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut *conn).await?;
    if !standby {
        return Ok(());
    }
    let leader: Option<(Option<String>, Option<i32>)> =
        sqlx::query_as("SELECT sender_host, sender_port FROM pg_stat_wal_receiver")
            .fetch_optional(&mut *conn)
            .await?;
    let leader = match leader {
        Some((Some(host), Some(port))) => Some(format!("{host}:{port}")),
        Some((Some(host), None)) => Some(host),
        _ => None,
    };
    Err(DbError::Standby { target: target.to_owned(), what: what.to_owned(), leader })
}

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes).
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;

/// Words with a meaning of their own in pg_hba.conf's database and user fields: a database or
/// role of that name would silently widen a rule.
const HBA_KEYWORDS: [&str; 6] = ["all", "sameuser", "samerole", "samegroup", "replication", "public"];

/// Whether `name` is a database or role name cabinet-db accepts: lower-case letters, digits
/// and underscores, starting with a letter or underscore, at most 63 bytes, no pg_hba keyword.
/// Such a name needs no quoting in SQL, a config file or pg_hba.conf, so nothing typed as a
/// name can become a second rule. `what` names the value in the error.
pub(crate) fn check_identifier(what: &str, name: &str) -> Result<(), String> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let problem = if name.is_empty() {
        "is empty".to_owned()
    } else if !well_formed {
        "may hold only lower-case letters, digits and underscores, starting with a letter or underscore"
            .to_owned()
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        format!("is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes")
    } else if HBA_KEYWORDS.contains(&name) {
        "is a keyword of pg_hba.conf, where it would mean something else".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{what} {name:?} {problem}"))
}

/// Quotes an identifier (role, database, table name) for SQL text: the only way dynamic
/// identifiers enter our statements. Values always travel as bind parameters instead.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes a string literal for SQL text that is printed rather than executed with binds
/// (offline `migrate sql`) or for utility statements that take no parameters.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The SQLSTATE of a database error, when it is one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned())
}

/// SQLSTATE 55P03: `lock_timeout` expired.
pub(crate) const SQLSTATE_LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE 23502: a NULL where NOT NULL is required.
pub(crate) const SQLSTATE_NOT_NULL_VIOLATION: &str = "23502";

/// The model's sentence for a constraint violation, when the error is one of ours.
pub fn violation_message(error: &sqlx::Error) -> Option<String> {
    let db = error.as_database_error()?;
    let name = db.constraint()?;
    let def = crate::models::schema::constraint(name)?;
    Some(format!("{} (constraint {name})", def.meaning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_database_url_never_shows_the_password() {
        let url = DatabaseUrl::new("postgres://alice:s3cr3t-pw@db.example:5432/cabinet");
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("alice@db.example:5432/cabinet"), "{shown}");
    }

    #[test]
    fn urls_from_parts_keep_awkward_passwords_whole() {
        let password = "p@ss/w:rd%20#?&=+ x";
        let url = DatabaseUrl::from_parts("cabinet_admin", password, "127.0.0.1", 54320, "cabinet");
        let options = url.connect_options().unwrap();
        assert_eq!(options.get_username(), "cabinet_admin");
        assert_eq!(options.get_port(), 54320);
        assert_eq!(options.get_database(), Some("cabinet"));
        assert!(url.expose().contains("p%40ss%2Fw%3Ard%2520%23%3F%26%3D%2B%20x"), "{}", url.expose());
    }

    #[test]
    fn identifiers_that_could_change_a_rule_are_refused() {
        assert!(check_identifier("database", "cabinet").is_ok());
        assert!(check_identifier("database", "_x9").is_ok());
        for hostile in [
            "",
            "cabinet  all  100.64.0.0/10 trust\n#",
            "all",
            "replication",
            "samerole",
            "+admins",
            "@roles.txt",
            "a,b",
            "a b",
            "a\"b",
            "Cabinet",
            "9lives",
            "café",
            &"x".repeat(64),
        ] {
            assert!(check_identifier("database", hostile).is_err(), "{hostile:?}");
        }
        let error = check_identifier("--database", "x\n#").unwrap_err();
        assert!(error.starts_with("--database \"x\\n#\""), "{error}");
    }

    #[test]
    fn quote_ident_doubles_embedded_quotes() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
