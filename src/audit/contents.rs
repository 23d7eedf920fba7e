use sqlx::PgConnection;

use super::check::Check;
use crate::{
    db::DatabaseUrl,
    migrations::{MigrateError, MigrationSet, runner},
    models::schema::{MIGRATIONS_TABLE, TABLES},
    schema_diff,
};

pub(crate) async fn migrations(url: &DatabaseUrl, set: &MigrationSet) -> Result<Vec<Check>, MigrateError> {
    let assessment = match runner::status(url, set).await {
        Ok(assessment) => assessment,
        Err(MigrateError::Query(e)) if super::check::is_permission_denied(&e) => {
            return Ok(vec![Check::needs_superuser(
                "migrations.head",
                "the migration ledger (cabinet_migrations)",
            )]);
        }
        Err(e) => return Err(e),
    };
    let mut checks = Vec::new();
    checks.push(match (assessment.current, assessment.pending.is_empty()) {
        (Some(v), true) => Check::pass("migrations.head", format!("at {v:04}, the newest")),
        (current, false) => Check::fail(
            "migrations.head",
            format!(
                "at {}, {} pending",
                current.map_or("none".to_owned(), |v| format!("{v:04}")),
                assessment.pending.len()
            ),
            "run cabinet-db migrate up",
        ),
        (None, true) => Check::fail("migrations.head", "no migrations known", "run cabinet-db migrate up"),
    });
    if !assessment.problems.is_empty() {
        checks.push(Check::fail(
            "migrations.integrity",
            assessment.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            "see cabinet-db migrate status",
        ));
    }
    Ok(checks)
}

pub(crate) async fn drift(conn: &mut PgConnection) -> Result<Check, sqlx::Error> {
    let differences = schema_diff::drift(conn).await?;
    Ok(if differences.is_empty() {
        Check::pass("schema.drift", "the schema matches the models")
    } else {
        Check::fail(
            "schema.drift",
            differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            "see cabinet-db migrate check; fix with a migration (cabinet-db migrate diff drafts one)",
        )
    })
}

/// Where a table that is not ours belongs, judged by its name.
fn belongs_in(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.contains("chat") || n.contains("message") || n.contains("conversation") {
        "chat history belongs in the RAG service's database"
    } else if n.contains("embedding")
        || n.contains("vector")
        || n.contains("knowledge")
        || n.contains("document")
    {
        "embeddings and knowledge documents belong in the RAG service's database"
    } else if n.contains("workflow")
        || n.contains("execution")
        || n.contains("credentials_entity")
        || n.starts_with("n8n")
    {
        "n8n's own data belongs in n8n's database"
    } else {
        "this database holds only sites and users"
    }
}

/// Tables, views and sequences outside the models, in any user schema.
pub(crate) async fn foreign_objects(conn: &mut PgConnection) -> Result<Check, sqlx::Error> {
    let ours: Vec<String> = TABLES
        .iter()
        .map(|t| format!("public.{}", t.name))
        .chain([format!("public.{MIGRATIONS_TABLE}")])
        .collect();
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || '.' || c.relname
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            AND NOT (n.nspname || '.' || c.relname = ANY($1))
          ORDER BY 1",
    )
    .bind(&ours)
    .fetch_all(&mut *conn)
    .await?;
    Ok(if found.is_empty() {
        Check::pass("contents.foreign_tables", "only sites, users and the migration ledger")
    } else {
        let named: Vec<String> = found.iter().map(|t| format!("{t} ({})", belongs_in(t))).collect();
        Check::fail(
            "contents.foreign_tables",
            named.join("; "),
            "move that data to the database it belongs in, then drop it here",
        )
    })
}
