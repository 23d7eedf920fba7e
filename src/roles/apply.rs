use std::path::PathBuf;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    RoleKind, Roles, RolesError, SYSTEM_DATABASES, governed_tables,
    password::{self, Password, PasswordSources},
    scram,
};
use crate::{
    compat,
    db::{self, DatabaseUrl, quote_ident, quote_literal},
    models::schema::FUNCTIONS,
};

/// Serialises concurrent `roles apply` runs against one database ("cabdrole").
const ROLES_LOCK_KEY: i64 = 0x6361_6264_726f_6c65;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub(crate) updated: Vec<String>,
    /// Roles whose password was set by this run.
    pub passwords_set: Vec<String>,
    /// Files generated passwords were written to.
    pub(crate) password_files: Vec<PathBuf>,
    /// Governed tables that do not exist yet (run `migrate up`, then `roles apply` again).
    pub(crate) missing_tables: Vec<String>,
    /// What this run took away that the model does not give: memberships, role settings,
    /// PUBLIC's large-object functions and system-database access.
    pub(crate) removed: Vec<String>,
    /// What this run gave that PostgreSQL's defaults did not need from us: the rewind role's
    /// CONNECT on `postgres` in a Patroni cluster.
    pub granted: Vec<String>,
}

/// How often `apply` starts again when another database's `roles apply` changed the same
/// cluster-wide row at the same moment.
const CONCURRENT_ATTEMPTS: u32 = 5;

