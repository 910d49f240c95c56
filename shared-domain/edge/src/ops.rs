//! Operations: health, readiness, metrics, the 404/405
//! bodies, and opt-in fault injection.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// The process-wide Prometheus recorder (installed once, on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| b.set_buckets(&[0.0001, 0.001, 0.01, 0.1, 1.0, 10.0]))
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Another recorder may already be installed (tests embedding several
        // servers); the handle still renders what this recorder sees.
        let _ = metrics::set_global_recorder(recorder);
        // A histogram keeps every sample until a render or an upkeep
        // drains it into its buckets: without a scrape, memory grew with
        // every request (a few samples per transfer: about 22 bytes each,
        // tens of MiB over a 10-minute soak). The exporter's own upkeep
        // task needs a runtime at install; a thread serves any process.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

/// How often the recorder's histograms are drained into their buckets
/// (the exporter's default upkeep period).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Records `http_request_duration_seconds{route,status}` and gives 404/405
/// answers API.md's JSON body.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
        .into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}

/// Unknown routes.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// `GET /healthz`: the process runs.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: every component answers.
pub(crate) async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match tokio::time::timeout(state.config.request_timeout, state.services.probe.ready()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(why)) => Err(ApiError::unavailable(format!("not ready: {why}"))),
        Err(_) => Err(ApiError::unavailable(
            "not ready: readiness check timed out",
        )),
    }
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(source) = &state.services.metrics {
        source.refresh();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}

/// `POST /admin/crash/{target}` (only when fault injection is enabled).
pub(crate) async fn crash(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let admin = state.services.admin.as_ref().ok_or_else(not_found_admin)?;
    admin
        .crash(&target)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not_found", e))?;
    tracing::warn!(%target, "fault injected");
    Ok(Json(json!({"crashed": target})))
}

/// `GET /admin/targets`.
pub(crate) async fn targets(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let admin = state.services.admin.as_ref().ok_or_else(not_found_admin)?;
    Ok(Json(json!({"targets": admin.targets()})))
}

fn not_found_admin() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}
