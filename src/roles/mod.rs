//! Least-privilege roles, declared once and applied idempotently.
//!
//! | role | login | may |
//! |---|---|---|
//! | `<prefix>owner` | no | own the schema objects but the history's; migrations `SET ROLE` to it |
//! | `<prefix>historian` | no | own the history (its tables and the functions that write them); no role is a member, so no login role and no session acting as the owner can change it |
//! | `<prefix>admin` | yes | SELECT, INSERT, UPDATE, DELETE on `sites` and `users`; SELECT on their history and the migration ledger |
//! | `<prefix>n8n` | yes | SELECT on `sites` |
//! | `<prefix>app` | yes | SELECT on `sites` and `users`; EXECUTE on `cabinet_record_seen` and `cabinet_record_seen_many` (the main application records sign-ins through them and writes nothing else) |
//!
//! None is superuser, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, or a member of any other
//! role; each has exactly the settings below and no others. PUBLIC keeps nothing on our
//! tables, cannot CREATE in schema `public` (PostgreSQL 14 still grants that by default),
//! cannot connect to the database, cannot use large objects in it, and cannot connect to the
//! `postgres` and `template1` databases. The prefix exists so tests, which share one
//! cluster, can have roles of their own.
//!
//! In a Patroni cluster two more roles exist, created by Patroni from `cluster render`'s
//! names: `<prefix>replicator` (REPLICATION, for the standbys) and `<prefix>rewind` (which
//! keeps CONNECT on `postgres`, where pg_rewind reads a new leader's files).

/// `roles apply` and `roles rotate`.
pub mod apply;
/// Privileges granted ahead of time (`pg_default_acl`): read for the audit, taken back by apply.
pub(crate) mod future;
/// Where login passwords come from and where generated ones go.
pub mod password;
/// SCRAM-SHA-256 verifiers, computed client-side.
pub(crate) mod scram;

use serde::Serialize;

use crate::models::schema::{MIGRATIONS_TABLE, TABLES, TableKind};

/// The prefix in production and in the development database.
pub(crate) const DEFAULT_ROLE_PREFIX: &str = "cabinet_";
/// Sessions of the login roles idle inside a transaction longer than this are ended: they
/// hold locks.
pub(crate) const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";
/// The databases PostgreSQL itself creates, which PUBLIC may connect to by default.
pub(crate) const SYSTEM_DATABASES: [&str; 2] = ["postgres", "template1"];

const ADMIN_PRIVILEGES: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE"];
const READ_ONLY: &[&str] = &["SELECT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    Owner,
    Historian,
    Admin,
    N8n,
    App,
}

impl RoleKind {
    pub const ALL: [RoleKind; 5] =
        [RoleKind::Owner, RoleKind::Historian, RoleKind::Admin, RoleKind::N8n, RoleKind::App];
    /// The roles clients log in as.
    pub const LOGIN: [RoleKind; 3] = [RoleKind::Admin, RoleKind::N8n, RoleKind::App];