/// Creates or corrects the roles and every grant, in one transaction; idempotent.
///
/// Roles and the system databases' grants are cluster-wide rows: two runs against two databases
/// of one cluster (their advisory locks are per database) can update one row at once, and
/// PostgreSQL then fails the later with "tuple concurrently updated" (XX000). Nothing of it was
/// committed, so it simply runs again.
pub async fn apply(
    url: &DatabaseUrl,
    roles: &Roles,
    sources: &PasswordSources,
) -> Result<ApplyReport, RolesError> {
    let mut attempt = 1;
    loop {
        match apply_once(url, roles, sources).await {
            Err(RolesError::Query(e)) if attempt < CONCURRENT_ATTEMPTS && concurrently_updated(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn concurrently_updated(error: &sqlx::Error) -> bool {
    db::sqlstate(error).as_deref() == Some("XX000")
        && error.as_database_error().is_some_and(|e| e.message() == "tuple concurrently updated")
}

async fn apply_once(
    url: &DatabaseUrl,
    roles: &Roles,
    sources: &PasswordSources,
) -> Result<ApplyReport, RolesError> {
    let mut conn = db::connect(url, "cabinet-db roles").await?;
    db::refuse_standby(&mut conn, &url.redacted(), "roles apply").await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ROLES_LOCK_KEY).execute(&mut *tx).await?;
    let mut report = ApplyReport::default();
    let mut written = Vec::new();
    let result = apply_in(&mut tx, roles, sources, &mut report, &mut written).await;
    match result {
        Ok(()) => tx.commit().await?,
        Err(e) => {
            // The passwords in files written for this run were never set: remove them.
            for path in &written {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    }
    conn.close().await?;
    report.password_files = written;
    Ok(report)
}

async fn apply_in(
    conn: &mut PgConnection,
    roles: &Roles,
    sources: &PasswordSources,
    report: &mut ApplyReport,
    written: &mut Vec<PathBuf>,
) -> Result<(), RolesError> {
    for kind in RoleKind::ALL {
        let name = roles.name(kind);
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&name)
            .fetch_one(&mut *conn)
            .await?;
        let password = match (kind.can_login(), sources.given(kind, &name)?, exists) {
            (false, _, _) => None,
            (true, Some(given), _) => Some(given),
            (true, None, false) => {
                let generated = Password::generate();
                let path = sources.generated_path(&name)?;
                password::store(&path, &generated)?;
                written.push(path);
                Some(generated)
            }
            (true, None, true) => None,
        };
        let verb = if exists { "ALTER" } else { "CREATE" };
        let mut sql = format!(
            "{verb} ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT {}",
            quote_ident(&name),
            if kind.can_login() { "LOGIN" } else { "NOLOGIN" },
            kind.connection_limit()
        );
        if let Some(password) = &password {
            sql.push_str(&format!(" PASSWORD {}", quote_literal(&scram::verifier(password.expose()))));
            report.passwords_set.push(name.clone());
        }
        execute(conn, &sql).await?;
        if exists {
            remove_memberships(conn, &name, report).await?;
        }
        set_exactly_the_model_settings(conn, kind, &name, report).await?;
        if exists { report.updated.push(name) } else { report.created.push(name) }
    }

    let owner = quote_ident(&roles.name(RoleKind::Owner));
    let admin = quote_ident(&roles.name(RoleKind::Admin));
    let n8n = quote_ident(&roles.name(RoleKind::N8n));
    let app = quote_ident(&roles.name(RoleKind::App));
    let historian = quote_ident(&roles.name(RoleKind::Historian));
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut *conn).await?;
    let database = quote_ident(&database);
    for sql in [
        // Only our roles may connect; PUBLIC's default CONNECT and TEMPORARY go.
        format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {database} TO {n8n}, {app}"),
        // Imports into a table with rows stage them in a temporary table first.
        format!("GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {admin}"),
        // The drift check materialises the models as temporary tables.
        format!("GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {owner}"),
        // PostgreSQL 14 (and databases restored from it) still lets PUBLIC create here.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {owner}"),
        // The history's keeper reaches its tables and `users` (forget) through the schema, and
        // a migration that changes the history's functions runs as it (no one logs in as it).
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {historian}"),
        format!("GRANT USAGE ON SCHEMA public TO {admin}, {n8n}, {app}"),
        // Future objects of the owner: nothing for PUBLIC (tables never had anything; functions
        // and types would get EXECUTE / USAGE). New tables get grants from the roles model when
        // `roles apply` runs after the migration that adds them.
        format!("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"),
        format!("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE USAGE ON TYPES FROM PUBLIC"),
        format!("ALTER DEFAULT PRIVILEGES FOR ROLE {historian} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"),
        format!("ALTER DEFAULT PRIVILEGES FOR ROLE {historian} REVOKE USAGE ON TYPES FROM PUBLIC"),
    ] {
        execute(conn, &sql).await?;
    }
    close_public_doors(conn, roles, report).await?;
    remove_future_grants(conn, report).await?;

    for table in governed_tables() {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("public.{table}"))
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            report.missing_tables.push(table.to_owned());
            continue;
        }
        let qualified = format!("public.{}", quote_ident(table));
        let keeper = RoleKind::keeper_of_table(table);
        let others = others_than(keeper);
        execute(conn, &format!("ALTER TABLE {qualified} OWNER TO {}", quote_ident(&roles.name(keeper))))
            .await?;
        execute(conn, &format!("REVOKE ALL ON {qualified} FROM PUBLIC, {}", quoted(roles, &others))).await?;
        for kind in others {
            let privileges = kind.table_privileges(table);
            if !privileges.is_empty() {
                let grantee = quote_ident(&roles.name(kind));
                execute(conn, &format!("GRANT {} ON {qualified} TO {grantee}", privileges.join(", ")))
                    .await?;
            }
        }
    }
    // The schema's functions run with their keeper's rights (the history's keeper for the
    // history's, the owner for the rest), never the migrating superuser's; callable only by
    // whom the model says (triggers need no EXECUTE).
    for function in FUNCTIONS {
        let signatures: Vec<String> = sqlx::query_scalar(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.proname = $1 AND p.pronamespace = 'public'::regnamespace",
        )
        .bind(function.name)
        .fetch_all(&mut *conn)
        .await?;
        for signature in signatures {
            let qualified = format!("public.{signature}");
            let keeper = RoleKind::keeper_of_function(function.name);
            let others = others_than(keeper);
            execute(
                conn,
                &format!("ALTER FUNCTION {qualified} OWNER TO {}", quote_ident(&roles.name(keeper))),
            )
            .await?;
            execute(
                conn,
                &format!("REVOKE ALL ON FUNCTION {qualified} FROM PUBLIC, {}", quoted(roles, &others)),
            )
            .await?;
            for kind in others {
                if kind.may_execute(function.name) {
                    let grantee = quote_ident(&roles.name(kind));
                    execute(conn, &format!("GRANT EXECUTE ON FUNCTION {qualified} TO {grantee}")).await?;
                }
            }
        }
    }
    Ok(())
}

/// Every role of ours but `keeper`.
fn others_than(keeper: RoleKind) -> Vec<RoleKind> {
    RoleKind::ALL.into_iter().filter(|k| *k != keeper).collect()
}

/// The roles' names, quoted, comma-separated.
fn quoted(roles: &Roles, kinds: &[RoleKind]) -> String {
    kinds.iter().map(|k| quote_ident(&roles.name(*k))).collect::<Vec<_>>().join(", ")
}

/// Our roles are members of no other role: a membership lets a role act as the other one
/// (`SET ROLE`), and a predefined role like `pg_execute_server_program` or
/// `pg_read_all_data` reaches the operating system or every table.
async fn remove_memberships(
    conn: &mut PgConnection,
    member: &str,
    report: &mut ApplyReport,
) -> Result<(), RolesError> {
    let grants: Vec<(String, String)> = sqlx::query_as(
        "SELECT g.rolname::text, pg_get_userbyid(m.grantor)::text
           FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
          WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)
          ORDER BY 1",
    )
    .bind(member)
    .fetch_all(&mut *conn)
    .await?;
    let version = compat::server_version_num(conn).await?;
    for (granted, grantor) in grants {
        execute(conn, &compat::revoke_membership_sql(version, &granted, member, &grantor)).await?;
        report.removed.push(format!("{member}'s membership in {granted}"));
    }
    Ok(())
}

