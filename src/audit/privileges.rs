//! What our login roles and PUBLIC may do, tried with PostgreSQL's own privilege functions
//! (so memberships, column grants and PUBLIC grants all count): exactly the model's
//! privileges on our tables, nothing on any other relation, no function that runs as someone
//! else, no large objects, no other database.

use sqlx::{PgConnection, Row};

use super::check::{Check, or_needs_superuser};
use crate::{
    compat,
    roles::{RoleKind, Roles, SYSTEM_DATABASES, governed_tables},
};

const APPLY: &str = "run cabinet-db roles apply (as a superuser)";

fn login_roles(roles: &Roles) -> Vec<(RoleKind, String)> {
    RoleKind::LOGIN.into_iter().map(|k| (k, roles.name(k))).collect()
}

/// Column-capable privileges: a grant on one column shows in `has_any_column_privilege`.
const COLUMN_PRIVILEGES: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "REFERENCES"];

/// Ownership and the privilege matrix of our tables; column-level grants.
pub(crate) async fn tables(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let privileges = compat::table_privileges(compat::server_version_num(conn).await?);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT t FROM unnest($1::text[]) t WHERE to_regclass(format('public.%I', t)) IS NOT NULL",
    )
    .bind(governed_tables())
    .fetch_all(&mut *conn)
    .await?;
    let owner = roles.name(RoleKind::Owner);
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT relname::text, pg_get_userbyid(relowner)::text FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1) AND relkind IN ('r', 'p')",
    )
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    // The history belongs to the historian: owned by the owner role, a session acting as the
    // owner (every migration) could rewrite it.
    let wrong_owner: Vec<String> = owners
        .iter()
        .filter(|(t, o)| *o != roles.name(RoleKind::keeper_of_table(t)))
        .map(|(t, o)| format!("{t} is owned by {o}, not {}", roles.name(RoleKind::keeper_of_table(t))))
        .collect();
    let mut checks = vec![Check::from_problems(
        "privileges.owner",
        wrong_owner,
        format!(
            "{owner} owns {}; {} owns {}",
            tables
                .iter()
                .filter(|t| RoleKind::keeper_of_table(t) == RoleKind::Owner)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            roles.name(RoleKind::Historian),
            tables
                .iter()
                .filter(|t| RoleKind::keeper_of_table(t) == RoleKind::Historian)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        APPLY,
    )];
    // A function runs as its owner: the history's, owned by the owner role, would let the
    // owner's sessions replace what writes the history.
    let function_owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text FROM pg_proc p
          WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY($1) ORDER BY 1",
    )
    .bind(crate::models::schema::FUNCTIONS.iter().map(|f| f.name).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let wrong_function_owner: Vec<String> = function_owners
        .iter()
        .filter_map(|(signature, owner)| {
            let name = signature.split('(').next().unwrap_or(signature);
            let keeper = roles.name(RoleKind::keeper_of_function(name));
            (*owner != keeper).then(|| format!("{signature} is owned by {owner}, not {keeper}"))
        })
        .collect();
    checks.push(Check::from_problems(
        "privileges.function_owners",
        wrong_function_owner,
        format!(
            "the history's functions belong to {}, the others to {owner}",
            roles.name(RoleKind::Historian)
        ),
        APPLY,
    ));

    for (kind, role) in login_roles(roles) {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            continue; // reported by roles.exist
        }
        let held: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT t, p, CASE WHEN p = ANY($4) THEN has_any_column_privilege($1, format('public.%I', t), p)
                               ELSE has_table_privilege($1, format('public.%I', t), p) END
               FROM unnest($2::text[]) t, unnest($3::text[]) p",
        )
        .bind(&role)
        .bind(&tables)
        .bind(&privileges)
        .bind(&COLUMN_PRIVILEGES[..])
        .fetch_all(&mut *conn)
        .await?;
        let mut wrong = Vec::new();
        for (table, privilege, has) in held {
            let expected = kind.table_privileges(&table).contains(&privilege.as_str());
            if has != expected {
                wrong.push(format!("{} {privilege} on {table}", if has { "has" } else { "lacks" }));
            }
        }
        let (schema_create, db_create): (bool, bool) = sqlx::query_as(
            "SELECT has_schema_privilege($1, 'public', 'CREATE'), has_database_privilege($1, current_database(), 'CREATE')",
        )
        .bind(&role)
        .fetch_one(&mut *conn)
        .await?;
        if schema_create {
            wrong.push("may CREATE in schema public".to_owned());
        }
        if db_create {
            wrong.push("may CREATE schemas in the database".to_owned());
        }
        checks.push(if wrong.is_empty() {
            Check::pass("privileges.matrix", format!("{role}: exactly as designed"))
        } else {
            Check::fail("privileges.matrix", format!("{role} {}", wrong.join(", ")), APPLY)
        });
    }

    // Column-level grants: the model uses none, to anyone.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s has %s (%s) on %s',
                       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
                       a.privilege_type, att.attname, c.relname)
           FROM pg_class c
           JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND att.attacl IS NOT NULL,
                aclexplode(att.attacl) a
          WHERE c.relnamespace = 'public'::regnamespace AND a.grantee <> c.relowner
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    checks.push(Check::from_problems(
        "privileges.columns",
        columns,
        "no column-level grants",
        "REVOKE the column grants (roles apply revokes them on our tables: REVOKE ALL ON <table> takes column grants too)",
    ));
    Ok(checks)
}

