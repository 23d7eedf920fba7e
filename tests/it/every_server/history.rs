//! The change history, kept by PostgreSQL for every writer: who, what, in which version; bulk
//! writes in one trigger call; append-only for every role of ours; a disabled trigger is
//! drift that `migrate check` and `audit` fail on.

use std::time::Duration;

use cabinet_db::{
    history::{Actor, set_actor},
    models::{SiteId, UserId},
    roles::RoleKind,
    sites::{self, SitePatch},
    users::{self, SeenEvent, record_seen},
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::{TestDb, WithRoles, audit, binary, migrations_dir, run, stderr};

/// (version, operation, actor, session role, changed fields) of a site, oldest first.
async fn site_history(
    conn: &mut PgConnection,
    site_id: &str,
) -> Vec<(i64, String, String, String, Vec<String>)> {
    sqlx::query_as(
        "SELECT version, operation, actor, session_role, changed_fields FROM sites_history
          WHERE site_id = $1 ORDER BY version",
    )
    .bind(site_id)
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(conn).await.map(|_| ())
}

#[tokio::test]
async fn every_writer_is_recorded_with_its_actor_and_versions_count_up() {
    let setup = WithRoles::new().await;
    let admin_name = setup.roles.name(RoleKind::Admin);
    let mut admin = setup.conn(RoleKind::Admin).await;

    // A psql-like session as cabinet_admin: no actor set, so the role is the actor.
    exec(
        &mut admin,
        "INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('h1', 'h1.example.com', 'Be kind')",
    )
    .await
    .unwrap();
    // Our code sets the actor for its transaction.
    exec(
        &mut admin,
        "BEGIN; SELECT set_config('cabinet.actor', 'alice@example.com', true);
         UPDATE sites SET ai_prompt = 'Be brief' WHERE site_id = 'h1'; COMMIT",
    )
    .await
    .unwrap();
    // An UPDATE that changes nothing is no new version; the actor does not outlive its transaction.
    exec(&mut admin, "UPDATE sites SET ai_prompt = 'Be brief' WHERE site_id = 'h1'").await.unwrap();
    exec(&mut admin, "DELETE FROM sites WHERE site_id = 'h1'").await.unwrap();

    let history = site_history(&mut admin, "h1").await;
    let expected = vec![
        (
            1,
            "INSERT".to_owned(),
            admin_name.clone(),
            admin_name.clone(),
            vec!["ai_prompt", "created_at", "domain", "language", "site_id"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            2,
            "UPDATE".to_owned(),
            "alice@example.com".to_owned(),
            admin_name.clone(),
            vec!["ai_prompt".to_owned()],
        ),
        (3, "DELETE".to_owned(), admin_name.clone(), admin_name.clone(), vec![]),
    ];
    assert_eq!(history, expected);
    let (old_prompt, new_prompt): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT old_row ->> 'ai_prompt', new_row ->> 'ai_prompt' FROM sites_history WHERE site_id = 'h1' AND version = 2",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((old_prompt.as_deref(), new_prompt.as_deref()), (Some("Be kind"), Some("Be brief")));

    // A site created again under the same id continues its numbering.
    exec(&mut admin, "INSERT INTO sites (site_id, domain) VALUES ('h1', 'h1.example.com')").await.unwrap();
    assert_eq!(site_history(&mut admin, "h1").await.last().unwrap().0, 4);
    admin.close().await.unwrap();
}

#[tokio::test]
async fn the_library_names_the_actor_it_is_given_over_the_sessions() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    let site_id = SiteId::parse("lib").unwrap();
    let (alice, bob, session) = (
        Actor::new("alice@example.com").unwrap(),
        Actor::new("bob@example.com").unwrap(),
        Actor::new("ops@psql").unwrap(),
    );
    sites::create(&mut conn, Some(&alice), &super::sites::new_site("lib", "lib.example.com")).await.unwrap();
    // The session's actor is the default; a parameter overrides it for that write only.
    set_actor(&mut conn, &session, false).await.unwrap();
    let patch = |prompt: &str| SitePatch { ai_prompt: Some(Some(prompt.to_owned())), ..SitePatch::default() };
    sites::update(&mut conn, Some(&bob), &site_id, &patch("Be brief"), Some(1)).await.unwrap().unwrap();
    sites::update(&mut conn, None, &site_id, &patch("Be kind"), None).await.unwrap().unwrap();
    assert!(sites::delete(&mut conn, Some(&alice), &site_id).await.unwrap());
    exec(&mut conn, "INSERT INTO users (user_id, email) VALUES ('lib-user', 'l@example.com')").await.unwrap();
    assert!(users::delete(&mut conn, Some(&bob), &UserId::parse("lib-user").unwrap()).await.unwrap());

    let actors: Vec<String> = site_history(&mut conn, "lib").await.into_iter().map(|v| v.2).collect();
    assert_eq!(actors, ["alice@example.com", "bob@example.com", "ops@psql", "alice@example.com"]);
    let user_actors: Vec<(String, String)> = sqlx::query_as(
        "SELECT operation, actor FROM users_history WHERE user_id = 'lib-user' ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        user_actors,
        [("INSERT".to_owned(), "ops@psql".to_owned()), ("DELETE".to_owned(), "bob@example.com".to_owned())]
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_data_migration_is_recorded_as_that_migration_and_whoever_ran_it() {
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('m1', 'm1.example.com'), ('m2', 'm2.example.com')")
        .await;
    let dir = migrations_dir(&[
        (
            "0905_backfill_brand.up.sql",
            "UPDATE sites SET brand_name = 'Brand ' || site_id WHERE brand_name IS NULL;\n",
        ),
        (
            "0905_backfill_brand.down.sql",
            "UPDATE sites SET brand_name = NULL WHERE brand_name = 'Brand ' || site_id;\n",
        ),
        (
            "0906_german_m2.up.sql",
            "-- no-transaction\nUPDATE sites SET language = 'de' WHERE site_id = 'm2';\n",
        ),
        (
            "0906_german_m2.down.sql",
            "-- no-transaction\nUPDATE sites SET language = 'en' WHERE site_id = 'm2';\n",
        ),
    ]);
    let up = binary()
        .env("DATABASE_URL", db.url.expose())
        .env("CABINET_ACTOR", "deploy@ci")
        .args(["migrate", "--migrations-dir", dir.path().to_str().unwrap(), "up"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", stderr(&up));

    let mut conn = db.conn().await;
    let m1 = site_history(&mut conn, "m1").await;
    assert_eq!(
        (m1[1].0, m1[1].2.as_str(), m1[1].4.clone()),
        (2, "cabinet-db migrate up 0905_backfill_brand by deploy@ci", vec!["brand_name".to_owned()])
    );
    let m2: Vec<String> = site_history(&mut conn, "m2").await.into_iter().map(|v| v.2).collect();
    assert_eq!(
        m2[1..],
        [
            "cabinet-db migrate up 0905_backfill_brand by deploy@ci",
            "cabinet-db migrate up 0906_german_m2 by deploy@ci"
        ]
    );
    conn.close().await.unwrap();

    // The reviewed offline script says the same to a DBA's psql.
    let sql =
        binary().args(["migrate", "--migrations-dir", dir.path().to_str().unwrap(), "sql"]).output().unwrap();
    let sql = String::from_utf8_lossy(&sql.stdout).into_owned();
    assert!(sql.contains("SET LOCAL cabinet.actor = 'cabinet-db migrate up 0905_backfill_brand';"), "{sql}");
    assert!(sql.contains("SET cabinet.actor = 'cabinet-db migrate up 0906_german_m2';"), "{sql}");
    assert!(sql.contains("RESET cabinet.actor;"), "{sql}");
}

#[tokio::test]
async fn a_bulk_insert_is_one_trigger_call_and_truncate_is_refused_for_a_recorded_delete() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    exec(&mut conn, "SET track_functions = 'pl'").await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    exec(
        &mut tx,
        "INSERT INTO sites (site_id, domain) SELECT 'bulk-' || n, 'bulk-' || n || '.example.com' FROM generate_series(1, 10000) n",
    )
    .await
    .unwrap();
    let calls: i64 =
        sqlx::query_scalar("SELECT pg_stat_get_xact_function_calls('cabinet_sites_history()'::regprocedure)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(calls, 1, "10 000 rows, one statement-level call");
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sites_history WHERE site_id LIKE 'bulk-%' AND version = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(logged, 10_000);

    // TRUNCATE would remove every row unrecorded (recording it meant reading the table as the
    // history's owner): refused, with the statement that does it recorded.
    let refused = exec(&mut conn, "TRUNCATE sites").await.unwrap_err();
    assert!(refused.to_string().contains("TRUNCATE of sites is refused"), "{refused}");
    exec(&mut conn, "DELETE FROM sites").await.unwrap();
    let deleted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sites_history WHERE site_id LIKE 'bulk-%' AND version = 2 AND operation = 'DELETE' AND old_row IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(deleted, 10_000, "the deletion of every row, recorded");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn users_history_records_creation_email_changes_and_deletion_not_activity() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    exec(&mut conn, "INSERT INTO users (user_id, email) VALUES ('u1', 'a@example.com')").await.unwrap();
    // Activity (record_seen three minutes later — within the clock tolerance —, then again
    // within the debounce window) moves only the timestamps: no history.
    let later = chrono::Utc::now() + chrono::Duration::minutes(3);
    for at in [later, later] {
        let event = SeenEvent { user_id: UserId::parse("u1").unwrap(), email: None, at };
        record_seen(&mut conn, &[event], Duration::from_secs(60)).await.unwrap();
    }
    let last_seen_moved: bool =
        sqlx::query_scalar("SELECT last_seen > now() + interval '2 minutes' FROM users WHERE user_id = 'u1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(last_seen_moved);
    exec(&mut conn, "UPDATE users SET email = 'b@example.com' WHERE user_id = 'u1'").await.unwrap();
    exec(&mut conn, "DELETE FROM users WHERE user_id = 'u1'").await.unwrap();
    let rows: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT version, operation, old_email, new_email FROM users_history WHERE user_id = 'u1' ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "INSERT".into(), None, Some("a@example.com".into())),
            (2, "UPDATE".into(), Some("a@example.com".into()), Some("b@example.com".into())),
            (3, "DELETE".into(), Some("b@example.com".into()), None),
        ]
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn eight_concurrent_writers_of_one_site_get_gap_free_versions() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    exec(&mut conn, "INSERT INTO sites (site_id, domain) VALUES ('busy', 'busy.example.com')").await.unwrap();
    let mut writers = Vec::new();
    for writer in 0..8 {
        let url = db.url.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(url.expose()).await.unwrap();
            for round in 0..10 {
                exec(
                    &mut conn,
                    &format!(
                        "UPDATE sites SET ai_prompt = 'writer {writer} round {round}' WHERE site_id = 'busy'"
                    ),
                )
                .await
                .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM sites_history WHERE site_id = 'busy' ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, (1..=81).collect::<Vec<i64>>());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_history_is_append_only_for_every_role_of_ours_and_hidden_from_n8n() {
    let setup = WithRoles::new().await;
    let mut admin = setup.conn(RoleKind::Admin).await;
    exec(&mut admin, "INSERT INTO sites (site_id, domain) VALUES ('kept', 'kept.example.com')")
        .await
        .unwrap();
    assert!(exec(&mut admin, "SELECT * FROM sites_history").await.is_ok(), "the admin reads the history");
    for sql in [
        "UPDATE sites_history SET actor = 'nobody'",
        "DELETE FROM sites_history",
        "TRUNCATE sites_history",
        "INSERT INTO sites_history (site_id, version, operation, actor, session_role) VALUES ('kept', 9, 'INSERT', 'me', 'me')",
        "UPDATE users_history SET old_email = NULL",
        "SELECT cabinet_sites_history()",
    ] {
        let err = exec(&mut admin, sql).await.unwrap_err();
        assert_eq!(cabinet_db::db::sqlstate(&err).as_deref(), Some("42501"), "{sql}: {err}");
    }
    // No login role can become the history's owner.
    let err =
        exec(&mut admin, &format!("SET ROLE {}", setup.roles.name(RoleKind::Historian))).await.unwrap_err();
    assert_eq!(cabinet_db::db::sqlstate(&err).as_deref(), Some("42501"), "{err}");
    let mut n8n = setup.conn(RoleKind::N8n).await;
    let err = exec(&mut n8n, "SELECT * FROM sites_history").await.unwrap_err();
    assert_eq!(cabinet_db::db::sqlstate(&err).as_deref(), Some("42501"), "{err}");
    // A session acting as the owner — what every migration is — owns the schema's tables but
    // not the history's: every setting it can make and every role switch it can try changes
    // nothing.
    let mut superuser = setup.db.conn().await;
    let historian = setup.roles.name(RoleKind::Historian);
    exec(&mut superuser, &format!("SET ROLE {}", setup.roles.name(RoleKind::Owner))).await.unwrap();
    exec(&mut superuser, "SET cabinet.history_maintenance = on").await.unwrap();
    for sql in [
        "UPDATE sites_history SET actor = 'nobody'".to_owned(),
        "DELETE FROM sites_history".to_owned(),
        "TRUNCATE users_history".to_owned(),
        "DELETE FROM history_prunes".to_owned(),
        "INSERT INTO history_prunes (actor, session_role, before, sites_rows, users_rows) VALUES ('me', 'me', now(), 0, 0)".to_owned(),
        "ALTER TABLE sites_history DISABLE TRIGGER append_only".to_owned(),
        "ALTER TABLE sites_history OWNER TO CURRENT_USER".to_owned(),
        "CREATE OR REPLACE FUNCTION cabinet_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$".to_owned(),
        "ALTER FUNCTION cabinet_scrub_forgotten(text[]) SECURITY INVOKER".to_owned(),
        format!("GRANT {historian} TO CURRENT_USER"),
    ] {
        let err = exec(&mut superuser, &sql).await.expect_err(&sql);
        assert_eq!(cabinet_db::db::sqlstate(&err).as_deref(), Some("42501"), "{sql}: {err}");
    }
    // A closer match planted in public (the owner may create there) is never what the
    // history's functions call: they resolve names in pg_catalog only.
    exec(
        &mut superuser,
        "CREATE FUNCTION public.to_jsonb(s record) RETURNS jsonb LANGUAGE plpgsql AS $f$
         BEGIN
             PERFORM set_config('cabinet.history_maintenance', 'on', true);
             UPDATE public.sites_history SET actor = 'forged-by-owner';
             RETURN pg_catalog.to_jsonb(s);
         END $f$",
    )
    .await
    .unwrap();
    exec(&mut superuser, "UPDATE sites SET brand_name = 'Planted' WHERE site_id = 'kept'").await.unwrap();
    exec(&mut superuser, "DROP FUNCTION public.to_jsonb(record)").await.unwrap();
    let forged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sites_history WHERE actor = 'forged-by-owner'")
            .fetch_one(&mut superuser)
            .await
            .unwrap();
    assert_eq!(forged, 0, "the planted function ran as the history's owner");
    // A superuser who sets the maintenance flag is refused too: only the history's own
    // functions, running as its owner, pass the guard (a superuser can still SET ROLE to it:
    // docs/security.md says what a superuser can do).
    exec(&mut superuser, "RESET ROLE").await.unwrap();
    for sql in ["UPDATE sites_history SET actor = 'nobody'", "DELETE FROM users_history"] {
        let err = exec(&mut superuser, sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    exec(&mut superuser, "RESET cabinet.history_maintenance").await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sites_history WHERE site_id = 'kept'")
        .fetch_one(&mut superuser)
        .await
        .unwrap();
    assert_eq!(count, 2, "the insert and the planted function's update, nothing else");

    // Disabling a trigger (the owner may) is drift: migrate check and the audit fail on it.
    exec(&mut superuser, "ALTER TABLE sites DISABLE TRIGGER history_update").await.unwrap();
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let shown = format!("{}{}", crate::harness::stdout(&check), stderr(&check));
    assert!(shown.contains("history_update") && shown.contains("disabled"), "{shown}");
    let (code, failed) = audit(&setup.db.url, &[]);
    assert_eq!(code, 1);
    assert!(failed.iter().any(|(_, detail)| detail.contains("history_update")), "{failed:?}");
    exec(&mut superuser, "ALTER TABLE sites ENABLE TRIGGER history_update").await.unwrap();
    let clean = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));

    // A trigger function replaced by one that records nothing (same name, same header) is
    // drift too.
    exec(
        &mut superuser,
        "CREATE OR REPLACE FUNCTION cabinet_users_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
         SET search_path = pg_catalog, public, pg_temp AS $body$ BEGIN RETURN NULL; END $body$",
    )
    .await
    .unwrap();
    let replaced = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(replaced.status.code(), Some(1), "{}", stderr(&replaced));
    let shown = format!("{}{}", crate::harness::stdout(&replaced), stderr(&replaced));
    assert!(shown.contains("function cabinet_users_history() differs"), "{shown}");
    for conn in [admin, n8n, superuser] {
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn the_migration_makes_what_exists_version_1() {
    let db = TestDb::empty().await;
    let set = cabinet_db::migrations::MigrationSet::embedded().unwrap();
    let options = cabinet_db::migrations::RunnerOptions::default();
    cabinet_db::migrations::runner::up(&db.url, &set, Some(3), &options).await.unwrap();
    db.exec(
        "INSERT INTO sites (site_id, domain, brand_name) VALUES ('old', 'old.example.com', 'Old');
         INSERT INTO users (user_id, email) VALUES ('old-user', 'old@example.com')",
    )
    .await;
    cabinet_db::migrations::runner::up(&db.url, &set, None, &options).await.unwrap();
    let mut conn = db.conn().await;
    let site = site_history(&mut conn, "old").await;
    assert_eq!(site.len(), 1);
    assert_eq!(
        (site[0].0, site[0].1.as_str(), site[0].2.as_str()),
        (1, "INSERT", "cabinet-db (history begins)")
    );
    let user: (i64, Option<String>) =
        sqlx::query_as("SELECT version, new_email FROM users_history WHERE user_id = 'old-user'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(user, (1, Some("old@example.com".into())));
    conn.close().await.unwrap();
}

/// `cabinet-db sites …` against `url` as `actor`.
fn sites_cli(url: &cabinet_db::db::DatabaseUrl, actor: &str, args: &[&str]) -> std::process::Output {
    binary()
        .env("DATABASE_URL", url.expose())
        .env("CABINET_ACTOR", actor)
        .arg("sites")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_cli_names_its_actor_and_expect_version_lets_exactly_one_racer_win() {
    let db = TestDb::migrated().await;
    let add =
        sites_cli(&db.url, "alice@example.com", &["add", "race", "--domain", "race.example.com", "--json"]);
    assert!(add.status.success(), "{}", stderr(&add));
    let created: serde_json::Value = serde_json::from_str(&crate::harness::stdout(&add)).unwrap();
    assert_eq!(created["version"], 1, "every read carries the version");
    let mut conn = db.conn().await;
    assert_eq!(site_history(&mut conn, "race").await[0].2, "alice@example.com");

    // Two editors read version 1 and race: exactly one wins, the other is told who and what.
    let racers: Vec<_> = [("bob", "Prompt B"), ("carol", "Prompt C")]
        .into_iter()
        .map(|(who, prompt)| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                sites_cli(&url, who, &["set", "race", "--ai-prompt", prompt, "--expect-version", "1"])
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|o| o.status.success()).collect();
    let losers: Vec<_> = results.iter().filter(|o| !o.status.success()).collect();
    assert_eq!((winners.len(), losers.len()), (1, 1), "{results:?}");
    let message = stderr(losers[0]);
    assert!(
        message.contains("is at version 2, not 1")
            && message.contains("changed ai_prompt")
            && message.contains("Nothing was written"),
        "{message}"
    );
    assert!(message.contains("by bob") || message.contains("by carol"), "{message}");
    let history = site_history(&mut conn, "race").await;
    assert_eq!(history.len(), 2, "the loser wrote nothing: {history:?}");
    // Without --expect-version today's behaviour stays: the last write wins.
    let plain = sites_cli(&db.url, "dave", &["set", "race", "--brand-name", "Race"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn revert_restore_and_their_refusals() {
    let db = TestDb::migrated().await;
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}{}", crate::harness::stdout(&out), stderr(&out));
        crate::harness::stdout(&out)
    };
    ok(sites_cli(
        &db.url,
        "alice",
        &["add", "rev", "--domain", "rev.example.com", "--ai-prompt", "one\ntwo"],
    ));
    for prompt in ["one\nTWO", "one\nthree", "four"] {
        ok(sites_cli(&db.url, "bob", &["set", "rev", "--ai-prompt", prompt]));
    }
    // Without --yes nothing is written.
    let dry = sites_cli(&db.url, "carol", &["revert", "rev", "--to", "1"]);
    assert_eq!(dry.status.code(), Some(1));
    let mut conn = db.conn().await;
    assert_eq!(site_history(&mut conn, "rev").await.len(), 4);
    ok(sites_cli(&db.url, "carol", &["revert", "rev", "--to", "1", "--yes"]));
    let history = site_history(&mut conn, "rev").await;
    assert_eq!(history.len(), 5);
    let (v1, now): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT (SELECT new_row FROM sites_history WHERE site_id = 'rev' AND version = 1),
                (SELECT to_jsonb(s) FROM sites s WHERE site_id = 'rev')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(now, v1, "the row equals version 1");
    let restores: Option<i64> = sqlx::query_scalar(
        "SELECT restores_version FROM sites_history WHERE site_id = 'rev' AND version = 5",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(restores, Some(1));
    let diff = ok(sites_cli(&db.url, "x", &["history", "rev", "--diff"]));
    assert!(
        diff.contains("- two") && diff.contains("+ TWO") && diff.contains("restores version 1"),
        "{diff}"
    );
    assert!(diff.contains("by carol"), "{diff}");

    // Deleted, then restored as it was; its domain taken meanwhile is explained, not violated.
    ok(sites_cli(&db.url, "x", &["rm", "rev", "--yes"]));
    ok(sites_cli(&db.url, "x", &["add", "thief", "--domain", "rev.example.com"]));
    let taken = sites_cli(&db.url, "x", &["restore", "rev"]);
    assert!(!taken.status.success());
    assert!(stderr(&taken).contains("now belongs to site thief"), "{}", stderr(&taken));
    ok(sites_cli(&db.url, "x", &["rm", "thief", "--yes"]));
    ok(sites_cli(&db.url, "x", &["restore", "rev"]));
    let back: serde_json::Value = sqlx::query_scalar("SELECT to_jsonb(s) FROM sites s WHERE site_id = 'rev'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(back, v1, "restored as it was before the deletion, created_at included");
    for (args, expected) in [
        (vec!["revert", "rev", "--to", "99", "--yes"], "has no version 99"),
        (vec!["revert", "rev", "--to", "6", "--yes"], "is its deletion"),
        (vec!["revert", "ghost", "--to", "1", "--yes"], "does not exist now"),
        (vec!["restore", "rev"], "exists; revert it"),
    ] {
        let out = sites_cli(&db.url, "x", &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_import_is_recorded_with_its_actor() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.csv");
    let mut csv = String::from("site_id,domain\n");
    for n in 0..10_000 {
        csv.push_str(&format!("imp-{n},imp-{n}.example.com\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let out = sites_cli(&db.url, "importer@ci", &["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut conn = db.conn().await;
    let (count, actors): (i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*), array_agg(DISTINCT actor) FROM sites_history WHERE site_id LIKE 'imp-%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((count, actors), (10_000, vec!["importer@ci".to_owned()]));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_forgotten_user_leaves_no_email_anywhere_and_prune_keeps_the_newest_versions() {
    let setup = WithRoles::new().await;
    let admin_url = setup.url_as(RoleKind::Admin);
    let mut admin = setup.conn(RoleKind::Admin).await;
    exec(&mut admin, "INSERT INTO users (user_id, email) VALUES ('gone', 'secret.person@example.com')")
        .await
        .unwrap();
    exec(&mut admin, "UPDATE users SET email = 'other.secret@example.com' WHERE user_id = 'gone'")
        .await
        .unwrap();
    exec(&mut admin, "INSERT INTO users (user_id, email) VALUES ('stays', 'stays@example.com')")
        .await
        .unwrap();
    // The admin panel's role may forget a user (and nothing else of the history's maintenance).
    let forget = binary()
        .env("DATABASE_URL", admin_url.expose())
        .env("CABINET_ACTOR", "dpo@example.com")
        .args(["users", "forget", "gone", "--yes"])
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", stderr(&forget));
    // No trace of either address in any text of any table of ours.
    let mut superuser = setup.db.conn().await;
    for table in ["sites", "users", "sites_history", "users_history", "history_prunes"] {
        let hits: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} t WHERE t::text ILIKE '%secret%'"
        )))
        .fetch_one(&mut superuser)
        .await
        .unwrap();
        assert_eq!(hits, 0, "{table} still holds the forgotten e-mail");
    }
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT operation, forgotten_by FROM users_history WHERE user_id = 'gone' ORDER BY version",
    )
    .fetch_all(&mut superuser)
    .await
    .unwrap();
    let expected = vec![
        ("INSERT".to_owned(), Some("dpo@example.com".to_owned())),
        ("UPDATE".to_owned(), Some("dpo@example.com".to_owned())),
        ("DELETE".to_owned(), Some("dpo@example.com".to_owned())),
    ];
    assert_eq!(rows, expected, "the rows stay, saying who forgot the user");
    let shown =
        binary().env("DATABASE_URL", admin_url.expose()).args(["users", "history", "gone"]).output().unwrap();
    assert!(crate::harness::stdout(&shown).contains("forgotten at"), "{}", crate::harness::stdout(&shown));

    // Prune: refused to the admin; as the owner it keeps each record's newest version and
    // records itself.
    let refused = binary()
        .env("DATABASE_URL", admin_url.expose())
        .args(["history", "prune", "--before", "9999-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("only the owner role or a superuser"), "{}", stderr(&refused));
    exec(&mut superuser, &format!("SET ROLE {}", setup.roles.name(RoleKind::Owner))).await.unwrap();
    let removed: i64 = sqlx::query_scalar("SELECT cabinet_prune_history(now() + interval '1 day')")
        .fetch_one(&mut superuser)
        .await
        .unwrap();
    assert_eq!(removed, 2, "gone's versions 1 and 2 go; every newest version stays");
    let left: Vec<(String, i64)> =
        sqlx::query_as("SELECT user_id, version FROM users_history ORDER BY user_id, version")
            .fetch_all(&mut superuser)
            .await
            .unwrap();
    assert_eq!(left, vec![("gone".to_owned(), 3), ("stays".to_owned(), 1)]);
    let prunes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM history_prunes").fetch_one(&mut superuser).await.unwrap();
    assert_eq!(prunes, 1);
    for conn in [admin, superuser] {
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_hostile_actor_is_refused_before_anything_is_written() {
    let db = TestDb::migrated().await;
    for actor in ["evil\u{1b}[2J", "line\nbreak", "zero\u{200b}width", "", &"x".repeat(201)] {
        let out = sites_cli(&db.url, actor, &["add", "never", "--domain", "never.example.com"]);
        assert!(!out.status.success(), "{actor:?}");
        assert!(stderr(&out).contains("actor"), "{actor:?}: {}", stderr(&out));
    }
    let mut conn = db.conn().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 0);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn ids_are_permanent_and_forget_follows_a_person_renamed_before_they_were() {
    // Arrange: a database at 0010, where a rename was still possible, and one made there.
    let db = TestDb::empty().await;
    let out = run(&db.url, &["migrate", "up", "--to", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    db.exec(
        "INSERT INTO users (user_id, email) VALUES ('zitadel-old', 'secret.person@example.com'), ('bystander', 'other@example.com');
         UPDATE users SET user_id = 'zitadel-new' WHERE user_id = 'zitadel-old';
         BEGIN; DELETE FROM users WHERE user_id = 'bystander'; INSERT INTO users (user_id, email) VALUES ('newcomer', 'newcomer@example.com'); COMMIT;",
    )
    .await;
    let out = run(&db.url, &["migrate", "up"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Ids cannot change any more, for any writer; an update that keeps them passes.
    let mut conn = db.conn().await;
    for sql in [
        "UPDATE users SET user_id = 'zitadel-newer' WHERE user_id = 'zitadel-new'",
        "INSERT INTO sites (site_id, domain) VALUES ('s1', 's1.example.com'); UPDATE sites SET site_id = 's2' WHERE site_id = 's1'",
    ] {
        let refused = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap_err();
        assert!(
            refused.to_string().contains("cannot change")
                && refused.to_string().contains("ids are permanent"),
            "{refused}"
        );
    }
    exec(
        &mut conn,
        "UPDATE users SET user_id = user_id, email = 'still@example.com' WHERE user_id = 'newcomer'",
    )
    .await
    .unwrap();

    // Forgetting the old id follows the rename: no e-mail of the person's anywhere; the
    // bystander deleted in another transaction's pair with another address stays untouched.
    let out = run(&db.url, &["--json", "users", "forget", "zitadel-old", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The report names what it scrubbed: both ids, the user row under the new one.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<(String, bool, bool)> = report["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["user_id"].as_str().unwrap().to_owned(),
                i["user_row_deleted"].as_bool().unwrap(),
                i["history_rows_scrubbed"].as_i64().unwrap() > 0,
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("zitadel-new".to_owned(), true, true), ("zitadel-old".to_owned(), false, true)],
        "{report}"
    );
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM users WHERE user_id IN ('zitadel-old', 'zitadel-new'))
              + (SELECT count(*) FROM users_history WHERE 'secret.person@example.com' IN (old_email, new_email))",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0, "the person is gone under both ids");
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users_history WHERE 'other@example.com' IN (old_email, new_email) OR 'newcomer@example.com' IN (old_email, new_email)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(others >= 2, "other people's addresses stay");
}

#[tokio::test]
async fn a_session_cannot_record_a_false_mark_or_an_actor_the_cli_would_refuse() {
    let setup = WithRoles::new().await;
    let mut admin = setup.conn(RoleKind::Admin).await;
    exec(&mut admin, "INSERT INTO sites (site_id, domain, ai_prompt) VALUES ('m1', 'm1.example.com', 'One')")
        .await
        .unwrap();
    exec(&mut admin, "UPDATE sites SET ai_prompt = 'Two' WHERE site_id = 'm1'").await.unwrap();
    for (setting, value, says) in [
        ("cabinet.mark", "restores:1".to_owned(), "is not that version's row"),
        ("cabinet.mark", "merges:7".to_owned(), "which the history does not hold"),
        ("cabinet.actor", "x".repeat(201), "1-200 visible characters"),
        ("cabinet.actor", "eve\u{1b}[2J@example.com".to_owned(), "1-200 visible characters"),
        ("cabinet.actor", "   ".to_owned(), "1-200 visible characters"),
    ] {
        let sql = format!(
            "BEGIN; SELECT set_config('{setting}', {}, true); UPDATE sites SET ai_prompt = 'Forged' WHERE site_id = 'm1'; COMMIT;",
            sqlx::query_scalar::<_, String>("SELECT quote_literal($1)")
                .bind(&value)
                .fetch_one(&mut admin)
                .await
                .unwrap()
        );
        let refused = exec(&mut admin, &sql).await.unwrap_err();
        assert!(refused.to_string().contains(says), "{setting} = {value:?}: {refused}");
        let _ = exec(&mut admin, "ROLLBACK").await;
    }
    let (prompt, versions): (String, i64) = sqlx::query_as(
        "SELECT ai_prompt, (SELECT count(*) FROM sites_history WHERE site_id = 'm1') FROM sites WHERE site_id = 'm1'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((prompt.as_str(), versions), ("Two", 2), "nothing forged was written");
    // The honest mark of a revert still records.
    let out = run(&setup.url_as(RoleKind::Admin), &["sites", "revert", "m1", "--to", "1", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_write_past_the_history_and_a_deleted_version_are_found_by_migrate_check_and_the_audit() {
    // Arrange: a site with three versions and a user, written through the triggers.
    let setup = WithRoles::new().await;
    let mut superuser = setup.db.conn().await;
    for sql in [
        "INSERT INTO sites (site_id, domain) VALUES ('watched', 'watched.example.com')",
        "UPDATE sites SET brand_name = 'One' WHERE site_id = 'watched'",
        "UPDATE sites SET brand_name = 'Two' WHERE site_id = 'watched'",
        "INSERT INTO users (user_id, email) VALUES ('watched-user', 'w@example.com')",
    ] {
        exec(&mut superuser, sql).await.unwrap();
    }
    let clean = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", crate::harness::stdout(&clean));

    // Act 1: the owner (any migration session) turns the triggers off, writes, turns them on.
    exec(&mut superuser, &format!("SET ROLE {}", setup.roles.name(RoleKind::Owner))).await.unwrap();
    for sql in [
        "ALTER TABLE sites DISABLE TRIGGER USER",
        "UPDATE sites SET brand_name = 'Unseen' WHERE site_id = 'watched'",
        "INSERT INTO sites (site_id, domain) VALUES ('sneaked-in', 'sneaked.example.com')",
        "ALTER TABLE sites ENABLE TRIGGER USER",
        "ALTER TABLE users DISABLE TRIGGER USER",
        "UPDATE users SET email = 'elsewhere@example.com' WHERE user_id = 'watched-user'",
        "ALTER TABLE users ENABLE TRIGGER USER",
    ] {
        exec(&mut superuser, sql).await.unwrap();
    }
    exec(&mut superuser, "RESET ROLE").await.unwrap();

    // Assert 1: both commands fail, naming each record and what differs.
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(1));
    let said = crate::harness::stdout(&check);
    for expected in [
        "site 'watched': differs from its newest version (3) in brand_name",
        "site 'sneaked-in': exists but has no history",
        "user 'watched-user': has an e-mail address its newest version (1) does not record",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    let (code, failed) = audit(&setup.db.url, &[]);
    assert_eq!(code, 1);
    assert!(
        failed.iter().any(|(id, detail)| id == "history.heads" && detail.contains("'watched'")),
        "{failed:?}"
    );

    // Act 2: a superuser deletes a middle version the only way the guard lets through (as the
    // history's owner, with the maintenance flag), after the state is recorded again.
    exec(&mut superuser, "UPDATE sites SET brand_name = 'Recorded' WHERE site_id = 'watched'").await.unwrap();
    exec(&mut superuser, "DELETE FROM sites WHERE site_id = 'sneaked-in'").await.unwrap();
    exec(&mut superuser, "UPDATE users SET email = 'w@example.com' WHERE user_id = 'watched-user'")
        .await
        .unwrap();
    let mut tx = superuser.begin().await.unwrap();
    exec(&mut tx, &format!("SET LOCAL ROLE {}", setup.roles.name(RoleKind::Historian))).await.unwrap();
    exec(&mut tx, "SET LOCAL cabinet.history_maintenance = on").await.unwrap();
    exec(&mut tx, "DELETE FROM sites_history WHERE site_id = 'watched' AND version = 2").await.unwrap();
    tx.commit().await.unwrap();

    // Assert 2: the gap is named; nothing else is left.
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(1));
    let said = crate::harness::stdout(&check);
    assert!(said.contains("site 'watched': version 2 missing (before version 3"), "{said}");
    assert!(!said.contains("differs") && !said.contains("no history"), "{said}");
    let (code, failed) = audit(&setup.db.url, &[]);
    assert_eq!(code, 1);
    assert!(failed.iter().any(|(id, _)| id == "history.versions"), "{failed:?}");

    // A prune that removed nothing, or ran with a cut-off before the missing version, explains
    // nothing; a real one explains the beginning it removed.
    exec(&mut superuser, "SELECT cabinet_prune_history('2000-01-01')").await.unwrap();
    assert_eq!(run(&setup.db.url, &["migrate", "check"]).status.code(), Some(1), "a prune of nothing");
    // A real prune would remove the only trace of the unrecorded write (versions 3 and 4 do
    // not meet): it refuses, naming them.
    let refused =
        exec(&mut superuser, "SELECT cabinet_prune_history(now() + interval '1 day')").await.unwrap_err();
    assert!(refused.to_string().contains("site 'watched', versions 3 and 4 do not meet"), "{refused}");
    superuser.close().await.unwrap();
}

#[tokio::test]
async fn forget_leaves_none_of_the_persons_addresses_in_the_history_and_names_the_sites_that_mention_one() {
    // Arrange: a person with three addresses over time, who also made changes under two of
    // them (as the actor), and a site whose content mentions the first.
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    for sql in [
        "INSERT INTO users (user_id, email) VALUES ('fu1', 'first@example.com')",
        "UPDATE users SET email = 'second@example.com' WHERE user_id = 'fu1'",
        "UPDATE users SET email = 'third@example.com' WHERE user_id = 'fu1'",
        "INSERT INTO sites (site_id, domain, brand_name) VALUES ('theirs', 'theirs.example.com', 'Contact first@example.com')",
        "INSERT INTO users (user_id, email) VALUES ('bystander', 'other@example.com')",
    ] {
        exec(&mut conn, sql).await.unwrap();
    }
    for (n, actor) in ["third@example.com", "Second@Example.com"].into_iter().enumerate() {
        let mut tx = conn.begin().await.unwrap();
        set_actor(&mut tx, &Actor::new(actor).unwrap(), true).await.unwrap();
        exec(&mut tx, "UPDATE sites SET ai_prompt = coalesce(ai_prompt, '') || 'x' WHERE site_id = 'theirs'")
            .await
            .unwrap();
        exec(
            &mut tx,
            &format!("UPDATE users SET email = 'other{n}@example.com' WHERE user_id = 'bystander'"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    // Act
    let out = run(&db.url, &["users", "forget", "fu1", "--yes"]);

    // Assert: no address of theirs in the users, their history or any actor; the site whose
    // content (and that content's history) mentions one is named, not rewritten.
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout_of(&out);
    assert!(said.contains("fu1: user row deleted, 4 history rows and 4 actor fields scrubbed"), "{said}");
    assert!(said.contains("still mentioned in the content of site(s) theirs"), "{said}");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT to_jsonb(t)::text AS row FROM users t UNION ALL SELECT to_jsonb(t)::text FROM users_history t
             UNION ALL SELECT t.actor FROM sites_history t
             UNION ALL SELECT to_jsonb(t)::text FROM history_prunes t) r
          WHERE r.row ~* '(first|second|third)@example\\.com'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0, "an address of the person survived");
    let bystander: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users_history WHERE user_id = 'bystander' AND actor = 'a forgotten user'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        bystander, 2,
        "changes the person made to someone else's record keep no address of theirs either"
    );
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_hidden_write_an_unrelated_prune_and_the_owners_code_in_forget_are_all_caught() {
    let setup = WithRoles::new().await;
    let mut superuser = setup.db.conn().await;
    let owner = setup.roles.name(RoleKind::Owner);
    exec(
        &mut superuser,
        "INSERT INTO sites (site_id, domain, brand_name) VALUES ('g3', 'g3.example.com', 'v1')",
    )
    .await
    .unwrap();

    // A write with the triggers off, then a recorded one on top: the newest version matches
    // the row, but the two versions do not meet.
    exec(&mut superuser, &format!("SET ROLE {owner}")).await.unwrap();
    for sql in [
        "ALTER TABLE sites DISABLE TRIGGER history_update",
        "UPDATE sites SET brand_name = 'sneaky' WHERE site_id = 'g3'",
        "ALTER TABLE sites ENABLE TRIGGER history_update",
    ] {
        exec(&mut superuser, sql).await.unwrap();
    }
    exec(&mut superuser, "RESET ROLE").await.unwrap();
    exec(&mut superuser, "UPDATE sites SET ai_prompt = 'on top' WHERE site_id = 'g3'").await.unwrap();
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(1));
    let said = crate::harness::stdout(&check);
    assert!(
        said.contains("site 'g3': version 2 found it otherwise than version 1 left it (in brand_name)"),
        "{said}"
    );

    // A site created after a prune's cut-off cannot have lost its first versions to it.
    exec(&mut superuser, "INSERT INTO sites (site_id, domain) VALUES ('old', 'old.example.com')")
        .await
        .unwrap();
    exec(&mut superuser, "UPDATE sites SET brand_name = 'x' WHERE site_id = 'old'").await.unwrap();
    let cut_off: String =
        sqlx::query_scalar("SELECT clock_timestamp()::text").fetch_one(&mut superuser).await.unwrap();
    exec(
        &mut superuser,
        "INSERT INTO sites (site_id, domain, brand_name) VALUES ('g2', 'g2.example.com', 'a')",
    )
    .await
    .unwrap();
    exec(&mut superuser, "UPDATE sites SET brand_name = 'b' WHERE site_id = 'g2'").await.unwrap();
    exec(&mut superuser, "UPDATE sites SET brand_name = 'c' WHERE site_id = 'g2'").await.unwrap();
    let mut tx = superuser.begin().await.unwrap();
    exec(&mut tx, &format!("SET LOCAL ROLE {}", setup.roles.name(RoleKind::Historian))).await.unwrap();
    exec(&mut tx, "SET LOCAL cabinet.history_maintenance = on").await.unwrap();
    exec(&mut tx, "DELETE FROM sites_history WHERE site_id = 'g2' AND version < 3").await.unwrap();
    tx.commit().await.unwrap();
    // A prune that would remove g3's first version — the only trace of its hidden write —
    // refuses; g2's missing versions stay named.
    let refused = exec(&mut superuser, &format!("SELECT cabinet_prune_history('{cut_off}'::timestamptz)"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("site 'g3', versions 1 and 2 do not meet"), "{refused}");
    let check = run(&setup.db.url, &["migrate", "check"]);
    let said = crate::harness::stdout(&check);
    assert!(said.contains("site 'g2': versions 1-2 missing"), "{said}");

    // Code the owner attaches to users or sites runs as forget's caller, never as the
    // history's owner: it cannot touch the history.
    exec(&mut superuser, &format!("SET ROLE {owner}")).await.unwrap();
    for sql in [
        "CREATE TABLE public.caught (who text)",
        "GRANT INSERT ON public.caught TO PUBLIC",
        "CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN
             INSERT INTO public.caught VALUES (current_user);
             BEGIN
                 PERFORM set_config('cabinet.history_maintenance', 'on', true);
                 UPDATE public.sites_history SET actor = 'framed';
             EXCEPTION WHEN OTHERS THEN NULL;
             END;
             RETURN NULL;
         END $f$",
        "CREATE TRIGGER zz_evil AFTER DELETE ON public.users FOR EACH ROW EXECUTE FUNCTION public.evil()",
    ] {
        exec(&mut superuser, sql).await.unwrap();
    }
    exec(&mut superuser, "RESET ROLE").await.unwrap();
    exec(&mut superuser, "INSERT INTO users (user_id, email) VALUES ('victim', 'victim@example.com')")
        .await
        .unwrap();
    let forget = run(&setup.url_as(RoleKind::Admin), &["users", "forget", "victim", "--yes"]);
    assert!(forget.status.success(), "{}", stderr(&forget));
    let (who, framed): (String, i64) = sqlx::query_as(
        "SELECT (SELECT string_agg(who, ',') FROM caught), (SELECT count(*) FROM sites_history WHERE actor = 'framed')",
    )
    .fetch_one(&mut superuser)
    .await
    .unwrap();
    assert_eq!(who, setup.roles.name(RoleKind::Admin), "the owner's trigger ran as forget's caller");
    assert_eq!(framed, 0, "the history was not touched");
    superuser.close().await.unwrap();
}

#[tokio::test]
async fn a_type_of_the_owners_never_brings_its_cast_into_the_history_or_the_checks_and_time_zones_do_not_count()
 {
    let setup = WithRoles::new().await;
    let mut superuser = setup.db.conn().await;
    exec(&mut superuser, "INSERT INTO sites (site_id, domain) VALUES ('tz', 'tz.example.com')")
        .await
        .unwrap();

    // A writer in another time zone records the same instants: nothing to report.
    let mut admin = setup.conn(RoleKind::Admin).await;
    exec(&mut admin, "SET timezone = 'Asia/Kolkata'").await.unwrap();
    exec(&mut admin, "UPDATE sites SET brand_name = 'Kolkata' WHERE site_id = 'tz'").await.unwrap();
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", crate::harness::stdout(&check));

    // TRUNCATE is refused with a sentence (recording it would read the table as the historian).
    let err = exec(&mut superuser, "TRUNCATE sites CASCADE").await.unwrap_err();
    assert!(err.to_string().contains("TRUNCATE of sites is refused"), "{err}");

    // The owner's type with a cast to json of its own, on a column of sites.
    exec(&mut superuser, &format!("SET ROLE {}", setup.roles.name(RoleKind::Owner))).await.unwrap();
    for sql in [
        "CREATE TABLE public.cast_ran (who text)",
        "GRANT INSERT ON public.cast_ran TO PUBLIC",
        "CREATE TYPE public.x_t AS ENUM ('x')",
        "CREATE FUNCTION public.x_json(v public.x_t) RETURNS json LANGUAGE plpgsql AS $f$
         BEGIN INSERT INTO public.cast_ran VALUES (current_user); RETURN '\"x\"'; END $f$",
        "GRANT EXECUTE ON FUNCTION public.x_json(public.x_t) TO PUBLIC",
        "CREATE CAST (public.x_t AS json) WITH FUNCTION public.x_json(public.x_t)",
        "ALTER TABLE public.sites ADD COLUMN x public.x_t DEFAULT 'x'",
    ] {
        exec(&mut superuser, sql).await.unwrap();
    }
    let refused =
        exec(&mut superuser, "UPDATE sites SET brand_name = 'cast' WHERE site_id = 'tz'").await.unwrap_err();
    assert!(refused.to_string().contains("a column of a type outside pg_catalog"), "{refused}");
    exec(&mut superuser, "RESET ROLE").await.unwrap();

    // migrate check and the audit, as a superuser, report the drift and read no row.
    let check = run(&setup.db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(1));
    let (code, failed) = audit(&setup.db.url, &[]);
    assert_eq!(code, 1);
    assert!(
        failed.iter().any(|(id, detail)| id == "history.versions" && detail.contains("not read")),
        "{failed:?}"
    );
    let ran: i64 =
        sqlx::query_scalar("SELECT count(*) FROM cast_ran").fetch_one(&mut superuser).await.unwrap();
    assert_eq!(ran, 0, "the owner's cast ran in the history's or a superuser's session");
    superuser.close().await.unwrap();
    admin.close().await.unwrap();
}
