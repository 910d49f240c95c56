//! One process of a layout: the components of its group, each with its
//! state, its server on its own listener, its operations routes
//! (`/healthz` and `/metrics` over HTTP/1, `grpc.health.v1` and reflection
//! over gRPC), and a graceful shutdown that drains in-flight calls. The
//! components of one group call each other in-process through the shared
//! traits ([`InProcess`]); the rest over the network, as when split.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::layout::Group;
use crate::ledger::Ledger;
use crate::observe::GrpcMetricsLayer;
use crate::pki::Pki;
use crate::wire::pb;

mod args;
mod components;
mod gateway;

use edge::unfit::Unfit;

use args::Credentials;
pub use args::{ServiceArgs, ServiceKind};
use components::InProcess;

/// The largest request message a service decodes. Requests are small (a
/// chat text is at most 4096 bytes); anything bigger is refused with
/// `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Prints where the service listens, for the launcher (one line on stdout).
fn announce(kind: ServiceKind, addr: SocketAddr) {
    println!("listening {} {addr}", kind.name());
}

/// `/healthz` and `/metrics`, served beside gRPC over HTTP/1.
fn ops_routes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    edge::ops::prometheus().render(),
                )
            }),
        )
}

/// Runs the components of `group` in this process, each on its listener
/// from `listeners`, until `shutdown` is cancelled (or a commit fails).
pub async fn serve(
    group: &Group,
    args: ServiceArgs,
    mut listeners: Vec<(ServiceKind, TcpListener)>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = edge::ops::prometheus();
    if args.exit_on_stdin_eof {
        let token = shutdown.clone();
        tokio::spawn(async move {
            edge::stdin_closed().await;
            tracing::info!("launcher gone (stdin closed); shutting down");
            token.cancel();
        });
    }
    let unfit = Unfit::default();
    let mut local = InProcess::new(group, &unfit);
    let mut servers: Vec<BoxFuture<'static, anyhow::Result<()>>> = Vec::new();
    let mut reporters = Vec::new();
    for &kind in group.kinds() {
        let at = listeners
            .iter()
            .position(|(k, _)| *k == kind)
            .ok_or_else(|| anyhow::format_err!("no listener for {}", kind.name()))?;
        let (_, listener) = listeners.swap_remove(at);
        let addr = listener.local_addr()?;
        let tokens = Credentials::of(kind, &args)?;
        let server: BoxFuture<'static, anyhow::Result<()>> = match kind {
            ServiceKind::Gateway => {
                let router = gateway::router(&args, &tokens, &local, &shutdown)?;
                announce(kind, addr);
                Box::pin(serve_http(router, listener, shutdown.clone()))
            }
            ServiceKind::Ledger => {
                let ledger = local.ledger(&args, &tokens)?;
                let router = ledger_router(&ledger, &args, &tokens);
                announce(kind, addr);
                match args.pki() {
                    Some(pki) => Box::pin(crate::pki::serve_tls(
                        listener,
                        router,
                        pki.http_server(kind.name())?,
                        shutdown.clone(),
                    )),
                    None => Box::pin(serve_http(router, listener, shutdown.clone())),
                }
            }
            ServiceKind::Accounts | ServiceKind::Transfers | ServiceKind::Chat => {
                let (reporter, routes) = grpc_base()?;
                let routes = match kind {
                    ServiceKind::Accounts => {
                        local.accounts_routes(routes, &reporter, &args).await?
                    }
                    ServiceKind::Chat => local.chat_routes(routes, &reporter, &args).await?,
                    _ => {
                        local
                            .transfers_routes(routes, &reporter, &args, &tokens, &shutdown)
                            .await?
                    }
                };
                reporters.push(reporter);
                announce(kind, addr);
                let (args, shutdown) = (args.clone(), shutdown.clone());
                Box::pin(async move {
                    serve_grpc(
                        routes,
                        kind.name(),
                        args.pki().as_ref(),
                        tokens.verifier.clone(),
                        args.server_timing,
                        listener,
                        shutdown,
                    )
                    .await
                })
            }
        };
        servers.push(server);
    }
    stop_when_unfit(&unfit, reporters, &shutdown);
    // One server's failure stops the others: the process is one unit.
    let stopped = shutdown.clone();
    let results = futures::future::join_all(servers.into_iter().map(|server| {
        let stopped = stopped.clone();
        async move {
            let result = server.await;
            stopped.cancel();
            result
        }
    }))
    .await;
    for result in results {
        result?;
    }
    anyhow::ensure!(
        !unfit.is_raised(),
        "{group} could not persist a change; exiting so that it is restarted and reloads its store"
    );
    Ok(())
}

