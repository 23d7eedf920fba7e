//! The Python side, with the real SQLAlchemy, Alembic and psycopg from PyPI (`scripts/setup tests`'s
//! pinned virtualenv): the exported models.py against migrated databases.

use std::{path::PathBuf, process::Command};

use cabinet_db::{db::DatabaseUrl, roles::RoleKind};

use crate::{
    harness::{TestDb, WithRoles, assert_snapshot, binary, stderr, stdout},
    lab::tools_dir,
};

/// The virtualenv's python; never skipped when missing.
fn python() -> PathBuf {
    let python = tools_dir().join("python/bin/python");
    assert!(
        python.exists(),
        "no {}: run scripts/setup tests (it installs SQLAlchemy, Alembic and psycopg)",
        python.display()
    );
    python
}

/// models.py as `models export --sqlalchemy --out` writes it, in a directory of its own.
fn exported_models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["models", "export", "--sqlalchemy", "--out"])
        .arg(dir.path().join("models.py"))
        .output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// psycopg's URL for SQLAlchemy.
fn sqlalchemy_url(url: &DatabaseUrl) -> String {
    url.expose().replacen("postgres://", "postgresql+psycopg://", 1)
}

/// Runs `script` with models.py importable and the database URL in `DATABASE_URL`.
fn run_python(models: &tempfile::TempDir, url: &DatabaseUrl, script: &str) -> std::process::Output {
    // SQLAlchemy's warnings (a type it does not know, a constraint it cannot reflect) are failures.
    let script = format!(
        "import warnings\nfrom sqlalchemy.exc import SAWarning\nwarnings.simplefilter(\"error\", SAWarning)\n{script}"
    );
    Command::new(python())
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", models.path())
        .env("DATABASE_URL", sqlalchemy_url(url))
        .output()
        .unwrap()
}

/// Alembic's autogenerate comparison, as `alembic check` runs it, with types and server
/// defaults compared: one line per difference, then `differences: N`.
const COMPARE: &str = r#"
import os
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
import models

engine = create_engine(os.environ["DATABASE_URL"])
with engine.connect() as conn:
    context = MigrationContext.configure(conn, opts={
        "compare_type": True,
        "compare_server_default": True,
        "include_name": models.include_name,
    })
    differences = compare_metadata(context, models.Base.metadata)
for difference in differences:
    print(difference)
print("differences:", len(differences))
"#;

#[test]
fn the_exported_models_match_their_golden_copy() {
    // The snapshot is tests/snapshots/python/models.py.snap, the same on every server.
    let exported = binary().args(["models", "export", "--sqlalchemy"]).output().unwrap();
    assert!(exported.status.success(), "{}", stderr(&exported));
    let expected = stdout(&exported);
    assert_snapshot(std::path::Path::new("python/models.py"), &expected);
    // The same bytes through --out, and Python compiles them.
    let dir = exported_models();
    assert_eq!(std::fs::read_to_string(dir.path().join("models.py")).unwrap(), expected);
    let compiled =
        Command::new(python()).args(["-m", "py_compile"]).arg(dir.path().join("models.py")).output().unwrap();
    assert!(compiled.status.success(), "{}", stderr(&compiled));
}

#[tokio::test]
async fn alembic_finds_no_difference_on_a_migrated_database_and_finds_a_deliberate_change() {
    // Arrange: a database at head, and a scratch one that a careless hand changed.
    let models = exported_models();
    let db = TestDb::migrated().await;
    let scratch = TestDb::migrated().await;
    scratch
        .exec(
            "ALTER TABLE sites ADD COLUMN extra text;
             ALTER TABLE sites ALTER COLUMN language SET DEFAULT 'de';
             DROP INDEX users_email_prefix_idx;
             ALTER TABLE users_history ALTER COLUMN forgotten_by TYPE varchar(10)",
        )
        .await;

    // Act
    let same = run_python(&models, &db.url, COMPARE);
    let changed = run_python(&models, &scratch.url, COMPARE);

    // Assert: nothing to change on the real schema; each change found on the scratch one.
    assert!(same.status.success(), "{}", stderr(&same));
    assert_eq!(stdout(&same).trim(), "differences: 0", "{}", stdout(&same));
    assert!(changed.status.success(), "{}", stderr(&changed));
    let found = stdout(&changed);
    for kind in [
        "'remove_column', None, 'sites'",
        "'modify_default', None, 'sites', 'language'",
        "'add_index'",
        "'modify_type', None, 'users_history', 'forgotten_by'",
    ] {
        assert!(found.contains(kind), "{kind} not reported:\n{found}");
    }
    assert!(found.trim_end().ends_with("differences: 4"), "{found}");
}

