//! `cabinet-db audit` on a cluster of its own: the clean setup passes, and each seeded
//! misconfiguration fails with the check that names it. Several misconfigurations are
//! cluster-wide (listen_addresses, pg_hba, password hashes), so these tests take turns.

use std::sync::OnceLock;

use cabinet_db::{
    db::{DatabaseUrl, quote_ident},
    local_cluster::LocalCluster,
    migrations::{MigrationSet, RunnerOptions, runner},
    roles::{Roles, apply::apply, password::PasswordSources},
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::adversarial::write_and_reload;
use crate::{
    fake_localapi::FakeLocalApi,
    harness::{audit, binary, start_local_cluster, superuser_base},
};

struct AuditCluster {
    cluster: LocalCluster,
    base: String,
    secrets: tempfile::TempDir,
}

static CLUSTER: OnceLock<AuditCluster> = OnceLock::new();
/// One audit at a time: the seeds below change the whole cluster.
static TURN: tokio::sync::Mutex<u32> = tokio::sync::Mutex::const_new(0);

fn audit_cluster() -> &'static AuditCluster {
    CLUSTER.get_or_init(|| {
        let cluster = start_local_cluster("audit");
        AuditCluster { base: superuser_base(&cluster), cluster, secrets: tempfile::tempdir().unwrap() }
    })
}

/// A database set up as production should be: migrated, roles applied.
async fn clean_database(n: u32) -> DatabaseUrl {
    let cluster = audit_cluster();
    let name = format!("audited_{n}");
    // Alone in the cluster, as in production: our roles are cluster-wide, and CONNECT on
    // another database is an audit failure.
    super::adversarial::drop_other_databases(&format!("{}/postgres", cluster.base), &name).await;
    let mut admin = PgConnection::connect(&format!("{}/postgres", cluster.base)).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name)),
        format!("CREATE DATABASE {}", quote_ident(&name)),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
    admin.close().await.unwrap();
    let url = DatabaseUrl::new(format!("{}/{name}", cluster.base));
    runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();
    let sources = PasswordSources { files: vec![], secrets_dir: Some(cluster.secrets.path().to_owned()) };
    apply(&url, &Roles::default(), &sources).await.unwrap();
    url
}