    pub(crate) fn suffix(self) -> &'static str {
        match self {
            RoleKind::Owner => "owner",
            RoleKind::Historian => "historian",
            RoleKind::Admin => "admin",
            RoleKind::N8n => "n8n",
            RoleKind::App => "app",
        }
    }

    pub fn can_login(self) -> bool {
        !matches!(self, RoleKind::Owner | RoleKind::Historian)
    }

    /// Enough for the admin panel's pool or n8n's, small enough that a runaway client cannot
    /// take every connection from the others.
    pub fn connection_limit(self) -> i32 {
        match self {
            RoleKind::Owner | RoleKind::Historian => -1,
            RoleKind::Admin => 20,
            RoleKind::N8n => 30,
            // The main application's pool, with room for a rolling restart's second one.
            RoleKind::App => 40,
        }
    }

    /// Per-role `statement_timeout`: n8n's lookups and the main application's reads are
    /// point reads, its sightings one batch; the admin panel's writes are small too. A stuck
    /// query is cancelled instead of holding locks.
    pub(crate) fn statement_timeout(self) -> Option<&'static str> {
        match self {
            RoleKind::Owner | RoleKind::Historian => None,
            RoleKind::Admin => Some("30s"),
            RoleKind::N8n | RoleKind::App => Some("5s"),
        }
    }

    /// Environment variable that may hold this role's password.
    pub(crate) fn password_env(self) -> &'static str {
        match self {
            RoleKind::Owner => "CABINET_OWNER_PASSWORD",
            RoleKind::Historian => "CABINET_HISTORIAN_PASSWORD",
            RoleKind::Admin => "CABINET_ADMIN_PASSWORD",
            RoleKind::N8n => "CABINET_N8N_PASSWORD",
            RoleKind::App => "CABINET_APP_PASSWORD",
        }
    }

    /// Which role owns `table`: the historian the history's tables, the owner the rest.
    pub(crate) fn keeper_of_table(table: &str) -> RoleKind {
        match TABLES.iter().find(|t| t.name == table).map(|t| t.kind) {
            Some(TableKind::History) => RoleKind::Historian,
            _ => RoleKind::Owner,
        }
    }

    /// Which role owns the schema's function `function`: the historian the history's (its
    /// triggers' functions, prune, scrub) and forget's entry point (which runs as its caller:
    /// kept by the historian so that the owner cannot replace it), the owner the rest.
    pub(crate) fn keeper_of_function(function: &str) -> RoleKind {
        let history = crate::models::history::FUNCTIONS.iter();
        if history.chain(crate::models::erasure::FUNCTIONS.iter()).any(|f| f.name == function) {
            RoleKind::Historian
        } else {
            RoleKind::Owner
        }
    }

    /// What this role may do to `table` when it does not own it.
    pub(crate) fn table_privileges(self, table: &str) -> &'static [&'static str] {
        let kind = TABLES.iter().find(|t| t.name == table).map(|t| t.kind);
        match self {
            // The owner reads the history (a migration may need to); it cannot change it.
            RoleKind::Owner if kind == Some(TableKind::History) => READ_ONLY,
            RoleKind::Owner => &[],
            // Nothing on the owner's tables: what the owner attaches to them (a trigger, a
            // rule, a policy) would run as the historian.
            RoleKind::Historian => &[],
            RoleKind::Admin if kind == Some(TableKind::Record) => ADMIN_PRIVILEGES,
            // The history is read, never written, by anyone but its triggers.
            RoleKind::Admin if kind == Some(TableKind::History) => READ_ONLY,
            // The admin panel shows the migration status (`migrate status` as cabinet_admin).
            RoleKind::Admin if table == MIGRATIONS_TABLE => READ_ONLY,
            RoleKind::N8n if table == "sites" => READ_ONLY,
            RoleKind::App if table == "sites" || table == "users" => READ_ONLY,
            _ => &[],
        }
    }

    /// Whether this role may call one of the schema's functions (they run as their keeper):
    /// the admin panel erases a user on request (`users forget`); the admin role and the main
    /// application record sightings (`users seen`, sign-ins); the owner prunes the history
    /// (`history prune`); nothing else is callable.
    pub(crate) fn may_execute(self, function: &str) -> bool {
        let records_activity = function == "cabinet_record_seen" || function == "cabinet_record_seen_many";
        match self {
            // Forgetting runs as its caller and calls the history's half itself.
            RoleKind::Admin => {
                function == "cabinet_forget_user" || function == "cabinet_scrub_forgotten" || records_activity
            }
            RoleKind::App => records_activity,
            RoleKind::Owner => function == "cabinet_prune_history",
            RoleKind::Historian | RoleKind::N8n => false,
        }
    }

    /// The role's own settings (`ALTER ROLE … SET`), as `name=value`: exactly these, in no
    /// database more or less. Sessions may still raise them (`SET statement_timeout = 0`):
    /// they are defaults, not limits.
    pub(crate) fn settings(self) -> Vec<String> {
        let mut settings = Vec::new();
        if let Some(timeout) = self.statement_timeout() {
            settings.push(format!("statement_timeout={timeout}"));
        }
        if self.can_login() {
            settings.push(format!("idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"));
        }
        settings
    }
}

/// The role names for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub(crate) prefix: String,
}

impl Default for Roles {
    fn default() -> Self {
        Roles { prefix: DEFAULT_ROLE_PREFIX.to_owned() }
    }
}

