//! The routes, and the layers every request passes, outermost first: security headers (on
//! every response, refusals included), the request log, the guard (Host, cross-origin), the
//! database verdict (a page that timed out waiting for the database says whether it is
//! unreachable or busy), and — for everything but `/healthz`, `/readyz` and the static files —
//! sign-in by tailnet identity.

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::{
    assets,
    error::PanelError,
    guard::{self, SECURITY_HEADERS},
    html::error_page,
    pages::{dashboard, site_history, sites, transfer, users},
    readiness::Trouble,
    state::PanelState,
};
use crate::{metrics::panel, models::characters::escape_invisible};

/// The address a connection comes from, kept with every request (whois asks about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer(pub(crate) std::net::SocketAddr);

/// The largest form accepted: a site's prompt may be long, but not this long.
pub(crate) const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// Who a response was for, for the request log.
#[derive(Debug, Clone)]
struct SignedIn(String);

pub(crate) fn router(state: Arc<PanelState>) -> Router {
    let signed_in = Router::new()
        .route("/", get(dashboard::show))
        .route("/dashboard/audit", get(dashboard::audit))
        .route("/dashboard/backups", get(dashboard::backups))
        .route("/dashboard/metrics", get(dashboard::metrics))
        .route("/sites", get(sites::list).post(sites::create))
        .route("/sites/new", get(sites::new_form))
        .route("/sites/check", post(sites::check))
        .route("/sites/{id}", get(sites::show).post(sites::update))
        .route("/sites/{id}/check", post(sites::check))
        .route("/sites/{id}/delete", get(sites::delete_form).post(sites::delete))
        .route("/sites/{id}/history", get(site_history::list))
        .route("/sites/{id}/history/{version}", get(site_history::version))
        .route("/sites/{id}/revert", post(site_history::revert))
        .route("/sites/{id}/restore", post(site_history::restore))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/forget", get(users::forget_form).post(users::forget))
        .route("/transfer", get(transfer::show))
        .route(
            "/transfer/import",
            post(transfer::import).layer(DefaultBodyLimit::max(transfer::MAX_IMPORT_BYTES)),
        )
        .route("/transfer/export/{file}", get(transfer::export))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), sign_in));
    Router::new()
        // Needs no identity and says nothing but that the process answers.
        .route("/healthz", get(|| async { "ok\n" }))
        // Needs no identity either: whether the database answers, and if not, why.
        .route("/readyz", get(readyz))
        // A scraper's, not a person's: admitted by the policy's `metrics` grant alone.
        .route("/metrics", get(metrics))
        .route("/assets/{name}", get(assets::asset))
        .merge(signed_in)
        .route_layer(middleware::from_fn(stamp_route))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), database_verdict))
        .layer(middleware::from_fn_with_state(state.clone(), guard_request))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found() -> PanelError {
    PanelError::NotFound("no such page".to_owned())
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    // Pages hold people's data: no copy in any cache. Static files set their own.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn guard_request(State(panel): State<Arc<PanelState>>, request: Request, next: Next) -> Response {
    let checked = guard::check_host(request.headers(), &panel.allowed_hosts)
        .and_then(|()| guard::check_cross_origin(request.method(), request.headers(), panel.tls));
    match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            (StatusCode::FORBIDDEN, error_page(StatusCode::FORBIDDEN, &refusal.to_string())).into_response()
        }
    }
}

/// A page that gave up waiting for a pooled connection does not know why; the probe says
/// whether the database is unreachable or every connection busy, and the page says that.
async fn database_verdict(State(panel): State<Arc<PanelState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<Trouble>() != Some(&Trouble::TimedOut) {
        return response;
    }
    let unavailable = panel.readiness.diagnose(&panel.pool).await;
    PanelError::Database(Trouble::Known(unavailable)).into_response()
}

async fn sign_in(State(panel): State<Arc<PanelState>>, mut request: Request, next: Next) -> Response {
    let Some(ConnectInfo(Peer(peer))) = request.extensions().get::<ConnectInfo<Peer>>().copied() else {
        return PanelError::Internal("the connection's peer address is unknown".into()).into_response();
    };
    let identity = match panel.identities.resolve(peer).await {
        Ok(identity) => identity,
        Err(Ok(refusal)) => {
            return (StatusCode::FORBIDDEN, error_page(StatusCode::FORBIDDEN, &refusal.to_string()))
                .into_response();
        }
        Err(Err(e)) => {
            tracing::warn!(error = %e, "tailscaled could not be asked who {peer} is");
            panel.counters.whois_failed();
            return PanelError::IdentityUnavailable.into_response();
        }
    };
    let login = identity.login.clone();
    request.extensions_mut().insert(identity);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(SignedIn(login));
    response
}

async fn log_request(State(panel): State<Arc<PanelState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The path only: a query may hold what someone searched for (an e-mail address).
    let path = request.uri().path().to_owned();
    let peer = request.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0.0.ip().to_canonical().to_string());
    let response = next.run(request).await;
    let login = response.extensions().get::<SignedIn>().map(|s| s.0.clone());
    let status = response.status().as_u16();
    let took = started.elapsed();
    let route = response.extensions().get::<MatchedPath>().map_or(panel::UNMATCHED, |m| m.as_str());
    panel.counters.request(route, status, took);
    let ms = took.as_secs_f64() * 1000.0;
    let line = if panel.json_logs {
        serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "peer": peer, "login": login, "method": method, "path": path, "status": status,
            "ms": (ms * 10.0).round() / 10.0,
        })
        .to_string()
    } else {
        format!(
            "{} {} {} {method} {} {status} {ms:.1}ms",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            peer.as_deref().unwrap_or("-"),
            escape_invisible(login.as_deref().unwrap_or("-"), false),
            escape_invisible(&path, false),
        )
    };
    eprintln!("{line}");
    response
}

/// Keeps the route's pattern with the response, for the request counters (the middleware that
/// counts runs before routing, so it reads the pattern from the response).
async fn stamp_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// `/metrics`: the host's stored scrape and the panel's counters, for a peer the tailnet
/// policy grants the `metrics` role (403 for anyone else; 503 when tailscaled cannot say who
/// asks).
async fn metrics(
    State(panel): State<Arc<PanelState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    match panel.identities.resolve_scraper(peer).await {
        Ok(()) => {}
        Err(Ok(refusal)) => return (StatusCode::FORBIDDEN, format!("{refusal}\n")).into_response(),
        Err(Err(e)) => {
            tracing::warn!(error = %e, "tailscaled could not be asked who {peer} is");
            panel.counters.whois_failed();
            return PanelError::IdentityUnavailable.into_response();
        }
    }
    let ready = panel.readiness.check(&panel.pool).await.is_ok();
    let text = crate::metrics::panel_scrape(&panel.metrics_file, &panel.counters, ready);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// `/readyz`: 200 "ready" when the database answers, 503 saying why when it does not. Like
/// `/healthz` it needs no sign-in and says nothing else.
pub(crate) async fn readyz(State(panel): State<Arc<PanelState>>) -> Response {
    match panel.readiness.check(&panel.pool).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(unavailable) => (StatusCode::SERVICE_UNAVAILABLE, format!("{unavailable}\n")).into_response(),
    }
}