#[tokio::test]
async fn the_orm_writes_a_site_as_cabinet_admin_and_a_broken_rule_names_its_constraint() {
    let models = exported_models();
    let with_roles = WithRoles::new().await;
    let script = r#"
import os
from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
import models

engine = create_engine(os.environ["DATABASE_URL"])
with Session(engine) as session:
    session.add(models.Site(site_id="orm-1", domain="orm.example.com", brand_name="ORM"))
    session.commit()
    site = session.scalars(select(models.Site).where(models.Site.site_id == "orm-1")).one()
    print("language", site.language, "created_at has a zone", site.created_at.tzinfo is not None)
    history = session.execute(select(models.sites_history.c.operation).where(models.sites_history.c.site_id == "orm-1")).all()
    print("history", [row.operation for row in history])
    try:
        session.add(models.Site(site_id="orm-2", domain="Orm.Example.COM"))
        session.commit()
    except IntegrityError as error:
        session.rollback()
        print("refused by", error.orig.diag.constraint_name)
"#;
    let out = run_python(&models, &with_roles.url_as(RoleKind::Admin), script);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("language en created_at has a zone True"), "server defaults fill in: {said}");
    assert!(said.contains("history ['INSERT']"), "the database's history records the ORM's write: {said}");
    assert!(said.contains("refused by sites_domain_lowercase"), "{said}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sites")
        .fetch_one(&mut with_roles.db.conn().await)
        .await
        .unwrap();
    assert_eq!(count, 1, "the refused row was not written");
}

#[tokio::test]
async fn the_main_application_records_sign_ins_as_cabinet_app_through_models_py_and_writes_nothing_else() {
    let models = exported_models();
    let with_roles = WithRoles::new().await;
    let script = r#"
import datetime, os
from sqlalchemy import create_engine, select
from sqlalchemy.exc import DataError, ProgrammingError
from sqlalchemy.orm import Session
import models

engine = create_engine(os.environ["DATABASE_URL"])
now = datetime.datetime.now(datetime.timezone.utc)
with Session(engine) as session:
    print("first", models.record_seen(session, "zitadel-1", "ada@example.com", now))
    print("again", models.record_seen(session, "zitadel-1", "ada@example.com", now + datetime.timedelta(seconds=5)))
    print("batch", tuple(models.record_seen_many(session, [("zitadel-2", None, now), ("zitadel-2", "bob@example.com", now)])))
    session.commit()
    user = session.scalars(select(models.User).where(models.User.user_id == "zitadel-2")).one()
    print("read", user.email)
    try:
        models.record_seen(session, "zitadel-1", None, now + datetime.timedelta(days=365))
    except DataError as error:
        session.rollback()
        print("future refused", "database server's clock" in str(error.orig))
    try:
        models.record_seen(session, "zitadel-1", None, datetime.datetime(2026, 1, 1))
    except ValueError as error:
        print("naive refused", "no time zone" in str(error))
    try:
        models.record_seen(session, 12345, None, now)
    except TypeError as error:
        print("int id refused", "must be a str" in str(error))
    try:
        models.record_seen(session, "zitadel-1", None, "2026-01-01T00:00:00Z")
    except TypeError as error:
        print("str time refused", "datetime.datetime" in str(error))
    try:
        models.record_seen(session, "zitadel-1", None, now, debounce=60)
    except TypeError as error:
        print("int debounce refused", "timedelta" in str(error))
    print("generator", tuple(models.record_seen_many(session, ((f"gen-{i}", None, now) for i in range(3)))))
    session.rollback()
    try:
        session.add(models.User(user_id="sneaky", email="x@example.com", first_seen=now, last_seen=now))
        session.commit()
    except ProgrammingError as error:
        session.rollback()
        print("direct write refused", error.orig.sqlstate)
"#;
    let out = run_python(&models, &with_roles.url_as(RoleKind::App), script);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    for expected in [
        "first inserted",
        "again unchanged",
        "batch (1, 1, 0, 0)",
        "read bob@example.com",
        "future refused True",
        "naive refused True",
        "int id refused True",
        "str time refused True",
        "int debounce refused True",
        "generator (3, 3, 0, 0)",
        "direct write refused 42501",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut with_roles.db.conn().await)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the two users seen, not the refused ones");
}

