//! The same operation — read one account's balance — three ways, in one
//! run: an in-process call, a gRPC unary hop on loopback and an HTTP/JSON
//! hop on loopback; beside a raw loopback TCP round trip (64 bytes each
//! way), the floor of any hop. Then the gRPC hop with service tokens, with
//! mTLS, and with both, to price security per request.
//!
//! Placement: every server runs on one tokio runtime of its own (one
//! worker thread), every client on another (one worker), in this process,
//! unpinned; the same for every variant, so the ratios compare fabrics,
//! not placements. The state behind every hop is the same
//! `LocalAccounts` with 1000 accounts, served by the real gRPC server
//! stack (`process::serve_grpc`) and the real client stack
//! (`clients::GrpcAccounts`: shedding, breaker, limit, deadline, retries).
//!
//! `cargo bench -p microservices --bench hops` prints criterion estimates,
//! per-call percentiles, and a table of p50 ratios.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use bench_support::percall::{Percentiles, per_call};
use microservices::auth::{Minter, TokenKey, Verifier};
use microservices::clients::{ClientConfig, Downstream, GrpcAccounts, TransferPath};
use microservices::pki::Pki;
use microservices::resilience::{BreakerConfig, RetryConfig};
use microservices::servers::AccountsServer;
use microservices::wire::pb::bank as b;
use shared_domain::id::AccountId;
use shared_domain::local::LocalAccounts;
use shared_domain::money::OpeningBalance;
use shared_domain::service::AccountsService;

const ACCOUNTS: u32 = 1000;

fn account(i: u64) -> AccountId {
    AccountId::new(&format!("a{}", i % u64::from(ACCOUNTS))).expect("valid id")
}

struct Servers {
    grpc_plain: SocketAddr,
    grpc_tokens: SocketAddr,
    grpc_mtls: SocketAddr,
    grpc_mtls_tokens: SocketAddr,
    http_json: SocketAddr,
    tcp_echo: SocketAddr,
    pki: Pki,
    key: TokenKey,
    accounts: Arc<LocalAccounts>,
    _shutdown: tokio_util::sync::DropGuard,
    _dir: std::path::PathBuf,
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn start_servers() -> Servers {
    microservices::pki::install_crypto_provider();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hops-bench-{}", std::process::id()));
    let pki = Pki::generate(&dir, &["accounts", "bench"]).expect("pki");
    let key = TokenKey::generate();
    let accounts = Arc::new(LocalAccounts::new());
    let shutdown = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (accounts, pki, key, shutdown) =
            (accounts.clone(), pki.clone(), key.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                for i in 0..u64::from(ACCOUNTS) {
                    accounts
                        .open(account(i), OpeningBalance::new(1_000_000).expect("valid"))
                        .await
                        .expect("open");
                }
                let routes = || {
                    tonic::service::Routes::new(b::accounts_server::AccountsServer::new(AccountsServer::new(accounts.clone())))
                };
                let verifier = || Some(Arc::new(Verifier::new(key.clone(), "accounts")));
                let mut addrs = Vec::new();
                for (tls, tokens) in [(false, false), (false, true), (true, false), (true, true)] {
                    let (listener, addr) = bind().await;
                    addrs.push(addr);
                    let (routes, pki, verifier, shutdown) = (
                        routes(),
                        tls.then(|| pki.clone()),
                        if tokens { verifier() } else { None },
                        shutdown.clone(),
                    );
                    tokio::spawn(async move {
                        microservices::process::serve_grpc(routes, "accounts", pki.as_ref(), verifier, false, listener, shutdown)
                            .await
                            .expect("grpc server");
                    });
                }
                // The HTTP/JSON hop: the same read behind axum.
                let (listener, http_addr) = bind().await;
                let app = axum::Router::new()
                    .route(
                        "/v1/balance/{id}",
                        get(|State(a): State<Arc<LocalAccounts>>, Path(id): Path<String>| async move {
                            let id = AccountId::new(&id).map_err(|_| axum::http::StatusCode::BAD_REQUEST)?;
                            let view = a.balance(&id).await.map_err(|_| axum::http::StatusCode::NOT_FOUND)?;
                            Ok::<_, axum::http::StatusCode>(axum::Json(serde_json::json!({
                                "account_id": view.account_id.as_str(),
                                "balance": view.balance.minor_units(),
                            })))
                        }),
                    )
                    .with_state(accounts.clone());
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await
                        .expect("http server");
                });
                // The floor: a raw TCP echo.
                let (listener, echo_addr) = bind().await;
                tokio::spawn(async move {
                    while let Ok((mut socket, _)) = listener.accept().await {
                        let _ = socket.set_nodelay(true);
                        tokio::spawn(async move {
                            let mut buf = [0u8; 64];
                            while socket.read_exact(&mut buf).await.is_ok() {
                                if socket.write_all(&buf).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                });
                tx.send((addrs, http_addr, echo_addr)).expect("report addresses");
                shutdown.cancelled().await;
            });
        });
    }
    let (addrs, http_json, tcp_echo) = rx.recv().expect("servers started");
    Servers {
        grpc_plain: addrs[0],
        grpc_tokens: addrs[1],
        grpc_mtls: addrs[2],
        grpc_mtls_tokens: addrs[3],
        http_json,
        tcp_echo,
        pki,
        key,
        accounts,
        _shutdown: shutdown.drop_guard(),
        _dir: dir,
    }
}

