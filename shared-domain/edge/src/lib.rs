//! The edge: API.md served by one axum router over `Arc<dyn …>` service
//! traits. The microlith binds them to actors, the microservices gateway to
//! gRPC clients; this crate cannot tell which. **API Boundary.**
//!
//! # Layout
//! - [`error`]: `ApiError`, the error body and status of every refusal.
//! - [`body`]: JSON bodies: media type, size, unknown fields, exact integers.
//! - [`bank`], [`chat`], [`ws`]: the routes of API.md.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, opt-in fault injection.
//! - [`admission`]: 429 past `max_in_flight` or past the latency target.
//! - [`session`]: one task per connected chat user, over any rooms service.
//! - [`transfers`]: the transfer saga run in the caller's task, over any fabric.
//! - [`listen`]: the connections: how many, how long a head may take.
//! - [`backoff`]: exponential backoff with full jitter, stopped by shutdown.
//! - [`timing`]: `Server-Timing` for sampled requests, hop by hop.

pub mod admission;
pub mod backoff;
pub mod bank;
pub mod body;
pub mod chat;
pub mod error;
pub mod listen;
pub mod ops;
pub mod probe;
pub mod session;
pub mod timing;
pub mod transfers;
pub mod unfit;
pub mod ws;

#[cfg(test)]
mod fuzz;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use shared_domain::service::{
    AccountsService, LedgerService, RoomsService, SessionsService, TransfersService,
};

pub use error::ApiError;

/// The largest request body, bytes (API.md: 64 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The default latency target of the edge's admission, milliseconds: far
/// above any variant's p99 below its knee (a few ms), so it acts only
/// once a queue stands ([`admission`]).
pub const LATENCY_TARGET_MS: u64 = 50;

/// A latency target from milliseconds: `None` for zero (turned off).
pub fn latency_target(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Whether every component behind the edge answers (for `/readyz`).
#[async_trait]
pub trait Probe: Send + Sync {
    /// `Ok` when ready; otherwise why not.
    async fn ready(&self) -> Result<(), String>;
}

/// Fault injection for the harness. Only routed when enabled by an
/// explicit flag; never by default.
pub trait Admin: Send + Sync {
    /// Makes the named component fail (an actor panics; a process dies).
    fn crash(&self, target: &str) -> Result<(), String>;
    /// The names `crash` accepts.
    fn targets(&self) -> Vec<String>;
}

/// Logs panics as one tracing line instead of a backtrace on stderr, for
/// a process that contains its panics (a supervised actor, a request's
/// task) and goes on.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(%location, %message, "panic");
    }));
}

/// Extra Prometheus text a variant appends to `/metrics` (its own gauges).
pub trait MetricsSource: Send + Sync {
    /// Refreshes the variant's gauges just before a scrape.
    fn refresh(&self);
}

/// What the edge serves.
#[derive(Clone)]
pub struct Services {
    /// Accounts.
    pub accounts: Arc<dyn AccountsService>,
    /// Transfers.
    pub transfers: Arc<dyn TransfersService>,
    /// Audit.
    pub ledger: Arc<dyn LedgerService>,
    /// Rooms.
    pub rooms: Arc<dyn RoomsService>,
    /// Chat sessions.
    pub sessions: Arc<dyn SessionsService>,
    /// Readiness.
    pub probe: Arc<dyn Probe>,
    /// Fault injection, when enabled.
    pub admin: Option<Arc<dyn Admin>>,
    /// The variant's own metrics.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

/// Edge limits. Built explicitly by each binary.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Deadline of every request; a transfer still in flight then is
    /// answered 202 pending.
    pub request_timeout: Duration,
    /// Requests in flight at once; more are refused with 429.
    pub max_in_flight: usize,
    /// The time past which, when even the fastest admitted request of a
    /// window takes longer, the edge limits requests in flight to what
    /// finishes within it ([`admission`]); `None` (or zero): only
    /// `max_in_flight` applies.
    pub latency_target: Option<Duration>,
    /// How long a WebSocket send may block before the reader counts as
    /// too slow and is disconnected.
    pub ws_send_timeout: Duration,
    /// Answer requests sampled by their `traceparent` with their timing,
    /// hop by hop, in `Server-Timing` ([`timing`]). Off by default.
    pub server_timing: bool,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) services: Services,
    pub(crate) config: Arc<EdgeConfig>,
}