/// Relations beyond our tables, and functions that run as someone else, that our login roles
/// can use: a view or a SECURITY DEFINER function runs with its owner's rights, so either can
/// hand n8n the users table or a superuser's powers.
pub(crate) async fn beyond_tables(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let names: Vec<String> = login_roles(roles).into_iter().map(|(_, n)| n).collect();
    let governed: Vec<String> = governed_tables().iter().map(|t| format!("public.{t}")).collect();
    let relations: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s may %s %s.%s (%s)', r, string_agg(p, ', ' ORDER BY p), n.nspname, c.relname,
                       CASE c.relkind WHEN 'v' THEN 'a view: it reads as its owner'
                                      WHEN 'm' THEN 'a materialized view: it holds its owner''s reads'
                                      WHEN 'f' THEN 'a foreign table'
                                      ELSE 'a table' END)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                unnest($1::text[]) r,
                unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            AND NOT (n.nspname || '.' || c.relname = ANY($2))
            AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
            AND CASE WHEN p IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                     THEN has_any_column_privilege(r, c.oid, p) ELSE has_table_privilege(r, c.oid, p) END
          GROUP BY r, n.nspname, c.relname, c.relkind
          ORDER BY 1",
    )
    .bind(&names)
    .bind(&governed)
    .fetch_all(&mut *conn)
    .await?;
    let mut checks = vec![Check::from_problems(
        "privileges.relations",
        relations,
        "our login roles reach no relation but their tables",
        "REVOKE ALL ON <relation> FROM PUBLIC, <role> (or drop it: this database holds only sites and users)",
    )];

    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s may run %s (%s, owned by %s)', r, p.oid::regprocedure,
                       CASE WHEN p.prosecdef THEN 'SECURITY DEFINER: runs with its owner''s rights'
                            ELSE 'in ' || l.lanname || ', an untrusted language that reaches the operating system' END,
                       pg_get_userbyid(p.proowner))
           FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_language l ON l.oid = p.prolang,
                unnest($1::text[]) r
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND (p.prosecdef OR (NOT l.lanpltrusted AND l.lanname NOT IN ('internal', 'c')))
            AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
            AND has_function_privilege(r, p.oid, 'EXECUTE')
            AND NOT (n.nspname = 'public' AND r || '/' || p.proname = ANY($2))
          ORDER BY 1",
    )
    .bind(&names)
    .bind(granted_by_model(roles))
    .fetch_all(&mut *conn)
    .await?;
    checks.push(Check::from_problems(
        "privileges.functions",
        functions,
        "our login roles can run no function that runs as someone else",
        "REVOKE EXECUTE ON FUNCTION <function> FROM PUBLIC, <role> (functions are executable by PUBLIC unless revoked), or drop it",
    ));
    Ok(checks)
}

/// `role/function` for each of the schema's functions the model lets a login role call.
fn granted_by_model(roles: &Roles) -> Vec<String> {
    login_roles(roles)
        .into_iter()
        .flat_map(|(kind, name)| {
            crate::models::schema::FUNCTIONS
                .iter()
                .filter(move |f| kind.may_execute(f.name))
                .map(move |f| format!("{name}/{}", f.name))
        })
        .collect()
}