impl Roles {
    pub fn new(prefix: impl Into<String>) -> Self {
        Roles { prefix: prefix.into() }
    }

    /// A prefix given by a person: every role name it makes must be an identifier we accept
    /// (`db::check_identifier`), and none may start with `pg_` (PostgreSQL reserves it).
    pub fn parse(prefix: &str) -> Result<Roles, String> {
        let roles = Roles::new(prefix);
        roles.check()?;
        Ok(roles)
    }

    /// Checks the names this prefix makes.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.prefix.starts_with("pg_") {
            return Err(format!("role prefix {:?} starts with pg_, which PostgreSQL reserves", self.prefix));
        }
        for name in self.all_names().into_iter().chain([self.replication(), self.rewind()]) {
            crate::db::check_identifier("role name", &name)
                .map_err(|e| format!("role prefix {:?} makes a bad {e}", self.prefix))?;
        }
        Ok(())
    }

    pub fn name(&self, kind: RoleKind) -> String {
        format!("{}{}", self.prefix, kind.suffix())
    }

    pub(crate) fn kind_of(&self, name: &str) -> Option<RoleKind> {
        RoleKind::ALL.into_iter().find(|k| self.name(*k) == name)
    }

    /// The replication role of a Patroni cluster (`cluster render` names it, Patroni creates
    /// it): REPLICATION, reached only from the cluster's nodes (pg_hba).
    pub(crate) fn replication(&self) -> String {
        format!("{}replicator", self.prefix)
    }

    /// The role Patroni's pg_rewind connects as (to database `postgres`) when a former leader
    /// rejoins; Patroni creates it with EXECUTE on the file functions pg_rewind reads through.
    pub(crate) fn rewind(&self) -> String {
        format!("{}rewind", self.prefix)
    }

    /// The login roles' names, comma-separated, as a pg_hba USER field.
    pub(crate) fn login_names(&self) -> String {
        RoleKind::LOGIN.iter().map(|k| self.name(*k)).collect::<Vec<_>>().join(",")
    }

    /// Every role's name.
    pub(crate) fn all_names(&self) -> Vec<String> {
        RoleKind::ALL.iter().map(|k| self.name(*k)).collect()
    }
}

/// A role's stored settings (`ALTER ROLE … [IN DATABASE …] SET`): per database (`None` for the
/// role-wide ones), each `name=value`.
pub(crate) async fn stored_settings(
    conn: &mut sqlx::PgConnection,
    role: &str,
) -> Result<Vec<(Option<String>, Vec<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.datname::text, s.setconfig
           FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
          WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)",
    )
    .bind(role)
    .fetch_all(conn)
    .await
}

/// The tables whose privileges the roles model governs: the models' and the ledger.
pub(crate) fn governed_tables() -> Vec<&'static str> {
    TABLES.iter().map(|t| t.name).chain([MIGRATIONS_TABLE]).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(
        "role {role} is new and needs a password: give --password-file {role}=PATH, set the role's CABINET_*_PASSWORD variable, or pass --secrets-dir DIR to generate one there (0600)"
    )]
    NeedsPassword { role: String },
    #[error(
        "say where {role}'s new password comes from: --secrets-dir DIR generates one into DIR/{role}.password (0600); or give it with --password-file {role}=PATH or the {variable} variable"
    )]
    RotateNeedsSource { role: String, variable: &'static str },
    #[error("cannot read the password file {}", .path.display())]
    PasswordFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the password from {origin} is refused: {reason}")]
    BadPassword { origin: String, reason: String },
    #[error("cannot write {}", .path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{role} is not one of the login roles ({})", .known.join(", "))]
    UnknownRole { role: String, known: Vec<String> },
    #[error(
        "not permitted: roles apply/rotate must run as a superuser or a role with CREATEROLE that may also grant on the tables (connect as the database's superuser, e.g. postgres)"
    )]
    NotPermitted(#[source] sqlx::Error),
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for RolesError {
    fn from(error: sqlx::Error) -> Self {
        // 42501 insufficient_privilege
        if crate::db::sqlstate(&error).as_deref() == Some("42501") {
            RolesError::NotPermitted(error)
        } else {
            RolesError::Query(error)
        }
    }
}