async fn exec(url: &DatabaseUrl, sql: &str) {
    let mut conn = PgConnection::connect(url.expose()).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_clean_setup_passes_the_audit() {
    let mut turn = TURN.lock().await;
    *turn += 1;
    let url = clean_database(*turn).await;

    let (code, failed) = audit(&url, &[]);
    assert_eq!((code, failed), (0, vec![]));

    // With tailscaled answering, the network checks run and pass too (the cluster listens on
    // loopback only).
    let api = FakeLocalApi::start("status-running.json", "serve-config-empty.json");
    let (code, failed) = audit(&url, &["--socket", api.socket.to_str().unwrap()]);
    assert_eq!((code, failed), (0, vec![]));
}

#[tokio::test]
async fn each_seeded_misconfiguration_is_caught() {
    let mut turn = TURN.lock().await;
    let cluster = audit_cluster();
    let hba_path = cluster.cluster.pgdata().join("pg_hba.conf");
    let clean_hba = std::fs::read_to_string(&hba_path).unwrap();

    // (what is seeded, SQL in the database, the check that must fail, a word its detail names, SQL that undoes it)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "listen on every interface",
            "ALTER SYSTEM SET listen_addresses = '*'",
            "listen_addresses.configured",
            "every interface",
            "ALTER SYSTEM RESET listen_addresses",
        ),
        (
            "an md5 password",
            "SET password_encryption = 'md5'; CREATE ROLE audit_md5_victim LOGIN PASSWORD 'md5-victim-password-1'",
            "password.md5_hashes",
            "audit_md5_victim",
            "DROP ROLE audit_md5_victim",
        ),
        (
            "PUBLIC may create in public",
            "GRANT CREATE ON SCHEMA public TO PUBLIC",
            "public.schema_create",
            "PUBLIC",
            "",
        ),
        (
            "n8n may insert",
            "GRANT INSERT ON sites TO cabinet_n8n",
            "privileges.matrix",
            "has INSERT on sites",
            "",
        ),
        (
            "a table for chat history",
            "CREATE TABLE chat_messages (id bigint PRIMARY KEY, body text)",
            "contents.foreign_tables",
            "chat history belongs in the RAG",
            "",
        ),
        (
            "drift",
            "ALTER TABLE sites DROP CONSTRAINT sites_language_tag",
            "schema.drift",
            "sites_language_tag",
            "",
        ),
        (
            "a superuser admin",
            "ALTER ROLE cabinet_admin SUPERUSER",
            "roles.attributes",
            "has SUPERUSER",
            "ALTER ROLE cabinet_admin NOSUPERUSER",
        ),
    ];
    for (what, seed, check, named, undo) in cases {
        *turn += 1;
        let url = clean_database(*turn).await;
        exec(&url, seed).await;

        let (code, failed) = audit(&url, &[]);

        assert_eq!(code, 1, "{what}: the audit must fail");
        assert!(
            failed.iter().any(|(id, detail)| id == check && detail.contains(named)),
            "{what}: expected {check} naming {named:?}, got {failed:?}"
        );
        if !undo.is_empty() {
            exec(&url, undo).await;
        }
    }

    // pg_hba: a trust rule for the whole internet.
    *turn += 1;
    let url = clean_database(*turn).await;
    std::fs::write(&hba_path, format!("host all all 0.0.0.0/0 trust\n{clean_hba}")).unwrap();
    let (code, failed) = audit(&url, &[]);
    write_and_reload(&url, &hba_path, &clean_hba).await;
    assert_eq!(code, 1);
    assert!(
        failed.iter().any(|(id, d)| id == "pg_hba.host_rules" && d.contains("allows trust")),
        "{failed:?}"
    );

    // pg_hba without the final reject.
    let without_reject: String =
        clean_hba.lines().filter(|l| !l.contains("reject")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&hba_path, without_reject).unwrap();
    let (code, failed) = audit(&url, &[]);
    write_and_reload(&url, &hba_path, &clean_hba).await;
    assert_eq!(code, 1);
    assert!(failed.iter().any(|(id, _)| id == "pg_hba.final_reject"), "{failed:?}");

    // Tailscale: Funnel on, and a node that is not connected.
    let funnel = FakeLocalApi::start("status-running.json", "serve-config-funnel.json");
    let (code, failed) = audit(&url, &["--socket", funnel.socket.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(failed.iter().any(|(id, d)| id == "tailscale.funnel" && d.contains(":443")), "{failed:?}");
    let offline = FakeLocalApi::start("status-needs-login.json", "serve-config-empty.json");
    let (code, failed) = audit(&url, &["--socket", offline.socket.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(failed.iter().any(|(id, d)| id == "tailscale.running" && d.contains("NeedsLogin")), "{failed:?}");
    let (code, failed) = audit(&url, &["--socket", "/nonexistent/tailscaled.sock"]);
    assert_eq!(code, 1, "a socket named explicitly must answer");
    assert!(failed.iter().any(|(id, _)| id == "tailscale.available"), "{failed:?}");

    // And with everything undone, the audit passes again.
    assert_eq!(audit(&url, &[]), (0, vec![]));
}

#[test]
fn an_audit_that_cannot_connect_exits_2() {
    let out =
        binary().env("DATABASE_URL", "postgres://nobody:pw@127.0.0.1:1/none").arg("audit").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn public_create_on_schema_public_is_caught_where_it_is_the_default_and_revoked_by_roles_apply() {
    let mut turn = TURN.lock().await;
    *turn += 1;
    let cluster = audit_cluster();
    let name = format!("audited_{}", *turn);
    super::adversarial::drop_other_databases(&format!("{}/postgres", cluster.base), &name).await;
    exec(&DatabaseUrl::new(format!("{}/postgres", cluster.base)), &format!("CREATE DATABASE {name}")).await;
    let url = DatabaseUrl::new(format!("{}/{name}", cluster.base));
    runner::up(&url, &MigrationSet::embedded().unwrap(), None, &RunnerOptions::default()).await.unwrap();

    // PostgreSQL 14 grants it to PUBLIC in every new database; on 15 and later we grant it, as a
    // database restored from 14 would have.
    let mut conn = PgConnection::connect(url.expose()).await.unwrap();
    let version = cabinet_db::compat::server_version_num(&mut conn).await.unwrap();
    let default: bool = sqlx::query_scalar("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(default, version < 150_000, "PUBLIC CREATE is the default exactly before 15");
    if !default {
        exec(&url, "GRANT CREATE ON SCHEMA public TO PUBLIC").await;
    }
    let sources = PasswordSources { files: vec![], secrets_dir: Some(cluster.secrets.path().to_owned()) };
    // Roles exist from other tests on this cluster; this database still has PUBLIC CREATE.
    let before_apply = audit(&url, &[]);
    assert!(before_apply.1.iter().any(|(id, _)| id == "public.schema_create"), "{before_apply:?}");

    apply(&url, &Roles::default(), &sources).await.unwrap();

    assert_eq!(audit(&url, &[]), (0, vec![]));
}
