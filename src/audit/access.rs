use sqlx::{PgConnection, Row};

use super::Check;
use crate::{
    compat,
    roles::{RoleKind, Roles, governed_tables},
};

const APPLY: &str = "run cabinet-db roles apply (as a superuser)";

pub async fn roles(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();
    for kind in RoleKind::ALL {
        let name = roles.name(kind);
        let row = sqlx::query(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolconnlimit,
                    coalesce(array_to_string(rolconfig, ','), '') AS config
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
        let id = "roles.attributes";
        checks.push(if problems.is_empty() {
            Check::pass(id, format!("{name}: no special attributes"))
        } else {
            Check::fail(id, format!("{name} {}", problems.join(", ")), APPLY)
        });
        if kind.can_login() {
            let limit: i32 = row.try_get("rolconnlimit")?;
            let config: String = row.try_get("config")?;
            let mut missing = Vec::new();
            if limit < 0 {
                missing.push("no CONNECTION LIMIT".to_owned());
            }
            if !config.contains("statement_timeout=") {
                missing.push("no statement_timeout".to_owned());
            }
            checks.push(if missing.is_empty() {
                Check::pass("roles.limits", format!("{name}: connection limit {limit}, {config}"))
            } else {
                Check::warn("roles.limits", format!("{name}: {}", missing.join(", ")), APPLY)
            });
        }
    }
    Ok(checks)
}

/// The privilege matrix: each of our roles on each governed table, exactly as the model says.
pub async fn privileges(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
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
    let wrong_owner: Vec<String> =
        owners.iter().filter(|(_, o)| *o != owner).map(|(t, o)| format!("{t} is owned by {o}")).collect();
    let mut checks = vec![if wrong_owner.is_empty() {
        Check::pass("privileges.owner", format!("{owner} owns {}", tables.join(", ")))
    } else {
        Check::fail("privileges.owner", wrong_owner.join("; "), APPLY)
    }];

    for kind in [RoleKind::Admin, RoleKind::N8n] {
        let role = roles.name(kind);
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            continue; // reported by roles.exist
        }
        let held: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT t, p, has_table_privilege($1, format('public.%I', t), p)
               FROM unnest($2::text[]) t, unnest($3::text[]) p",
        )
        .bind(&role)
        .bind(&tables)
        .bind(&privileges)
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
    Ok(checks)
}

pub async fn public(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
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
    Ok(checks)
}