fn client(servers: &Servers, addr: SocketAddr, tls: bool, tokens: bool) -> Arc<GrpcAccounts> {
    let scheme = if tls { "https" } else { "http" };
    let config = ClientConfig {
        name: "accounts".into(),
        url: format!("{scheme}://{addr}"),
        timeout: Duration::from_secs(5),
        max_in_flight: 1024,
        breaker: BreakerConfig::default(),
        retry: RetryConfig::default(),
        tokens: tokens.then(|| Arc::new(Minter::new(servers.key.clone(), "bench"))),
        tls: tls.then(|| {
            servers
                .pki
                .grpc_client("bench", "accounts")
                .expect("client tls")
        }),
    };
    Arc::new(GrpcAccounts::new(
        Downstream::new(&config).expect("client"),
        TransferPath::Coarse,
    ))
}

fn hops(c: &mut Criterion) {
    bench_support::register_font();
    let servers = start_servers();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let mut group = c.benchmark_group("hop");
    let mut results: Vec<(&str, Option<Percentiles>)> = Vec::new();

    let local = servers.accounts.clone();
    results.push((
        "in_process",
        per_call(&mut group, &rt, "in_process", "hop/in_process", || {
            let local = local.clone();
            move |i| {
                let local = local.clone();
                async move {
                    local.balance(&account(i)).await.expect("balance");
                }
            }
        }),
    ));

    let echo = rt.block_on(async {
        let s = TcpStream::connect(servers.tcp_echo).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Arc::new(tokio::sync::Mutex::new(s))
    });
    results.push((
        "tcp_echo",
        per_call(&mut group, &rt, "tcp_echo", "hop/tcp_echo", || {
            let echo = echo.clone();
            move |_| {
                let echo = echo.clone();
                async move {
                    let mut s = echo.lock().await;
                    let mut buf = [7u8; 64];
                    s.write_all(&buf).await.expect("write");
                    s.read_exact(&mut buf).await.expect("read");
                }
            }
        }),
    ));

    let http = reqwest::Client::builder().build().expect("http client");
    let http_base = format!("http://{}/v1/balance", servers.http_json);
    results.push((
        "http_json",
        per_call(&mut group, &rt, "http_json", "hop/http_json", || {
            let (http, base) = (http.clone(), http_base.clone());
            move |i| {
                let request = http.get(format!("{base}/{}", account(i)));
                async move {
                    let body: serde_json::Value = request
                        .send()
                        .await
                        .expect("send")
                        .json()
                        .await
                        .expect("json");
                    assert!(body["balance"].is_i64());
                }
            }
        }),
    ));

    let bare = rt.block_on(async {
        tonic::transport::Channel::from_shared(format!("http://{}", servers.grpc_plain))
            .expect("url")
            .connect()
            .await
            .expect("connect")
    });
    results.push((
        "grpc_bare_client",
        per_call(
            &mut group,
            &rt,
            "grpc_bare_client",
            "hop/grpc_bare_client",
            || {
                let bare = bare.clone();
                move |i| {
                    let mut client = b::accounts_client::AccountsClient::new(bare.clone());
                    let request = b::BalanceRequest {
                        account_id: account(i).to_string(),
                    };
                    async move {
                        client.balance(request).await.expect("balance");
                    }
                }
            },
        ),
    ));

    for (name, addr, tls, tokens) in [
        ("grpc", servers.grpc_plain, false, false),
        ("grpc_tokens", servers.grpc_tokens, false, true),
        ("grpc_mtls", servers.grpc_mtls, true, false),
        ("grpc_mtls_tokens", servers.grpc_mtls_tokens, true, true),
    ] {
        // The lazy channel spawns its connection task: inside the runtime.
        let client = {
            let _inside = rt.enter();
            client(&servers, addr, tls, tokens)
        };
        // Connect (and handshake) before timing.
        rt.block_on(client.balance(&account(0))).expect("warm up");
        let label = format!("hop/{name}");
        results.push((
            name,
            per_call(&mut group, &rt, name, &label, || {
                let client = client.clone();
                move |i| {
                    let client = client.clone();
                    async move {
                        client.balance(&account(i)).await.expect("balance");
                    }
                }
            }),
        ));
    }
    group.finish();

    let p50 = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, p)| *p)
            .map(|p| p.p50 as f64)
    };
    if let (Some(tcp), Some(local)) = (p50("tcp_echo"), p50("in_process")) {
        println!("\np50 ratios (same run): hop / raw TCP round trip, hop / in-process call");
        for (name, p) in &results {
            if let Some(p) = p {
                println!(
                    "  {name:<18} p50 {:>9.2} us  p99 {:>9.2} us  x{:>7.2} TCP  x{:>9.1} in-process",
                    p.p50 as f64 / 1000.0,
                    p.p99 as f64 / 1000.0,
                    p.p50 as f64 / tcp,
                    p.p50 as f64 / local
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&servers._dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hops
}
criterion_main!(benches);