/// What PUBLIC (every role) gets by default, and what our login roles could do elsewhere in
/// the cluster: large objects, other databases.
pub(crate) async fn public(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();
    let create: bool = sqlx::query_scalar("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        .fetch_one(&mut *conn)
        .await?;
    checks.push(if create {
        Check::fail(
            "public.schema_create",
            "PUBLIC may CREATE in schema public (PostgreSQL 14's default, kept by restored databases): any role can plant objects",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC (roles apply does)",
        )
    } else {
        Check::pass("public.schema_create", "PUBLIC cannot CREATE in schema public")
    });
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || ': ' || a.privilege_type
           FROM pg_class c, aclexplode(c.relacl) a
          WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 0
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    checks.push(if grants.is_empty() {
        Check::pass("public.tables", "PUBLIC has no privileges on tables in schema public")
    } else {
        Check::fail(
            "public.tables",
            format!("PUBLIC holds {}", grants.join(", ")),
            "REVOKE ALL ON <table> FROM PUBLIC (roles apply does)",
        )
    });
    let connect: bool =
        sqlx::query_scalar("SELECT has_database_privilege('public', current_database(), 'CONNECT')")
            .fetch_one(&mut *conn)
            .await?;
    checks.push(if connect {
        Check::warn(
            "public.connect",
            "every role in the cluster may connect to this database",
            "REVOKE CONNECT ON DATABASE <db> FROM PUBLIC (roles apply does, granting it to our roles)",
        )
    } else {
        Check::pass("public.connect", "only granted roles may connect")
    });

    let names: Vec<String> = login_roles(roles).into_iter().map(|(_, n)| n).collect();
    let large_objects: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s may run %s', r, string_agg(p.proname, ', ' ORDER BY p.proname))
           FROM pg_proc p, unnest($1::text[]) r
          WHERE p.pronamespace = 'pg_catalog'::regnamespace
            AND (p.proname LIKE 'lo\\_%' OR p.proname IN ('loread', 'lowrite'))
            AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
            AND has_function_privilege(r, p.oid, 'EXECUTE')
          GROUP BY r ORDER BY 1",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let compat_privileges: String =
        sqlx::query_scalar("SELECT current_setting('lo_compat_privileges')").fetch_one(&mut *conn).await?;
    let mut problems = large_objects;
    if compat_privileges == "on" {
        problems
            .push("lo_compat_privileges = on: every role may read and write every large object".to_owned());
    }
    checks.push(Check::from_problems(
        "public.large_objects",
        problems,
        "our login roles cannot create, read or write large objects",
        "REVOKE EXECUTE on the lo_* functions FROM PUBLIC (roles apply does); lo_compat_privileges = off",
    ));

    checks.extend(or_needs_superuser(
        "public.other_databases",
        "other databases' privileges",
        other_databases(conn, &names).await,
    )?);
    Ok(checks)
}

/// Our login roles connect to this database only: elsewhere they could at least create
/// temporary tables (and fill the disk) in a database nobody audits.
async fn other_databases(conn: &mut PgConnection, names: &[String]) -> Result<Vec<Check>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r, d.datname::text AS datname,
                has_database_privilege(r, d.oid, 'CONNECT') AS can_connect,
                has_database_privilege(r, d.oid, 'TEMPORARY') AS can_temp
           FROM pg_database d, unnest($1::text[]) r
          WHERE d.datallowconn AND d.datname <> current_database()
            AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
          ORDER BY 2, 1",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    let mut others_only = true;
    for row in rows {
        let (role, database): (String, String) = (row.try_get("r")?, row.try_get("datname")?);
        let (connect, temp): (bool, bool) = (row.try_get("can_connect")?, row.try_get("can_temp")?);
        if connect {
            let also = if temp { " and create temporary tables there" } else { "" };
            problems.push(format!("{role} may connect to database {database}{also}"));
            others_only &= !SYSTEM_DATABASES.contains(&database.as_str());
        }
    }
    let remedy = if others_only {
        "REVOKE CONNECT, TEMPORARY ON DATABASE <db> FROM PUBLIC, then GRANT CONNECT to that database's own roles"
    } else {
        "run cabinet-db roles apply (it revokes PUBLIC's CONNECT and TEMPORARY on postgres and template1); for other databases REVOKE CONNECT, TEMPORARY ON DATABASE <db> FROM PUBLIC and grant CONNECT to their own roles"
    };
    Ok(vec![Check::from_problems(
        "public.other_databases",
        problems,
        "our login roles can connect to no other database",
        remedy,
    )])
}

/// What roles will get on objects not created yet is as much their privilege as what they hold:
/// the model grants nothing ahead of time (`roles apply` grants on each table it governs, after
/// the migration that adds it).
pub(crate) async fn future(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let grants = crate::roles::future::grants(conn).await?;
    Ok(vec![if grants.is_empty() {
        Check::pass("privileges.future", "no privileges are granted ahead of time (ALTER DEFAULT PRIVILEGES)")
    } else {
        Check::fail(
            "privileges.future",
            grants.iter().map(crate::roles::future::FutureGrant::describe).collect::<Vec<_>>().join("; "),
            "ALTER DEFAULT PRIVILEGES FOR ROLE <grantor> [IN SCHEMA <schema>] REVOKE … FROM <grantee> (roles apply removes every one)",
        )
    }])
}