/// The router serving API.md.
pub fn router(services: Services, config: EdgeConfig) -> Router {
    let state = AppState {
        services,
        config: Arc::new(config.clone()),
    };
    let api = Router::new()
        .route("/v1/accounts", post(bank::open_account))
        .route("/v1/accounts/{id}", get(bank::get_account))
        .route("/v1/transfers", post(bank::transfer))
        .route("/v1/transfers/{id}", get(bank::get_transfer))
        .route("/v1/audit", get(bank::audit))
        .route("/v1/rooms", post(chat::create_room))
        .route(
            "/v1/rooms/{room}/messages",
            post(chat::post_message).get(chat::history),
        )
        .route("/v1/rooms/{room}/ws", get(ws::upgrade))
        .route("/admin/crash/{target}", post(ops::crash))
        .route("/admin/targets", get(ops::targets))
        .route_layer(axum::middleware::from_fn_with_state(
            admission::Gate {
                admission: admission::Admission::new(config.max_in_flight, config.latency_target),
                body_deadline: config.request_timeout,
            },
            admission::admit,
        ));
    Router::new()
        .merge(api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn(ops::observe))
        .layer(axum::middleware::map_response(close_after_unread_body))
        .layer(axum::middleware::from_fn_with_state(
            config.server_timing,
            timed,
        ))
        .with_state(state)
}

/// Times a sampled request as the span `edge` and answers its spans in
/// `Server-Timing`, when `enabled` (see [`timing`]).
async fn timed(
    axum::extract::State(enabled): axum::extract::State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !enabled || !timing::sampled(request.headers()) {
        return next.run(request).await;
    }
    let (mut response, spans) = timing::collect("edge", next.run(request)).await;
    timing::answer_with(response.headers_mut(), &spans);
    response
}

/// Marks a 413 or 408 answer `connection: close` (use with
/// `axum::middleware::map_response`). The rest of a refused or late body
/// is never read, so the server drops the connection; saying so keeps a
/// pooled client from sending its next request into it.
pub async fn close_after_unread_body(
    mut response: axum::response::Response,
) -> axum::response::Response {
    if matches!(
        response.status(),
        axum::http::StatusCode::PAYLOAD_TOO_LARGE | axum::http::StatusCode::REQUEST_TIMEOUT
    ) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Microseconds since the Unix epoch, now (saturating; 0 before 1970):
/// the one wall clock the variants stamp chat messages, ledger entries and
/// deadlines with (the rules take `now` as an argument and read no clock).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Resolves when standard input reaches its end: the parent holding the
/// other end (a launcher, a test, the harness) has exited or closed it to
/// ask for a shutdown, so a child never outlives its parent.
pub async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send):
/// the one shutdown signal of both variants and the harness.
pub async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // No SIGTERM handler: Ctrl-C still works.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Resolves on Ctrl-C or SIGTERM, or, when `on_stdin_eof`, once the
/// parent closes standard input: when a one-process variant stops.
pub async fn stop_requested(on_stdin_eof: bool) {
    let stdin_closed = async {
        if on_stdin_eof {
            stdin_closed().await;
            tracing::info!("parent gone (stdin closed); shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupted() => tracing::info!("shutting down"),
        () = stdin_closed => {}
    }
}

/// Serves `router` on `listener` within the default [`listen::Limits`]
/// until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve_with(listener, router, listen::Limits::default(), shutdown).await
}
