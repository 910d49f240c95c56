//! One service process: its state, its server, its operations routes
//! (`/healthz` and `/metrics` over HTTP/1, `grpc.health.v1` and reflection
//! over gRPC), and a graceful shutdown that drains in-flight calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use shared_domain::bank::{Begin, TransferRecord, TransferRequest, TransferStatus};
use shared_domain::error::BankResult;
use shared_domain::id::TransferId;
use shared_domain::known::KnownAccounts;
use shared_domain::local::{LocalAccounts, LocalJournal, LocalRooms};
use shared_domain::service::{Pause, TransferJournal};
use store::{AccountStore, ChatStore, JournalStore, Storage};

use crate::auth::Verifier;
use crate::clients::{Downstream, GrpcAccounts, GrpcTransfers};
use crate::ledger::{Feed, Ledger, now_us};
use crate::observe::GrpcMetricsLayer;
use crate::pki::Pki;
use crate::servers::{AccountsServer, ChatServer, TransfersServer};
use crate::settlement::Settlement;
use crate::wire::pb;

mod args;
mod gateway;

use edge::unfit::{Fatal, Unfit};

use args::Credentials;
pub use args::{ServiceArgs, ServiceKind};

/// The largest request message a service decodes. Requests are small (a
/// chat text is at most 4096 bytes); anything bigger is refused with
/// `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A journal that tells the ledger feed about every commit.
struct FeedingJournal<J> {
    inner: Arc<J>,
    feed: Feed,
}

#[async_trait]
impl<J: TransferJournal> TransferJournal for FeedingJournal<J> {
    async fn begin(&self, request: TransferRequest) -> BankResult<Begin> {
        self.inner.begin(request).await
    }
    async fn resolve(&self, id: &TransferId, status: TransferStatus) -> BankResult<TransferRecord> {
        let record = self.inner.resolve(id, status).await?;
        self.feed.committed(&record);
        Ok(record)
    }
    async fn abandon(&self, id: &TransferId) -> BankResult<()> {
        self.inner.abandon(id).await
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        self.inner.get(id).await
    }
    async fn pending(&self) -> BankResult<Vec<TransferRecord>> {
        self.inner.pending().await
    }
    async fn pending_count(&self) -> BankResult<u64> {
        self.inner.pending_count().await
    }
}

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

/// Runs one service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    kind: ServiceKind,
    args: ServiceArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let _ = edge::ops::prometheus();
    if args.exit_on_stdin_eof {
        let token = shutdown.clone();
        tokio::spawn(async move {
            edge::stdin_closed().await;
            tracing::info!("launcher gone (stdin closed); shutting down");
            token.cancel();
        });
    }
    let tokens = Credentials::of(kind, &args)?;
    match kind {
        ServiceKind::Gateway => {
            gateway::serve_gateway(&args, &tokens, listener, addr, shutdown).await
        }
        ServiceKind::Ledger => serve_ledger(&args, &tokens, listener, addr, shutdown).await,
        ServiceKind::Accounts | ServiceKind::Transfers | ServiceKind::Chat => {
            let (routes, reporter, storage) = grpc_base(kind, &args)?;
            let unfit = Unfit::default();
            let routes = match kind {
                ServiceKind::Transfers => {
                    transfers_routes(
                        routes, &reporter, storage, &args, &tokens, &shutdown, &unfit,
                    )
                    .await?
                }
                ServiceKind::Chat => chat_routes(routes, &reporter, storage, &args, &unfit).await?,
                _ => accounts_routes(routes, &reporter, storage, &args, &unfit).await?,
            };
            stop_when_unfit(&unfit, reporter, &shutdown);
            serve_domain(kind, routes, &args, &tokens, listener, addr, shutdown).await?;
            anyhow::ensure!(
                !unfit.is_raised(),
                "{} could not persist a change; exiting so that it is restarted and reloads its store",
                kind.name()
            );
            Ok(())
        }
    }
}

/// Once a commit fails: NOT_SERVING to every health check, then a
/// draining stop (the caller exits with an error).
fn stop_when_unfit(
    unfit: &Unfit,
    reporter: tonic_health::server::HealthReporter,
    shutdown: &CancellationToken,
) {
    let (unfit, shutdown) = (unfit.clone(), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = unfit.raised() => {}
            () = shutdown.cancelled() => return,
        }
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        shutdown.cancel();
    });
}

/// The ledger: the read model, served over HTTP/JSON.
async fn serve_ledger(
    args: &ServiceArgs,
    tokens: &Credentials,
    listener: TcpListener,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let kind = ServiceKind::Ledger;
    let ledger = Ledger::new(
        GrpcAccounts::new(
            Downstream::new(&args.client("accounts", &args.accounts_url, tokens)?)?,
            args.transfer_path,
        ),
        GrpcTransfers(Downstream::new(&args.client(
            "transfers",
            &args.transfers_url,
            tokens,
        )?)?),
    );
    let mut router = ledger.router().merge(ops_routes());
    if let Some(verifier) = &tokens.verifier {
        router = router.layer(crate::auth::layer::<axum::body::Body>(
            verifier.clone(),
            false,
        ));
    }
    let router = router
        .layer(crate::trace::TraceLayer)
        .layer(edge::timing::ServeLayer::new(args.server_timing));
    announce(kind, addr);
    match args.pki() {
        Some(pki) => {
            crate::pki::serve_tls(listener, router, pki.http_server(kind.name())?, shutdown).await?
        }
        None => edge::serve(listener, router, shutdown.cancelled_owned()).await?,
    }
    Ok(())
}

