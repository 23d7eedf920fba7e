//! The dashboard: how much there is, and whether the schema is where this build expects it.

use std::sync::Arc;

use axum::{
    Extension,
    extract::State,
    response::{IntoResponse, Response},
};
use maud::html;

use crate::{
    migrations::{MigrationSet, runner},
    panel::{
        PanelState,
        error::PanelError,
        html::{Section, page},
        identity::Identity,
    },
};

pub async fn show(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
) -> Result<Response, PanelError> {
    // Estimates would be cheaper on huge tables; exact counts of 10k sites and 1M users
    // (an index-only scan) take milliseconds, and people compare them with other tools.
    let (sites, users, versions): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM users), (SELECT count(*) FROM sites_history)",
    )
    .fetch_one(&panel.pool)
    .await?;
    let migrations = match MigrationSet::embedded() {
        Ok(set) => runner::status(&panel.database_url, &set)
            .await
            .map(|a| (a, set.head()))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let body = html! {
        div.cards {
            div.card { div.big { (sites) } "sites" }
            div.card { div.big { (users) } "users" }
            div.card { div.big { (versions) } "recorded site versions" }
            div.card {
                strong { "Schema" } br;
                @match &migrations {
                    Ok((assessment, head)) => {
                        @let current = assessment.current.unwrap_or(0);
                        @if !assessment.problems.is_empty() {
                            span.verdict-fail { "problems: " (assessment.problems.len()) } " — run cabinet-db migrate status"
                        } @else if current == *head {
                            span.verdict-pass { "up to date" } " at " (format!("{current:04}"))
                        } @else {
                            span.verdict-warn { (format!("at {current:04}, this build knows {head:04}")) } " — run cabinet-db migrate up"
                        }
                    }
                    Err(e) => { span.verdict-warn { "unknown" } ": " (e) }
                }
            }
        }
    };
    Ok(page(&me, Section::Dashboard, "Dashboard", body).into_response())
}
