//! Escalation paths, seeded by a superuser on a PostgreSQL cluster of their own: for each,
//! `audit` exits 1 naming it; `roles apply` plus the manual cleanup its remedy names bring the
//! audit back to exit 0. Where the path is a real attack, the test first walks it as the
//! attacker would (n8n running `COPY … TO PROGRAM`, making itself superuser) and shows it
//! closed afterwards.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use cabinet_db::{
    db::{DatabaseUrl, quote_ident},
    local_cluster::LocalCluster,
    migrations::{MigrationSet, RunnerOptions, runner},
    roles::{RoleKind, Roles, password},
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::{audit, binary, exec_at, start_local_cluster, stderr, stdout, superuser_base};

struct Adversarial {
    cluster: LocalCluster,
    base: String,
    secrets: tempfile::TempDir,
}

static CLUSTER: OnceLock<Adversarial> = OnceLock::new();
/// One seed at a time: most of them change the whole cluster.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> &'static Adversarial {
    CLUSTER.get_or_init(|| {
        let cluster = start_local_cluster("adversarial");
        Adversarial { base: superuser_base(&cluster), cluster, secrets: tempfile::tempdir().unwrap() }
    })
}

/// The production-shaped database, alone in the cluster as in production (our roles are
/// cluster-wide: another database granting them CONNECT is an audit failure).
async fn production(name: &str) -> DatabaseUrl {
    let cluster = cluster();
    let admin = format!("{}/postgres", cluster.base);
    drop_other_databases(&admin, name).await;
    exec_at(&admin, &format!("DROP DATABASE IF EXISTS {0} WITH (FORCE)", quote_ident(name))).await;
    exec_at(&admin, &format!("CREATE DATABASE {}", quote_ident(name))).await;
    let url = DatabaseUrl::new(format!("{}/{name}", cluster.base));
    runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
    assert!(roles_apply(&url).status.success());
    url
}