/// `ALTER ROLE … RESET ALL` everywhere, then the model's settings: a role may have changed its
/// own (`ALTER ROLE cabinet_n8n SET statement_timeout = 0` needs no privilege).
async fn set_exactly_the_model_settings(
    conn: &mut PgConnection,
    kind: RoleKind,
    name: &str,
    report: &mut ApplyReport,
) -> Result<(), RolesError> {
    let wanted = kind.settings();
    let stored = super::stored_settings(conn, name).await?;
    let role = quote_ident(name);
    for (database, settings) in &stored {
        match database {
            Some(database) => {
                execute(conn, &format!("ALTER ROLE {role} IN DATABASE {} RESET ALL", quote_ident(database)))
                    .await?;
                report
                    .removed
                    .push(format!("{name}'s settings in database {database}: {}", settings.join(", ")));
            }
            None => {
                execute(conn, &format!("ALTER ROLE {role} RESET ALL")).await?;
                let extra: Vec<&String> = settings.iter().filter(|s| !wanted.contains(s)).collect();
                if !extra.is_empty() {
                    report.removed.push(format!(
                        "{name}'s settings {}",
                        extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    for setting in &wanted {
        let (parameter, value) = setting.split_once('=').expect("settings are name=value");
        execute(conn, &format!("ALTER ROLE {role} SET {parameter} = {}", quote_literal(value))).await?;
    }
    Ok(())
}

/// What PostgreSQL grants PUBLIC by default and this database needs from nobody: the
/// large-object functions (any role could fill `pg_largeobject`), and CONNECT / TEMPORARY on
/// the databases PostgreSQL itself creates.
async fn close_public_doors(
    conn: &mut PgConnection,
    roles: &Roles,
    report: &mut ApplyReport,
) -> Result<(), RolesError> {
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.pronamespace = 'pg_catalog'::regnamespace
            AND (p.proname LIKE 'lo\\_%' OR p.proname IN ('loread', 'lowrite'))
            AND has_function_privilege('public', p.oid, 'EXECUTE')
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for function in &functions {
        // regprocedure prints a quoted, schema-resolvable signature.
        execute(conn, &format!("REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC")).await?;
    }
    if !functions.is_empty() {
        report.removed.push(format!("PUBLIC's EXECUTE on {}", functions.join(", ")));
    }
    for database in SYSTEM_DATABASES {
        let open: Option<bool> = sqlx::query_scalar(
            "SELECT has_database_privilege('public', oid, 'CONNECT') OR has_database_privilege('public', oid, 'TEMPORARY')
               FROM pg_database WHERE datname = $1",
        )
        .bind(database)
        .fetch_optional(&mut *conn)
        .await?;
        if open == Some(true) {
            execute(
                conn,
                &format!("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC", quote_ident(database)),
            )
            .await?;
            report.removed.push(format!("PUBLIC's CONNECT and TEMPORARY on database {database}"));
        }
    }
    keep_the_rewind_door(conn, roles, report).await
}

/// In a Patroni cluster, a former leader rejoins by pg_rewind, which connects to database
/// `postgres` as the rewind role: closing PUBLIC's door there must not lock it out (the
/// rejoin would fail with "permission denied for database postgres").
async fn keep_the_rewind_door(
    conn: &mut PgConnection,
    roles: &Roles,
    report: &mut ApplyReport,
) -> Result<(), RolesError> {
    let rewind = roles.rewind();
    let locked_out: Option<bool> = sqlx::query_scalar(
        "SELECT NOT has_database_privilege(r.oid, d.oid, 'CONNECT')
           FROM pg_roles r, pg_database d WHERE r.rolname = $1 AND d.datname = 'postgres'",
    )
    .bind(&rewind)
    .fetch_optional(&mut *conn)
    .await?;
    if locked_out == Some(true) {
        execute(conn, &format!("GRANT CONNECT ON DATABASE postgres TO {}", quote_ident(&rewind))).await?;
        report.granted.push(format!("CONNECT on database postgres to {rewind} (pg_rewind)"));
    }
    Ok(())
}

async fn execute(conn: &mut PgConnection, sql: &str) -> Result<(), RolesError> {
    tracing::debug!(statement = %redact_password(sql), "roles");
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut *conn).await?;
    Ok(())
}

/// Statements are logged without their verifier.
fn redact_password(sql: &str) -> &str {
    sql.split(" PASSWORD ").next().unwrap_or(sql)
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RotateReport {
    pub(crate) role: String,
    /// Where the new password was written, when it was generated.
    pub(crate) password_file: Option<PathBuf>,
}

/// Gives a login role a new password: the one supplied, else a generated one written to the
/// secrets directory.
pub(crate) async fn rotate(
    url: &DatabaseUrl,
    roles: &Roles,
    role: &str,
    sources: &PasswordSources,
) -> Result<RotateReport, RolesError> {
    let kind = roles.kind_of(role).filter(|k| k.can_login()).ok_or_else(|| RolesError::UnknownRole {
        role: role.to_owned(),
        known: RoleKind::ALL.iter().filter(|k| k.can_login()).map(|k| roles.name(*k)).collect(),
    })?;
    let (password, file) = match sources.given(kind, role)? {
        Some(given) => (given, None),
        None if sources.secrets_dir.is_none() => {
            return Err(RolesError::RotateNeedsSource {
                role: role.to_owned(),
                variable: kind.password_env(),
            });
        }
        None => (Password::generate(), Some(sources.generated_path(role)?)),
    };
    // A generated password is on disk (beside its file) before the server takes it, and
    // replaces the old file only after: whatever fails, one file holds the password in force.
    let pending = file.as_ref().map(|path| path.with_extension("password.new"));
    if let Some(pending) = &pending {
        password::store(pending, &password)?;
    }
    let result = async {
        let mut conn = db::connect(url, "cabinet-db roles").await?;
        let verifier = scram::verifier(password.expose());
        execute(
            &mut conn,
            &format!("ALTER ROLE {} PASSWORD {}", quote_ident(role), quote_literal(&verifier)),
        )
        .await?;
        conn.close().await?;
        Ok::<(), RolesError>(())
    }
    .await;
    if let (Some(pending), Some(path)) = (&pending, &file) {
        match &result {
            Ok(()) => std::fs::rename(pending, path)
                .map_err(|source| RolesError::Io { path: path.clone(), source })?,
            Err(_) => {
                let _ = std::fs::remove_file(pending);
            }
        }
    }
    result?;
    Ok(RotateReport { role: role.to_owned(), password_file: file })
}

/// Takes back every privilege granted ahead of time (`ALTER DEFAULT PRIVILEGES … GRANT`): the
/// model grants nothing on objects not created yet, and a seeded default would hand the next
/// migration's table to whoever it names.
async fn remove_future_grants(conn: &mut PgConnection, report: &mut ApplyReport) -> Result<(), RolesError> {
    for grant in super::future::grants(conn).await? {
        let place = if grant.schema.is_empty() {
            String::new()
        } else {
            format!(" IN SCHEMA {}", quote_ident(&grant.schema))
        };
        let grantee =
            if grant.grantee == "PUBLIC" { "PUBLIC".to_owned() } else { quote_ident(&grant.grantee) };
        let privilege = match grant.privilege.as_str() {
            known @ ("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "REFERENCES" | "TRIGGER"
            | "USAGE" | "EXECUTE" | "CREATE" | "MAINTAIN") => known,
            _ => "ALL",
        };
        execute(
            conn,
            &format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {}{place} REVOKE {privilege} ON {} FROM {grantee}",
                quote_ident(&grant.grantor),
                grant.objects()
            ),
        )
        .await?;
        report.removed.push(format!(
            "{} on future {} of {}{} for {}",
            grant.privilege,
            grant.objects().to_lowercase(),
            grant.grantor,
            if grant.schema.is_empty() { String::new() } else { format!(" in {}", grant.schema) },
            grant.grantee
        ));
    }
    Ok(())
}