/// What every gRPC service serves besides its own: health, reflection and
/// the ops routes; and its storage.
fn grpc_base(
    kind: ServiceKind,
    args: &ServiceArgs,
) -> anyhow::Result<(
    tonic::service::Routes,
    tonic_health::server::HealthReporter,
    Storage,
)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = tonic::service::Routes::from(ops_routes())
        .add_service(health)
        .add_service(reflection);
    Ok((routes, reporter, args.storage(kind)?))
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

/// The accounts service.
async fn accounts_routes(
    routes: tonic::service::Routes,
    reporter: &tonic_health::server::HealthReporter,
    storage: Storage,
    args: &ServiceArgs,
    unfit: &Unfit,
) -> anyhow::Result<tonic::service::Routes> {
    let durable = storage.is_durable();
    let store = AccountStore::new(storage.namespace("accounts"));
    let book = store.load()?;
    let tombstones = store.tombstones(crate::settlement::now_unix_us())?;
    let store = durable.then(|| Fatal::new(store, unfit));
    let accounts = Arc::new(LocalAccounts::restored(book, store));
    // Settled transfers' step records are dropped behind the fence,
    // which keeps the tombstones this book persisted.
    let settlement = {
        let (settle, count) = (accounts.clone(), accounts.clone());
        Settlement::new(
            Duration::from_millis(args.call_timeout_ms),
            Duration::from_millis(args.max_clock_skew_ms),
            tombstones,
            move |ids, until_us| settle.settle(ids, until_us),
            move || count.step_records(),
        )
    };
    let server = AccountsServer::settling(accounts, settlement);
    let service = pb::bank::accounts_server::AccountsServer::new(server)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    Ok(serving(routes, reporter, service).await)
}

/// The transfers service: the saga over its journal and the accounts.
async fn transfers_routes(
    routes: tonic::service::Routes,
    reporter: &tonic_health::server::HealthReporter,
    storage: Storage,
    args: &ServiceArgs,
    tokens: &Credentials,
    shutdown: &CancellationToken,
    unfit: &Unfit,
) -> anyhow::Result<tonic::service::Routes> {
    let kind = ServiceKind::Transfers;
    let durable = storage.is_durable();
    let store = JournalStore::new(storage.namespace("journal"));
    let journal = store.load()?;
    let store = durable.then(|| Fatal::new(store, unfit));
    let local = Arc::new(LocalJournal::restored(journal, store));
    let snapshot = {
        let local = local.clone();
        Arc::new(move || local.records())
    };
    let feed = Feed::start(
        args.http(kind)?,
        &args.ledger_url,
        65_536,
        snapshot,
        tokens.minter.clone(),
        shutdown.clone(),
    )?;
    let journal = Arc::new(FeedingJournal { inner: local, feed });
    let accounts = GrpcAccounts::new(
        Downstream::new(&args.client("accounts", &args.accounts_url, tokens)?)?,
        args.transfer_path,
    );
    let accounts_breaker = accounts.downstream().breaker().clone();
    // The payee cache every fabric puts in front of its accounts.
    let accounts = Arc::new(KnownAccounts::new(accounts));
    let pause: Arc<dyn Pause> = Arc::new(edge::backoff::Backoff::new(
        Duration::from_millis(5),
        Duration::from_millis(500),
        shutdown.clone(),
    ));
    let transfers = Arc::new(edge::transfers::SagaTransfers::new(
        journal.clone(),
        accounts,
        pause,
    ));
    // Transfers left pending by a crash complete once the accounts
    // answer; until then the saga's pause retries.
    let resume = transfers.clone();
    tokio::spawn(async move {
        match resume.resume_pending().await {
            Ok(n) if n > 0 => tracing::info!(resolved = n, "resumed pending transfers"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "resuming pending transfers stopped"),
        }
    });
    let service = pb::bank::transfers_server::TransfersServer::new(TransfersServer {
        transfers,
        journal,
        accounts: Some(accounts_breaker),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    Ok(serving(routes, reporter, service).await)
}

/// The chat service.
async fn chat_routes(
    routes: tonic::service::Routes,
    reporter: &tonic_health::server::HealthReporter,
    storage: Storage,
    args: &ServiceArgs,
    unfit: &Unfit,
) -> anyhow::Result<tonic::service::Routes> {
    let durable = storage.is_durable();
    let store = ChatStore::new(storage);
    let state = store.load()?;
    let rooms = LocalRooms::restored(
        state,
        durable.then(|| Fatal::new(store, unfit)),
        args.subscriber_buffer,
        Arc::new(now_us),
    );
    let service = pb::chat::chat_server::ChatServer::new(ChatServer(Arc::new(rooms)))
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    Ok(serving(routes, reporter, service).await)
}

/// Announces and serves one of the gRPC services.
async fn serve_domain(
    kind: ServiceKind,
    routes: tonic::service::Routes,
    args: &ServiceArgs,
    tokens: &Credentials,
    listener: TcpListener,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    announce(kind, addr);
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
