//! Every endpoint, in one table: the router is built from it, and a test
//! checks it against docs/openapi.json in both directions.

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::json;

use crate::{API_VERSION, ApiError, Shared, commands, files, metrics, sandboxes};

/// (method, path) of every endpoint, paths in OpenAPI's `{param}` form.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/sandboxes"),
    ("POST", "/v1/sandboxes"),
    ("GET", "/v1/sandboxes/{id}"),
    ("DELETE", "/v1/sandboxes/{id}"),
    ("POST", "/v1/sandboxes/{id}/pause"),
    ("POST", "/v1/sandboxes/{id}/resume"),
    ("POST", "/v1/sandboxes/{id}/timeout"),
    ("POST", "/v1/sandboxes/{id}/snapshot"),
    ("POST", "/v1/sandboxes/{id}/fork"),
    ("POST", "/v1/sandboxes/{id}/invoke"),
    ("GET", "/v1/sandboxes/{id}/commands"),
    ("POST", "/v1/sandboxes/{id}/commands"),
    ("GET", "/v1/sandboxes/{id}/commands/{cid}"),
    ("POST", "/v1/sandboxes/{id}/commands/{cid}/stdin"),
    ("POST", "/v1/sandboxes/{id}/commands/{cid}/kill"),
    ("GET", "/v1/sandboxes/{id}/files"),
    ("PUT", "/v1/sandboxes/{id}/files"),
    ("DELETE", "/v1/sandboxes/{id}/files"),
    ("GET", "/v1/sandboxes/{id}/files/stat"),
    ("GET", "/v1/sandboxes/{id}/files/list"),
    ("POST", "/v1/sandboxes/{id}/files/mkdir"),
];

/// JSON bodies up to this size (a stdin chunk of 4 MiB is ~5.6 MiB as
/// base64); file uploads stream and have no limit.
const JSON_BODY_LIMIT: usize = 8 * 1024 * 1024;

fn handler(method: &str, path: &str) -> MethodRouter<Shared> {
    match (method, path) {
        ("GET", "/v1/health") => get(health),
        ("GET", "/metrics") => get(metrics::render),
        ("GET", "/v1/sandboxes") => get(sandboxes::list),
        ("POST", "/v1/sandboxes") => post(sandboxes::create),
        ("GET", "/v1/sandboxes/{id}") => get(sandboxes::get),
        ("DELETE", "/v1/sandboxes/{id}") => delete(sandboxes::kill),
        ("POST", "/v1/sandboxes/{id}/pause") => post(sandboxes::pause),
        ("POST", "/v1/sandboxes/{id}/resume") => post(sandboxes::resume),
        ("POST", "/v1/sandboxes/{id}/timeout") => post(sandboxes::set_timeout),
        ("POST", "/v1/sandboxes/{id}/snapshot") => post(sandboxes::snapshot),
        ("POST", "/v1/sandboxes/{id}/fork") => post(sandboxes::fork),
        ("POST", "/v1/sandboxes/{id}/invoke") => post(sandboxes::invoke),
        ("GET", "/v1/sandboxes/{id}/commands") => get(commands::list),
        ("POST", "/v1/sandboxes/{id}/commands") => post(commands::run),
        ("GET", "/v1/sandboxes/{id}/commands/{cid}") => get(commands::wait),
        ("POST", "/v1/sandboxes/{id}/commands/{cid}/stdin") => post(commands::stdin),
        ("POST", "/v1/sandboxes/{id}/commands/{cid}/kill") => post(commands::kill),
        ("GET", "/v1/sandboxes/{id}/files") => get(files::read),
        ("PUT", "/v1/sandboxes/{id}/files") => put(files::write),
        ("DELETE", "/v1/sandboxes/{id}/files") => delete(files::remove),
        ("GET", "/v1/sandboxes/{id}/files/stat") => get(files::stat),
        ("GET", "/v1/sandboxes/{id}/files/list") => get(files::list),
        ("POST", "/v1/sandboxes/{id}/files/mkdir") => post(files::mkdir),
        other => unreachable!("ROUTES names {other:?} without a handler"),
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"server": "mvm", "version": env!("CARGO_PKG_VERSION"), "api": API_VERSION}))
}

async fn no_route(request: Request) -> axum::response::Response {
    ApiError::route(request.method().as_str(), request.uri().path()).into_response()
}

pub fn router(app: Shared) -> Router {
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Shared>> = Default::default();
    for (method, path) in ROUTES {
        let h = handler(method, path);
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(h),
            None => h,
        };
        by_path.insert(path, merged);
    }
    let mut router = Router::new();
    for (path, mr) in by_path {
        router = router.route(path, mr.fallback(no_route));
    }
    router
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::count,
        ))
        .with_state(app)
}