/// Serves an axum router over plain HTTP until `shutdown`.
async fn serve_http(
    router: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    edge::serve(listener, router, shutdown.cancelled_owned()).await?;
    Ok(())
}

/// Once a commit fails: NOT_SERVING to every health check, then a
/// draining stop (the caller exits with an error).
fn stop_when_unfit(
    unfit: &Unfit,
    reporters: Vec<tonic_health::server::HealthReporter>,
    shutdown: &CancellationToken,
) {
    let (unfit, shutdown) = (unfit.clone(), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = unfit.raised() => {}
            () = shutdown.cancelled() => return,
        }
        for reporter in reporters {
            reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        }
        shutdown.cancel();
    });
}

/// The ledger's HTTP/JSON routes as it serves them: tokens checked when
/// on, trace context, `Server-Timing`.
fn ledger_router(ledger: &Arc<Ledger>, args: &ServiceArgs, tokens: &Credentials) -> Router {
    let mut router = ledger.router().merge(ops_routes());
    if let Some(verifier) = &tokens.verifier {
        router = router.layer(crate::auth::layer::<axum::body::Body>(
            verifier.clone(),
            false,
        ));
    }
    router
        .layer(crate::trace::TraceLayer)
        .layer(edge::timing::ServeLayer::new(args.server_timing))
}

/// What every gRPC service serves besides its own: health, reflection and
/// the ops routes.
fn grpc_base() -> anyhow::Result<(tonic_health::server::HealthReporter, tonic::service::Routes)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = tonic::service::Routes::from(ops_routes())
        .add_service(health)
        .add_service(reflection);
    Ok((reporter, routes))
}

/// Adds a gRPC service to `routes` and reports it SERVING to the health
/// service.
async fn serving<S>(
    routes: tonic::service::Routes,
    reporter: &tonic_health::server::HealthReporter,
    service: S,
) -> tonic::service::Routes
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    reporter.set_serving::<S>().await;
    routes.add_service(service)
}

/// Serves gRPC `routes` as every service does: TLS with client
/// certificates when `pki` is given, tokens checked when `verifier` is,
/// per-method metrics, trace context, `Server-Timing` for sampled calls
/// when `server_timing`, HTTP/1 beside HTTP/2 for the ops routes, and a
/// draining shutdown.
pub async fn serve_grpc(
    routes: tonic::service::Routes,
    name: &str,
    pki: Option<&Pki>,
    verifier: Option<Arc<Verifier>>,
    server_timing: bool,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Server::tcp_nodelay applies only to listeners tonic binds itself; an
    // incoming stream carries its own. Without it, Nagle holds back the
    // small frames of a server stream until the peer's delayed ACK (40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let auth = tower::util::option_layer(
        verifier.map(|v| crate::auth::layer::<tonic::body::Body>(v, true)),
    );
    let mut server = tonic::transport::Server::builder();
    if let Some(pki) = pki {
        server = server.tls_config(pki.grpc_server(name)?)?;
    }
    server
        .accept_http1(true)
        .tcp_nodelay(true)
        .max_concurrent_streams(Some(4096))
        // Callers cancel calls whose deadline passed (RST_STREAM); h2's
        // default of 20 such resets in flight makes the server drop the
        // whole connection under exactly the overload it should shed.
        .http2_max_pending_accept_reset_streams(Some(4096))
        .layer(edge::timing::ServeLayer::new(server_timing))
        .layer(GrpcMetricsLayer)
        .layer(crate::trace::TraceLayer)
        .layer(auth)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}
