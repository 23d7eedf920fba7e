//! The panel's static files, embedded in the binary: its stylesheet, its small script, and htmx
//! (vendored from npm `htmx.org`, see `assets/vendor/README.md`). Nothing is fetched from a CDN.

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

const FILES: &[(&str, &str, &str)] = &[
    ("panel.css", "text/css; charset=utf-8", include_str!("../../assets/panel.css")),
    ("panel.js", "text/javascript; charset=utf-8", include_str!("../../assets/panel.js")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_str!("../../assets/vendor/htmx.min.js")),
];

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=3600")], *body)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