/// Which of `values` the property `field` of `#/$defs/{definition}` accepts, by Python's
/// jsonschema (Draft 2020-12).
fn json_schema_accepts(
    schema: &std::path::Path,
    definition: &str,
    field: &str,
    values: &[String],
) -> Vec<bool> {
    let script = format!(
        r#"
import json, sys
from jsonschema import Draft202012Validator
document = json.load(open({path:?}, encoding="utf-8"))
validator = Draft202012Validator(document["$defs"][{definition:?}]["properties"][{field:?}])
print(json.dumps([validator.is_valid(v) for v in json.load(sys.stdin)]))
"#,
        path = schema.display().to_string(),
    );
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), values).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_json_schema_accepts_exactly_what_the_database_accepts() {
    use super::agreement::{
        database_accepts, draw, drawn_domains, drawn_languages, normalised_domains, tricky_string,
    };

    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    let out = binary().args(["models", "export", "--json-schema", "--out"]).arg(&schema).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;

    let mut ids = draw(tricky_string(0, 8), 3000);
    ids.extend(draw(tricky_string(198, 203), 200));
    let mut emails = draw(tricky_string(0, 10), 2000);
    emails.extend(ids.iter().take(500).map(|id| format!("{id}@example.com")));
    // The database judges the stored (normalised) domain; so does the schema.
    let domains = normalised_domains(&drawn_domains());
    let languages = drawn_languages();
    /// A field of a definition, the constraints that judge its column, the values to try.
    struct Case<'a> {
        definition: &'a str,
        field: &'a str,
        constraints: &'a [&'a str],
        values: &'a [String],
    }
    let cases = [
        Case { definition: "site", field: "site_id", constraints: &["sites_site_id_format"], values: &ids },
        Case { definition: "user", field: "user_id", constraints: &["users_user_id_format"], values: &ids },
        Case { definition: "user", field: "email", constraints: &["users_email_format"], values: &emails },
        Case {
            definition: "site",
            field: "language",
            constraints: &["sites_language_tag"],
            values: &languages,
        },
        Case {
            definition: "site",
            field: "domain",
            constraints: &["sites_domain_hostname", "sites_domain_lowercase"],
            values: &domains,
        },
    ];
    for Case { definition, field, constraints, values } in cases {
        let database = database_accepts(&mut conn, field, constraints, values).await;
        let schema_says = json_schema_accepts(&schema, definition, field, values);
        let wrong: Vec<String> = values
            .iter()
            .zip(database.iter().zip(&schema_says))
            .filter(|(_, (db, js))| db != js)
            .take(10)
            .map(|(v, (db, _))| {
                format!(
                    "{v:?} {:?}: database {}",
                    v.chars().map(|c| format!("U+{:04X}", c as u32)).collect::<Vec<_>>(),
                    if *db { "accepts" } else { "refuses" }
                )
            })
            .collect();
        assert!(wrong.is_empty(), "{definition}.{field}: {wrong:#?}");
        assert!(database.iter().any(|a| *a) && database.iter().any(|a| !a), "{field}: both kinds drawn");
    }
}
