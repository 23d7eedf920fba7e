//! Our roles as the model has them — no special attributes, no memberships, exactly the
//! model's settings, the passwords in their files — and no other login role in the cluster
//! that could do more than the bootstrap superuser's job.

use std::path::Path;

use sqlx::{PgConnection, Row};

use super::check::{Check, or_needs_superuser};
use crate::roles::{RoleKind, Roles, password, scram, stored_settings};

const APPLY: &str = "run cabinet-db roles apply (as a superuser)";

/// What membership in a predefined role gives.
fn what_it_gives(role: &str) -> &'static str {
    match role {
        "pg_execute_server_program" => "runs programs as the server's OS user (COPY … TO PROGRAM)",
        "pg_read_server_files" => "reads any file the server can (COPY … FROM FILE, pg_read_file)",
        "pg_write_server_files" => "writes any file the server can",
        "pg_read_all_data" => "reads every table, users included",
        "pg_write_all_data" => "changes every table",
        "pg_signal_backend" => "cancels and terminates other sessions",
        "pg_read_all_settings" | "pg_read_all_stats" | "pg_monitor" | "pg_stat_scan_tables" => {
            "reads every setting and other sessions' queries"
        }
        "pg_checkpoint" | "pg_maintain" | "pg_create_subscription" | "pg_use_reserved_connections" => {
            "runs maintenance reserved for administrators"
        }
        _ => "acts as that role (SET ROLE)",
    }
}

/// Attributes, connection limits, settings and memberships of the owner, admin and n8n roles.
pub(crate) async fn ours(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();
    for kind in RoleKind::ALL {
        let name = roles.name(kind);
        let row = sqlx::query(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolconnlimit
               FROM pg_roles WHERE rolname = $1",
        )
        .bind(&name)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            checks.push(Check::fail("roles.exist", format!("role {name} does not exist"), APPLY));
            continue;
        };
        let mut problems = Vec::new();
        for (attribute, column) in [
            ("SUPERUSER", "rolsuper"),
            ("CREATEDB", "rolcreatedb"),
            ("CREATEROLE", "rolcreaterole"),
            ("REPLICATION", "rolreplication"),
            ("BYPASSRLS", "rolbypassrls"),
        ] {
            if row.try_get::<bool, _>(column)? {
                problems.push(format!("has {attribute}"));
            }
        }
        if row.try_get::<bool, _>("rolcanlogin")? != kind.can_login() {
            problems.push(if kind.can_login() {
                "cannot log in".to_owned()
            } else {
                "can log in".to_owned()
            });
        }
        checks.push(if problems.is_empty() {
            Check::pass("roles.attributes", format!("{name}: no special attributes"))
        } else {
            Check::fail("roles.attributes", format!("{name} {}", problems.join(", ")), APPLY)
        });
        if kind.can_login() {
            let limit: i32 = row.try_get("rolconnlimit")?;
            checks.push(if limit == kind.connection_limit() {
                Check::pass("roles.limits", format!("{name}: connection limit {limit}"))
            } else {
                Check::warn(
                    "roles.limits",
                    format!("{name}: connection limit {limit}, the model says {}", kind.connection_limit()),
                    APPLY,
                )
            });
        }
        checks.push(settings(conn, kind, &name).await?);
        checks.push(memberships(conn, &name).await?);
    }
    checks.push(members_of_ours(conn, roles).await?);
    Ok(checks)
}

/// `pg_db_role_setting` holds exactly the model's settings for the role, in no database more.
/// A role may change its own (`ALTER ROLE cabinet_n8n SET statement_timeout = 0`).
async fn settings(conn: &mut PgConnection, kind: RoleKind, name: &str) -> Result<Check, sqlx::Error> {
    let rows = stored_settings(conn, name).await?;
    let wanted = kind.settings();
    let mut problems = Vec::new();
    let mut role_wide: Vec<String> = Vec::new();
    for (database, config) in rows {
        match database {
            Some(database) => problems.push(format!("in database {database}: {}", config.join(", "))),
            None => role_wide = config,
        }
    }
    for setting in role_wide.iter().filter(|s| !wanted.contains(s)) {
        problems.push(format!("{setting} (not in the model)"));
    }
    for setting in wanted.iter().filter(|s| !role_wide.contains(s)) {
        problems.push(format!("lacks {setting}"));
    }
    Ok(if problems.is_empty() {
        Check::pass("roles.settings", format!("{name}: exactly {}", or_none(&wanted.join(", "))))
    } else {
        Check::fail("roles.settings", format!("{name}: {}", problems.join("; ")), APPLY)
    })
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "no settings" } else { text }
}

