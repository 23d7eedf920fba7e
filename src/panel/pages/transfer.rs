//! Import and export: upload a CSV or JSON Lines file (all or nothing, with the same report
//! as the CLI: line, column, value), download a table. Imports are for admins; anyone signed
//! in downloads sites, only admins users (their e-mail addresses, in bulk).

use std::{io::Write, sync::Arc};

use axum::{
    Extension,
    body::Body,
    extract::{Multipart, Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::html;

use crate::{
    models::characters::escape_invisible,
    panel::{
        error::PanelError,
        html::{Section, notice, page},
        identity::{Identity, Role},
        state::PanelState,
        state::require,
    },
    transfer::{
        Format, Mode, Table, export,
        import::{self, ImportOptions},
        problems::ImportError,
        reader::Input,
    },
};

/// The largest file accepted for import (a million users is about 100 MB of CSV).
pub(crate) const MAX_IMPORT_BYTES: usize = 1024 * 1024 * 1024;
/// Problem rows listed at most (all are counted).
const MAX_LISTED_PROBLEMS: usize = 100;

pub(crate) async fn show(Extension(me): Extension<Identity>) -> Result<Response, PanelError> {
    Ok(page(&me, Section::Transfer, "Import / export", form(&me)).into_response())
}

fn form(me: &Identity) -> maud::Markup {
    html! {
        h2 { "Export" }
        p {
            "Every row, ordered by key; the files import back unchanged. "
            a href="/transfer/export/sites.csv" download { "sites.csv" } " · "
            a href="/transfer/export/sites.jsonl" download { "sites.jsonl" }
            @if me.may(Role::Admin) {
                " · " a href="/transfer/export/users.csv" download { "users.csv" } " · "
                a href="/transfer/export/users.jsonl" download { "users.jsonl" }
            }
        }
        h2 { "Import" }
        @if me.may(Role::Admin) {
            p.muted { "All or nothing: every row is checked first; one bad row and nothing is written. Formats: docs/import-formats.md." }
            form method="post" action="/transfer/import" enctype="multipart/form-data" {
                label for="table" { "Into" }
                select #table name="table" { option value="sites" { "sites" } option value="users" { "users" } }
                label for="mode" { "Rows that exist already" }
                select #mode name="mode" {
                    option value="insert" { "are an error (insert only)" }
                    option value="upsert" { "are updated with the file's columns (upsert)" }
                }
                label for="file" { "File " span.hint { ".csv (with a header row) or .jsonl" } }
                input #file type="file" name="file" accept=".csv,.jsonl,.ndjson,text/csv" required;
                div.actions { button type="submit" { "Import" } }
            }
        } @else {
            p.muted { "Importing needs the admin role." }
        }
    }
}

pub(crate) async fn import(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    mut multipart: Multipart,
) -> Result<Response, PanelError> {
    require(&me, Role::Admin, "importing")?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        PanelError::BadRequest(format!("the upload is not readable: {e}"))
    };
    let (mut table, mut mode, mut upload) = (None, Mode::Insert, None);
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "table" => table = Some(field.text().await.map_err(bad)?),
            "mode" => {
                mode = match field.text().await.map_err(bad)?.as_str() {
                    "upsert" => Mode::Upsert,
                    _ => Mode::Insert,
                }
            }
            "file" => {
                let name = field.file_name().unwrap_or("").to_owned();
                let format = Format::from_path(std::path::Path::new(&name)).ok_or_else(|| {
                    PanelError::BadRequest(format!(
                        "{name:?}: name the file .csv or .jsonl so its format is known"
                    ))
                })?;
                // Spooled to a private temporary file (0600, deleted on drop): the import
                // reads it twice when it must locate a conflict.
                let mut spool =
                    tempfile::NamedTempFile::new().map_err(|e| PanelError::Internal(e.to_string()))?;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    spool.write_all(&chunk).map_err(|e| PanelError::Internal(e.to_string()))?;
                }
                upload = Some((name, format, spool));
            }
            _ => {}
        }
    }
    let table = match table.as_deref() {
        Some("sites") => Table::Sites,
        Some("users") => Table::Users,
        other => return Err(PanelError::BadRequest(format!("import into {other:?}: choose sites or users"))),
    };
    let Some((name, format, spool)) = upload else {
        return Err(PanelError::BadRequest("no file was uploaded".to_owned()));
    };
    let options = ImportOptions {
        table,
        format: Some(format),
        mode,
        max_errors: MAX_LISTED_PROBLEMS,
        statement_timeout: std::time::Duration::ZERO,
        actor: Some(me.actor()),
    };
    let input = Input::File(spool.path().to_owned());
    let result = import::import(&panel.database_url, &input, &options, &mut |_| {}).await;
    let (status, outcome) = match result {
        Ok(report) => (
            StatusCode::OK,
            notice(
                "",
                html! { (name) ": " (report.rows) " rows, " (report.inserted) " inserted, " (report.updated) " updated into " (table.name()) "." },
            ),
        ),
        Err(ImportError::Invalid { errors, total }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                div.notice.error role="alert" { (name) ": " (total) " problem(s); nothing was written." }
                div.table-wrap { table {
                    thead { tr { th { "line" } th { "column" } th { "value" } th { "problem" } } }
                    tbody { @for e in &errors { tr { td { (e.line) } td { (e.column) } td.mono { (escape_invisible(&e.value, false)) } td { (e.message) } } } }
                } }
                @if total > errors.len() as u64 { p.muted { "The first " (errors.len()) " are listed." } }
            },
        ),
        Err(e) => {
            let message = PanelError::Internal(e.to_string()).message();
            (StatusCode::UNPROCESSABLE_ENTITY, notice("error", html! { (name) ": " (message) }))
        }
    };
    let body = html! { (outcome) (form(&me)) };
    Ok((status, page(&me, Section::Transfer, "Import / export", body)).into_response())
}

pub(crate) async fn export(
    State(panel): State<Arc<PanelState>>,
    Extension(me): Extension<Identity>,
    Path(file): Path<String>,
) -> Result<Response, PanelError> {
    let (table, format) = match file.as_str() {
        "sites.csv" => (Table::Sites, Format::Csv),
        "sites.jsonl" => (Table::Sites, Format::Jsonl),
        "users.csv" => (Table::Users, Format::Csv),
        "users.jsonl" => (Table::Users, Format::Jsonl),
        _ => return Err(PanelError::NotFound(format!("no export {file:?}"))),
    };
    if table == Table::Users {
        require(&me, Role::Admin, "exporting users")?;
    }
    // Written to a private temporary file first, then streamed: memory stays flat whatever
    // the table's size, and a failed export never sends half a file as if it were whole.
    let mut spool = tempfile::tempfile().map_err(|e| PanelError::Internal(e.to_string()))?;
    export::export(&panel.database_url, table, format, &mut spool, &mut |_| {})
        .await
        .map_err(|e| PanelError::Internal(format!("the export failed: {e}")))?;
    use std::io::Seek;
    spool.rewind().map_err(|e| PanelError::Internal(e.to_string()))?;
    let file_handle = tokio::fs::File::from_std(spool);
    let stream = futures_util::stream::unfold(file_handle, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(buffer), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Jsonl => "application/jsonl; charset=utf-8",
    };
    let disposition = format!(
        "attachment; filename=\"cabinet-{}-{stamp}.{}\"",
        table.name(),
        file.rsplit('.').next().unwrap_or("txt")
    );
    Ok((
        [(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(stream),
    )
        .into_response())
}
