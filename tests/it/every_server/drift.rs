use cabinet_db::schema_diff::{self, Difference};
use sqlx::Connection;

use crate::harness::{TestDb, run, stderr, stdout};

/// Each kind of drift, the SQL that seeds it, and the difference `check` must report.
type Matcher = Box<dyn Fn(&Difference) -> bool>;

fn seeded_drift() -> Vec<(&'static str, Matcher)> {
    vec![
        (
            "DROP TABLE users",
            Box::new(|d| matches!(d, Difference::MissingTable { table } if table == "users")),
        ),
        (
            "CREATE TABLE chat_messages (id bigint PRIMARY KEY, body text)",
            Box::new(|d| matches!(d, Difference::UnexpectedTable { table } if table == "chat_messages")),
        ),
        (
            "ALTER TABLE sites DROP COLUMN brand_name",
            Box::new(|d| matches!(d, Difference::MissingColumn { column, .. } if column == "brand_name")),
        ),
        (
            "ALTER TABLE sites ADD COLUMN embedding real[]",
            Box::new(|d| matches!(d, Difference::UnexpectedColumn { column, .. } if column == "embedding")),
        ),
        (
            "ALTER TABLE sites ALTER COLUMN ai_prompt TYPE varchar(2000)",
            Box::new(
                |d| matches!(d, Difference::ColumnType { column, actual, .. } if column == "ai_prompt" && actual == "character varying(2000)"),
            ),
        ),
        (
            "ALTER TABLE sites ALTER COLUMN domain DROP NOT NULL",
            Box::new(
                |d| matches!(d, Difference::Nullability { column, expected_not_null: true, .. } if column == "domain"),
            ),
        ),
        (
            "ALTER TABLE users ALTER COLUMN last_seen DROP DEFAULT",
            Box::new(
                |d| matches!(d, Difference::Default { column, actual: None, .. } if column == "last_seen"),
            ),
        ),
        (
            "ALTER TABLE sites DROP CONSTRAINT sites_language_tag",
            Box::new(
                |d| matches!(d, Difference::MissingConstraint { name, .. } if name == "sites_language_tag"),
            ),
        ),
        (
            "ALTER TABLE sites ADD CONSTRAINT sites_script_short CHECK (length(ai_script_id) < 50)",
            Box::new(
                |d| matches!(d, Difference::UnexpectedConstraint { name, .. } if name == "sites_script_short"),
            ),
        ),
        (
            "ALTER TABLE users DROP CONSTRAINT users_seen_order, ADD CONSTRAINT users_seen_order CHECK (first_seen < last_seen)",
            Box::new(
                |d| matches!(d, Difference::ConstraintDefinition { name, .. } if name == "users_seen_order"),
            ),
        ),
        (
            "DROP INDEX users_last_seen_idx",
            Box::new(|d| matches!(d, Difference::MissingIndex { name, .. } if name == "users_last_seen_idx")),
        ),
        (
            "CREATE INDEX sites_script_idx ON sites (ai_script_id)",
            Box::new(|d| matches!(d, Difference::UnexpectedIndex { name, .. } if name == "sites_script_idx")),
        ),
        (
            "DROP INDEX users_email_prefix_idx; CREATE INDEX users_email_prefix_idx ON users (email)",
            Box::new(|d| matches!(d, Difference::IndexDefinition { name, .. } if name == "users_email_prefix_idx")),
        ),
        // Objects that change what every client's statements do, whoever wrote them.
        (
            "CREATE FUNCTION public.copy_prompt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER sites_copy_prompt AFTER UPDATE ON sites FOR EACH ROW EXECUTE FUNCTION public.copy_prompt()",
            Box::new(|d| matches!(d, Difference::UnexpectedTrigger { name, .. } if name == "sites_copy_prompt")),
        ),
        (
            "CREATE RULE users_no_delete AS ON DELETE TO users DO INSTEAD NOTHING",
            Box::new(|d| matches!(d, Difference::UnexpectedRule { name, .. } if name == "users_no_delete")),
        ),
        (
            "ALTER TABLE sites ENABLE ROW LEVEL SECURITY",
            Box::new(|d| matches!(d, Difference::RowSecurity { table, .. } if table == "sites")),
        ),
        (
            "CREATE POLICY only_en ON sites USING (language = 'en')",
            Box::new(|d| matches!(d, Difference::UnexpectedPolicy { name, .. } if name == "only_en")),
        ),
    ]
}

#[tokio::test]
async fn check_finds_each_kind_of_drift() {
    for (sql, expected) in seeded_drift() {
        // Arrange
        let db = TestDb::migrated().await;
        db.exec(sql).await;

        // Act
        let mut conn = db.conn().await;
        let differences = schema_diff::drift(&mut conn).await.unwrap();
        conn.close().await.unwrap();

        // Assert
        assert!(differences.iter().any(&expected), "after {sql:?} got {differences:#?}");
    }
}

#[tokio::test]
async fn check_exits_0_when_clean_and_1_listing_the_drift() {
    let db = TestDb::migrated().await;
    let clean = run(&db.url, &["migrate", "check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));

    db.exec("ALTER TABLE sites ALTER COLUMN ai_prompt TYPE varchar(2000)").await;
    let drifted = run(&db.url, &["migrate", "check"]);

    assert_eq!(drifted.status.code(), Some(1), "{}", stderr(&drifted));
    assert!(
        stdout(&drifted).contains("sites.ai_prompt has type character varying(2000), the models say text"),
        "{}",
        stdout(&drifted)
    );
    let json = run(&db.url, &["migrate", "check", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["clean"], false);
    assert_eq!(value["differences"][0]["kind"], "column_type");
}

#[tokio::test]
async fn applying_the_diff_output_makes_check_clean() {
    // Arrange: every kind of drift at once, on a database with rows.
    let db = TestDb::migrated().await;
    db.exec("INSERT INTO sites (site_id, domain) VALUES ('s1', 'one.example.com')").await;
    // (Dropping users would make the other users drift moot; the empty-database test
    // covers missing tables.)
    for (sql, _) in seeded_drift().into_iter().filter(|(sql, _)| *sql != "DROP TABLE users") {
        db.exec(sql).await;
    }

    // Act: print the draft with the CLI and apply it as a whole.
    let out = run(&db.url, &["migrate", "diff"]);
    assert_eq!(out.status.code(), Some(1), "diff exits 1 when there is drift: {}", stderr(&out));
    db.exec(&format!("BEGIN;\n{}\nCOMMIT;", stdout(&out))).await;

    // Assert
    let mut conn = db.conn().await;
    let remaining = schema_diff::drift(&mut conn).await.unwrap();
    assert!(remaining.is_empty(), "diff was:\n{}\nremaining: {remaining:#?}", stdout(&out));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sites").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, 1, "fixing drift keeps the rows");
}

#[tokio::test]
async fn diff_on_an_empty_database_creates_the_whole_schema() {
    let db = TestDb::empty().await;
    let out = run(&db.url, &["migrate", "diff"]);
    db.exec(&stdout(&out)).await;
    let check = run(&db.url, &["migrate", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}