/// Our roles are members of no role at all, directly or through another.
async fn memberships(conn: &mut PgConnection, name: &str) -> Result<Check, sqlx::Error> {
    let granted: Vec<(String, bool)> = sqlx::query_as(
        "SELECT g.rolname::text, g.rolsuper
           FROM pg_roles g, pg_roles r
          WHERE r.rolname = $1 AND g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
          ORDER BY 1",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let problems: Vec<String> = granted
        .iter()
        .map(|(role, superuser)| {
            let gives = if *superuser { "is a superuser" } else { what_it_gives(role) };
            format!("{name} is a member of {role}, which {gives}")
        })
        .collect();
    Ok(Check::from_problems(
        "roles.memberships",
        problems,
        format!("{name} is a member of no other role"),
        "REVOKE <role> FROM <member> (roles apply does)",
    ))
}

/// Who else can act as one of our roles (`GRANT cabinet_admin TO someone`).
async fn members_of_ours(conn: &mut PgConnection, roles: &Roles) -> Result<Check, sqlx::Error> {
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT pg_get_userbyid(m.member)::text, pg_get_userbyid(m.roleid)::text
           FROM pg_auth_members m
          WHERE pg_get_userbyid(m.roleid) = ANY($1)
          ORDER BY 1, 2",
    )
    .bind(roles.all_names())
    .fetch_all(&mut *conn)
    .await?;
    Ok(if members.is_empty() {
        Check::pass("roles.members", "no other role can act as ours")
    } else {
        let named: Vec<String> = members.iter().map(|(m, r)| format!("{m} can act as {r}")).collect();
        Check::warn(
            "roles.members",
            named.join("; "),
            "give people their own login role instead of membership, or REVOKE <ours> FROM <member>",
        )
    })
}

/// Login roles other than the bootstrap superuser that are superuser, BYPASSRLS, REPLICATION
/// or CREATEROLE, or members of a role that is. One exception: a Patroni cluster's replication
/// role (`roles.replication()`) is REPLICATION and nothing else; pg_hba admits it only from
/// the cluster's nodes.
pub(crate) async fn privileged_logins(conn: &mut PgConnection, roles: &Roles) -> Result<Check, sqlx::Error> {
    let replicator = roles.replication();
    let rows = sqlx::query(
        "SELECT r.rolname::text AS name,
                array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                                   CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,
                                   CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                                   CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END], NULL) AS attributes,
                ARRAY(SELECT g.rolname::text FROM pg_roles g
                       WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
                         AND (g.rolsuper OR g.rolbypassrls OR g.rolreplication OR g.rolcreaterole)
                       ORDER BY 1) AS via
           FROM pg_roles r
          WHERE r.rolcanlogin AND r.oid <> 10
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    for row in rows {
        let name: String = row.try_get("name")?;
        let attributes: Vec<String> = row.try_get("attributes")?;
        let via: Vec<String> = row.try_get("via")?;
        let expected = name == replicator && attributes == ["REPLICATION"];
        if !attributes.is_empty() && !expected {
            problems.push(format!("{name} can log in with {}", attributes.join(", ")));
        }
        if !via.is_empty() {
            problems.push(format!("{name} can log in and act as {}", via.join(", ")));
        }
    }
    Ok(Check::from_problems(
        "roles.privileged_logins",
        problems,
        "no login role but the bootstrap superuser is superuser, BYPASSRLS, REPLICATION or CREATEROLE",
        "ALTER ROLE <name> NOSUPERUSER NOBYPASSRLS NOREPLICATION NOCREATEROLE (or DROP ROLE it); administer as the bootstrap superuser (sudo -u postgres)",
    ))
}

/// Each login role's password is still the one in its file: a role can change its own
/// (`ALTER ROLE cabinet_n8n PASSWORD '…'`), locking out the clients configured with the file.
pub(crate) async fn password_files(
    conn: &mut PgConnection,
    roles: &Roles,
    secrets_dir: Option<&Path>,
) -> Result<Vec<Check>, sqlx::Error> {
    let Some(dir) = secrets_dir else { return Ok(Vec::new()) };
    or_needs_superuser(
        "roles.passwords",
        "password verifiers (pg_authid)",
        async {
            let mut problems = Vec::new();
            let mut checked = Vec::new();
            for kind in RoleKind::ALL.into_iter().filter(|k| k.can_login()) {
                let name = roles.name(kind);
                let path = dir.join(format!("{name}.password"));
                let Ok(expected) = password::read(&path) else {
                    problems.push(format!("{name}: cannot read {}", path.display()));
                    continue;
                };
                let verifier: Option<Option<String>> =
                    sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                        .bind(&name)
                        .fetch_optional(&mut *conn)
                        .await?;
                match verifier.flatten() {
                    Some(verifier) if scram::matches(expected.expose(), &verifier) => checked.push(name),
                    Some(_) => problems.push(format!(
                        "{name}'s password is no longer the one in {} (the role, or someone, changed it)",
                        path.display()
                    )),
                    None => problems.push(format!("{name} has no password")),
                }
            }
            Ok(vec![Check::from_problems(
                "roles.passwords",
                problems,
                format!("{} match their password files", checked.join(", ")),
                "cabinet-db roles rotate <role> --secrets-dir DIR, then give the client its new password",
            )])
        }
        .await,
    )
}