/// Drops every database but PostgreSQL's own and `keep`.
pub async fn drop_other_databases(admin_url: &str, keep: &str) {
    let mut conn = PgConnection::connect(admin_url).await.unwrap();
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1', $1)",
    )
    .bind(keep)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for name in others {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

fn roles_apply(url: &DatabaseUrl) -> std::process::Output {
    binary()
        .env("DATABASE_URL", url.expose())
        .args(["roles", "apply", "--secrets-dir", cluster().secrets.path().to_str().unwrap()])
        .output()
        .unwrap()
}

fn password_of(kind: RoleKind) -> String {
    let name = Roles::default().name(kind);
    password::read(&cluster().secrets.path().join(format!("{name}.password"))).unwrap().expose().to_owned()
}

/// A connection as one of our login roles, to `database`.
async fn connect_as(url: &DatabaseUrl, kind: RoleKind, database: &str) -> Result<PgConnection, sqlx::Error> {
    let options = url
        .connect_options()
        .unwrap()
        .username(&Roles::default().name(kind))
        .password(&password_of(kind))
        .database(database);
    sqlx::ConnectOptions::connect(&options).await
}

/// One escalation: what is seeded, the check that must fail and a word its detail names, and
/// the cleanup beyond `roles apply` (empty when `roles apply` removes it alone).
struct Seed {
    what: &'static str,
    sql: &'static str,
    check: &'static str,
    names: &'static str,
    cleanup: &'static str,
}

const SEEDS: &[Seed] = &[
    // Privileges granted ahead of time: the next migration's table would be n8n's.
    Seed {
        what: "n8n gets the owner's next table in public",
        sql: "ALTER DEFAULT PRIVILEGES FOR ROLE cabinet_owner IN SCHEMA public GRANT SELECT ON TABLES TO cabinet_n8n",
        check: "privileges.future",
        names: "cabinet_owner gives cabinet_n8n SELECT on the tables it creates next in schema public",
        cleanup: "",
    },
    Seed {
        what: "n8n may write whatever the admin creates anywhere",
        sql: "ALTER DEFAULT PRIVILEGES FOR ROLE cabinet_admin GRANT INSERT, UPDATE ON TABLES TO cabinet_n8n",
        check: "privileges.future",
        names: "cabinet_admin gives cabinet_n8n INSERT on the tables it creates next in every schema",
        cleanup: "",
    },
    // 9. Predefined roles that reach the operating system or all data.
    Seed {
        what: "n8n may run programs",
        sql: "GRANT pg_execute_server_program TO cabinet_n8n",
        check: "roles.memberships",
        names: "pg_execute_server_program, which runs programs",
        cleanup: "",
    },
    Seed {
        what: "n8n may read server files",
        sql: "GRANT pg_read_server_files TO cabinet_n8n",
        check: "roles.memberships",
        names: "pg_read_server_files",
        cleanup: "",
    },
    Seed {
        what: "admin may write server files",
        sql: "GRANT pg_write_server_files TO cabinet_admin",
        check: "roles.memberships",
        names: "pg_write_server_files",
        cleanup: "",
    },
    Seed {
        what: "n8n may read all data",
        sql: "GRANT pg_read_all_data TO cabinet_n8n",
        check: "roles.memberships",
        names: "pg_read_all_data",
        cleanup: "",
    },
    Seed {
        what: "admin may write all data",
        sql: "GRANT pg_write_all_data TO cabinet_admin",
        check: "roles.memberships",
        names: "pg_write_all_data",
        cleanup: "",
    },
    Seed {
        what: "n8n may kill sessions",
        sql: "GRANT pg_signal_backend TO cabinet_n8n",
        check: "roles.memberships",
        names: "pg_signal_backend",
        cleanup: "",
    },
    Seed {
        what: "owner reaches all data through another role",
        sql: "CREATE ROLE adv_helper NOLOGIN; GRANT pg_read_all_data TO adv_helper; GRANT adv_helper TO cabinet_owner",
        check: "roles.memberships",
        names: "cabinet_owner is a member of pg_read_all_data",
        cleanup: "DROP ROLE adv_helper",
    },
    Seed {
        what: "admin may become a superuser role",
        sql: "CREATE ROLE adv_boss SUPERUSER NOLOGIN; GRANT adv_boss TO cabinet_admin",
        check: "roles.memberships",
        names: "adv_boss, which is a superuser",
        cleanup: "DROP ROLE adv_boss",
    },
    // 10. Functions and views that run as someone else.
    Seed {
        what: "a SECURITY DEFINER function in another schema",
        sql: "CREATE SCHEMA adv_tools; CREATE FUNCTION adv_tools.whoami() RETURNS name LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user'",
        check: "privileges.functions",
        names: "adv_tools.whoami() (SECURITY DEFINER",
        cleanup: "DROP SCHEMA adv_tools CASCADE",
    },
    Seed {
        what: "a view exposing users to n8n",
        sql: "CREATE VIEW public.adv_emails AS SELECT email FROM users; GRANT SELECT ON public.adv_emails TO cabinet_n8n",
        check: "privileges.relations",
        names: "cabinet_n8n may SELECT public.adv_emails (a view",
        cleanup: "DROP VIEW public.adv_emails",
    },
    Seed {
        what: "a materialized view of users readable by everyone",
        sql: "CREATE MATERIALIZED VIEW public.adv_users AS SELECT * FROM users; GRANT SELECT ON public.adv_users TO PUBLIC",
        check: "privileges.relations",
        names: "cabinet_n8n may SELECT public.adv_users (a materialized view",
        cleanup: "DROP MATERIALIZED VIEW public.adv_users",
    },
    // 11. Column-level grants.
    Seed {
        what: "n8n may read e-mails",
        sql: "GRANT SELECT (email) ON users TO cabinet_n8n",
        check: "privileges.columns",
        names: "cabinet_n8n has SELECT (email) on users",
        cleanup: "",
    },
    Seed {
        what: "n8n may change prompts",
        sql: "GRANT UPDATE (ai_prompt) ON sites TO cabinet_n8n",
        check: "privileges.matrix",
        names: "cabinet_n8n has UPDATE on sites",
        cleanup: "",
    },
    Seed {
        what: "everyone may read e-mails",
        sql: "GRANT SELECT (email, user_id) ON users TO PUBLIC",
        check: "privileges.columns",
        names: "PUBLIC has SELECT (email) on users",
        cleanup: "",
    },
    // 12. Other privileged logins.
    Seed {
        what: "another superuser",
        sql: "CREATE ROLE adv_intruder LOGIN SUPERUSER PASSWORD 'intruder-password-123'",
        check: "roles.privileged_logins",
        names: "adv_intruder can log in with SUPERUSER",
        cleanup: "DROP ROLE adv_intruder",
    },
    Seed {
        what: "a BYPASSRLS login",
        sql: "CREATE ROLE adv_bypass LOGIN BYPASSRLS",
        check: "roles.privileged_logins",
        names: "adv_bypass can log in with BYPASSRLS",
        cleanup: "DROP ROLE adv_bypass",
    },
    Seed {
        what: "a REPLICATION login",
        sql: "CREATE ROLE adv_replica LOGIN REPLICATION",
        check: "roles.privileged_logins",
        names: "adv_replica can log in with REPLICATION",
        cleanup: "DROP ROLE adv_replica",
    },
    Seed {
        what: "a cluster's replication role that can do more than replicate",
        sql: "CREATE ROLE cabinet_replicator LOGIN REPLICATION CREATEROLE",
        check: "roles.privileged_logins",
        names: "cabinet_replicator can log in with REPLICATION, CREATEROLE",
        cleanup: "DROP ROLE cabinet_replicator",
    },
    Seed {
        what: "a CREATEROLE login",
        sql: "CREATE ROLE adv_creator LOGIN CREATEROLE",
        check: "roles.privileged_logins",
        names: "adv_creator can log in with CREATEROLE",
        cleanup: "DROP ROLE adv_creator",
    },
    Seed {
        what: "a login member of a superuser role",
        sql: "CREATE ROLE adv_root SUPERUSER NOLOGIN; CREATE ROLE adv_sneaky LOGIN IN ROLE adv_root",
        check: "roles.privileged_logins",
        names: "adv_sneaky can log in and act as adv_root",
        cleanup: "DROP ROLE adv_sneaky; DROP ROLE adv_root",
    },
    // 13. Extensions and objects that open doors.
    Seed {
        what: "dblink",
        sql: "CREATE EXTENSION dblink",
        check: "objects.extensions",
        names: "dblink",
        cleanup: "DROP EXTENSION dblink",
    },
    Seed {
        what: "postgres_fdw with a server and a mapping",
        sql: "CREATE EXTENSION postgres_fdw; CREATE SERVER adv_remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '192.0.2.1'); CREATE USER MAPPING FOR cabinet_n8n SERVER adv_remote",
        check: "objects.foreign_data",
        names: "user mapping for cabinet_n8n on server adv_remote",
        cleanup: "DROP EXTENSION postgres_fdw CASCADE",
    },
    Seed {
        what: "a bare foreign-data wrapper",
        sql: "CREATE FOREIGN DATA WRAPPER adv_wrapper",
        check: "objects.foreign_data",
        names: "foreign-data wrapper adv_wrapper",
        cleanup: "DROP FOREIGN DATA WRAPPER adv_wrapper",
    },
    Seed {
        what: "a publication of users",
        sql: "CREATE PUBLICATION adv_leak FOR TABLE users",
        check: "objects.replication",
        names: "publication adv_leak",
        cleanup: "DROP PUBLICATION adv_leak",
    },
    Seed {
        what: "a subscription",
        sql: "CREATE SUBSCRIPTION adv_in CONNECTION 'host=192.0.2.1 dbname=x' PUBLICATION p WITH (connect = false)",
        check: "objects.replication",
        names: "subscription adv_in",
        cleanup: "ALTER SUBSCRIPTION adv_in SET (slot_name = NONE); DROP SUBSCRIPTION adv_in",
    },
    Seed {
        what: "an event trigger",
        sql: "CREATE FUNCTION public.adv_evt() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$; CREATE EVENT TRIGGER adv_ddl ON ddl_command_start EXECUTE FUNCTION public.adv_evt()",
        check: "objects.event_triggers",
        names: "adv_ddl on ddl_command_start",
        cleanup: "DROP EVENT TRIGGER adv_ddl; DROP FUNCTION public.adv_evt()",
    },
    Seed {
        what: "row-level security on sites",
        sql: "ALTER TABLE sites ENABLE ROW LEVEL SECURITY; ALTER TABLE sites FORCE ROW LEVEL SECURITY",
        check: "schema.drift",
        names: "row-level security is on and forced",
        cleanup: "ALTER TABLE sites NO FORCE ROW LEVEL SECURITY; ALTER TABLE sites DISABLE ROW LEVEL SECURITY",
    },
    Seed {
        what: "a rule on users",
        sql: "CREATE RULE adv_keep AS ON DELETE TO users DO INSTEAD NOTHING",
        check: "schema.drift",
        names: "rule adv_keep",
        cleanup: "DROP RULE adv_keep ON users",
    },
    Seed {
        what: "a trigger on sites",
        sql: "CREATE FUNCTION public.adv_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; CREATE TRIGGER adv_copy BEFORE UPDATE ON sites FOR EACH ROW EXECUTE FUNCTION public.adv_copy()",
        check: "schema.drift",
        names: "trigger adv_copy",
        cleanup: "DROP TRIGGER adv_copy ON sites; DROP FUNCTION public.adv_copy()",
    },
    // 15. Settings a role changed on itself (the seeds run as the role where it can).
    Seed {
        what: "a per-database setting",
        sql: "ALTER ROLE cabinet_admin IN DATABASE postgres SET statement_timeout = 0",
        check: "roles.settings",
        names: "in database postgres: statement_timeout=0",
        cleanup: "",
    },
    // 16. Large objects and other databases.
    Seed {
        what: "large objects for everyone",
        sql: "GRANT EXECUTE ON FUNCTION lo_create(oid), lowrite(integer, bytea) TO PUBLIC",
        check: "public.large_objects",
        names: "cabinet_n8n may run lo_create, lowrite",
        cleanup: "",
    },
    Seed {
        what: "lo_compat_privileges",
        sql: "ALTER DATABASE adversarial SET lo_compat_privileges = on",
        check: "public.large_objects",
        names: "lo_compat_privileges = on",
        cleanup: "ALTER DATABASE adversarial RESET lo_compat_privileges",
    },
    Seed {
        what: "other databases open to everyone",
        sql: "GRANT CONNECT, TEMPORARY ON DATABASE postgres TO PUBLIC",
        check: "public.other_databases",
        names: "cabinet_n8n may connect to database postgres and create temporary tables there",
        cleanup: "",
    },
];

#[tokio::test]
async fn each_escalation_path_fails_the_audit_until_roles_apply_and_cleanup_close_it() {
    let _turn = TURN.lock().await;
    let url = production("adversarial").await;
    let superuser = url.expose().to_owned();
    assert_eq!(audit(&url, &[]), (0, vec![]), "the production-shaped database passes to begin with");

    for seed in SEEDS {
        // Arrange
        exec_at(&superuser, seed.sql).await;

        // Act
        let (code, failed) = audit(&url, &[]);

        // Assert: caught, named; then closed by roles apply and the cleanup.
        assert_eq!(code, 1, "{}: the audit must fail", seed.what);
        assert!(
            failed.iter().any(|(id, detail)| id == seed.check && detail.contains(seed.names)),
            "{}: expected {} naming {:?}, got {failed:#?}",
            seed.what,
            seed.check,
            seed.names
        );
        let applied = roles_apply(&url);
        assert!(applied.status.success(), "{}: {}", seed.what, stderr(&applied));
        if !seed.cleanup.is_empty() {
            exec_at(&superuser, seed.cleanup).await;
        }
        assert_eq!(audit(&url, &[]), (0, vec![]), "{}: roles apply + cleanup must close it", seed.what);
    }
}

/// The audit names what the database holds; a role named with terminal escapes (a careless or
/// hostile superuser made it) is shown escaped, never sent to the operator's terminal raw.
#[tokio::test]
async fn the_audit_shows_hostile_names_escaped() {
    let _turn = TURN.lock().await;
    let url = production("adversarial").await;
    let superuser = url.expose().to_owned();
    exec_at(&superuser, "CREATE ROLE \"adv\x1b]0;owned\x07\u{202e}\" LOGIN SUPERUSER").await;
    let out = binary().env("DATABASE_URL", url.expose()).arg("audit").output().unwrap();
    exec_at(&superuser, "DROP ROLE \"adv\x1b]0;owned\x07\u{202e}\"").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains(r"adv\e]0;owned"), "the role is named, escaped: {text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{202e}'), "{text:?}");
}

/// On a Patroni node, Patroni creates the replication and rewind roles `cluster render` names:
/// the replicator's REPLICATION is by design, and closing PUBLIC's door on `postgres` must not
/// lock pg_rewind out (a former leader could not rejoin).
#[tokio::test]
async fn a_patroni_nodes_own_roles_pass_the_audit_and_keep_pg_rewinds_door() {
    let _turn = TURN.lock().await;
    let url = production("adversarial").await;
    let superuser = url.expose().to_owned();
    exec_at(&superuser, "CREATE ROLE cabinet_replicator LOGIN REPLICATION; CREATE ROLE cabinet_rewind LOGIN")
        .await;
    let applied = roles_apply(&url);
    let result = async {
        assert!(applied.status.success(), "{}", stderr(&applied));
        assert!(
            stdout(&applied).contains("granted CONNECT on database postgres to cabinet_rewind"),
            "{}",
            stdout(&applied)
        );
        let mut conn = PgConnection::connect(&superuser).await.unwrap();
        let (rewind, public): (bool, bool) = sqlx::query_as(
            "SELECT has_database_privilege('cabinet_rewind', 'postgres', 'CONNECT'),
                    has_database_privilege('public', 'postgres', 'CONNECT')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(rewind && !public, "rewind {rewind}, PUBLIC {public}");
        assert_eq!(audit(&url, &[]), (0, vec![]), "the cluster's own roles are by design");
        // A second run has nothing to grant.
        assert!(!stdout(&roles_apply(&url)).contains("granted"));
    };
    let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    exec_at(&superuser, "REVOKE CONNECT ON DATABASE postgres FROM cabinet_rewind; DROP ROLE cabinet_replicator; DROP ROLE cabinet_rewind").await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn n8n_walks_the_paths_it_was_given_and_finds_them_closed_after_roles_apply() {
    let _turn = TURN.lock().await;
    let url = production("walks").await;
    let superuser = url.expose().to_owned();

    // pg_execute_server_program: the read-only role runs a shell command.
    exec_at(&superuser, "GRANT pg_execute_server_program TO cabinet_n8n").await;
    let mut n8n = connect_as(&url, RoleKind::N8n, "walks").await.unwrap();
    sqlx::raw_sql("COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'")
        .execute(&mut n8n)
        .await
        .expect("the grant lets n8n run programs");
    n8n.close().await.unwrap();
    assert!(roles_apply(&url).status.success());
    let mut n8n = connect_as(&url, RoleKind::N8n, "walks").await.unwrap();
    let refused =
        sqlx::raw_sql("COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'").execute(&mut n8n).await.unwrap_err();
    assert!(
        refused.to_string().contains("permission denied")
            || refused.to_string().contains("must be superuser"),
        "{refused}"
    );

    // A SECURITY DEFINER function written by a superuser: n8n makes itself superuser.
    exec_at(
        &superuser,
        "CREATE FUNCTION public.adv_promote(who text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS
           $$ BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', who); END $$",
    )
    .await;
    sqlx::raw_sql("SELECT public.adv_promote('cabinet_n8n')").execute(&mut n8n).await.unwrap();
    let (code, failed) = audit(&url, &[]);
    assert_eq!(code, 1);
    for (check, names) in
        [("roles.attributes", "cabinet_n8n has SUPERUSER"), ("privileges.functions", "adv_promote(text)")]
    {
        assert!(failed.iter().any(|(id, d)| id == check && d.contains(names)), "{check}: {failed:#?}");
    }
    n8n.close().await.unwrap();
    assert!(roles_apply(&url).status.success());
    exec_at(&superuser, "DROP FUNCTION public.adv_promote(text)").await;

    // Its own settings and password: a role needs no privilege to change either.
    let mut n8n = connect_as(&url, RoleKind::N8n, "walks").await.unwrap();
    sqlx::raw_sql("ALTER ROLE cabinet_n8n SET statement_timeout = 0").execute(&mut n8n).await.unwrap();
    sqlx::raw_sql("ALTER ROLE cabinet_n8n PASSWORD 'n8n-chose-its-own-password'")
        .execute(&mut n8n)
        .await
        .unwrap();
    n8n.close().await.unwrap();
    let secrets = ["--secrets-dir", cluster().secrets.path().to_str().unwrap()];
    let (code, failed) = audit(&url, &secrets);
    assert_eq!(code, 1);
    assert!(
        failed.iter().any(|(id, d)| id == "roles.settings" && d.contains("statement_timeout=0")),
        "{failed:#?}"
    );
    assert!(
        failed
            .iter()
            .any(|(id, d)| id == "roles.passwords" && d.contains("cabinet_n8n's password is no longer")),
        "{failed:#?}"
    );
    assert!(roles_apply(&url).status.success());
    let rotated = binary()
        .env("DATABASE_URL", url.expose())
        .args(["roles", "rotate", "cabinet_n8n", "--secrets-dir", cluster().secrets.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert_eq!(audit(&url, &secrets), (0, vec![]));

    // Large objects and the postgres database: open by default, closed by roles apply.
    let mut n8n = connect_as(&url, RoleKind::N8n, "walks").await.unwrap();
    let lo = sqlx::raw_sql("SELECT lo_create(0)").execute(&mut n8n).await.unwrap_err();
    assert!(lo.to_string().contains("permission denied"), "{lo}");
    n8n.close().await.unwrap();
    assert!(
        connect_as(&url, RoleKind::N8n, "postgres").await.is_err(),
        "n8n cannot reach the postgres database"
    );
}

#[tokio::test]
async fn client_authentication_beyond_the_design_fails_and_an_unloaded_file_is_not_trusted() {
    let _turn = TURN.lock().await;
    let url = production("hba").await;
    let hba_path = cluster().cluster.pgdata().join("pg_hba.conf");
    let clean = std::fs::read_to_string(&hba_path).unwrap();
    let _restore = RestoreOnDrop(hba_path.clone(), clean.clone());
    // Rules for our login roles only: the test's own superuser keeps its SCRAM rule.
    let cases: &[(&str, &str, &str)] = &[
        ("local all all trust\n", "pg_hba.local_rules", "(local) allows trust"),
        ("host all cabinet_n8n 127.0.0.1/32 ident\n", "pg_hba.host_rules", "allows ident"),
        (
            "host all cabinet_admin 127.0.0.1/32 ldap ldapserver=ldap.example.com ldapprefix=\"cn=\" ldapsuffix=\",dc=example\"\n",
            "pg_hba.host_rules",
            "allows ldap",
        ),
        ("host all cabinet_admin 127.0.0.1/32 pam\n", "pg_hba.host_rules", "allows pam"),
        (
            "host all cabinet_n8n 127.0.0.1/32 radius radiusservers=192.0.2.1 radiussecrets=s\n",
            "pg_hba.host_rules",
            "allows radius",
        ),
        ("local all all md5\n", "pg_hba.local_rules", "allows md5"),
    ];
    for (rule, check, names) in cases {
        write_and_reload(&url, &hba_path, &format!("{rule}{clean}")).await;
        let (code, failed) = audit(&url, &[]);
        assert_eq!(code, 1, "{rule}");
        // A build without the method (the npm PostgreSQL 14 has no LDAP or PAM) cannot even
        // parse the rule: then the parse error is the failure that names it.
        let method = rule.split_whitespace().nth(4).unwrap_or_default();
        assert!(
            failed.iter().any(|(id, d)| (id == *check && d.contains(names))
                || (id == "pg_hba.errors"
                    && d.contains(&format!("\"{method}\": not supported by this build")))),
            "{rule}: {failed:#?}"
        );
    }
    // peer for everyone is a warning, not a failure (OS users must match role names).
    write_and_reload(&url, &hba_path, &format!("local all all peer\n{clean}")).await;
    assert_eq!(audit(&url, &[]).0, 0);

    // A file changed after the last reload is not what is in force: reload pending.
    write_and_reload(&url, &hba_path, &clean).await;
    std::fs::write(&hba_path, format!("# edited, not reloaded\n{clean}")).unwrap();
    let (code, failed) = audit(&url, &[]);
    assert_eq!(code, 1);
    assert!(
        failed.iter().any(|(id, d)| id == "pg_hba.loaded" && d.contains("reload pending")),
        "{failed:#?}"
    );
    write_and_reload(&url, &hba_path, &clean).await;
    assert_eq!(audit(&url, &[]), (0, vec![]));
}

/// Puts the clean pg_hba.conf back (and has it reloaded) even when a test fails midway, so
/// the tests after it run against a working cluster.
struct RestoreOnDrop(PathBuf, String);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
        let base = cluster().base.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&format!("{base}/postgres")).await {
                    let _ = sqlx::raw_sql("SELECT pg_reload_conf()").execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}

/// Writes pg_hba.conf and waits until a new session sees the reload.
pub async fn write_and_reload(url: &DatabaseUrl, path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    let mut conn = PgConnection::connect(url.expose()).await.unwrap();
    let before: String =
        sqlx::query_scalar("SELECT pg_conf_load_time()::text").fetch_one(&mut conn).await.unwrap();
    sqlx::raw_sql("SELECT pg_reload_conf()").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    for _ in 0..100 {
        let mut fresh = PgConnection::connect(url.expose()).await.unwrap();
        let now: String =
            sqlx::query_scalar("SELECT pg_conf_load_time()::text").fetch_one(&mut fresh).await.unwrap();
        fresh.close().await.unwrap();
        if now != before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not reload its configuration");
}

#[tokio::test]
async fn the_admin_role_runs_the_checks_it_may_and_names_those_that_need_a_superuser() {
    let _turn = TURN.lock().await;
    let url = production("as_admin").await;
    let options = url.connect_options().unwrap();
    let admin = DatabaseUrl::from_parts(
        "cabinet_admin",
        &password_of(RoleKind::Admin),
        options.get_host(),
        options.get_port(),
        "as_admin",
    );

    let out = binary().env("DATABASE_URL", admin.expose()).arg("audit").output().unwrap();
    let json = binary().env("DATABASE_URL", admin.expose()).args(["audit", "--json"]).output().unwrap();
    let status = binary().env("DATABASE_URL", admin.expose()).args(["migrate", "status"]).output().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("permission denied") && !stderr(&out).contains("permission denied"));
    assert!(stdout(&out).contains("need a superuser and did not run as cabinet_admin: "), "{}", stdout(&out));
    assert!(stdout(&out).contains("pg_hba.rules"), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["complete"], false);
    let ran = report["checks"].as_array().unwrap().iter().filter(|c| c["needs_superuser"] == false).count();
    assert!(ran > 25, "the other checks ran: {report:#}");
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("pending: none"), "{}", stdout(&status));
}
