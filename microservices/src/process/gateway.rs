//! The gateway process: the shared edge over the gRPC and HTTP clients,
//! ready when every downstream answers its health check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use shared_domain::service::Pause;

use crate::clients::{Downstream, GrpcAccounts, GrpcRooms, GrpcTransfers};
use crate::ledger::HttpLedger;
use crate::resilience::Breaker;

use super::{Credentials, ServiceArgs, ServiceKind, announce};

/// Readiness of the gateway: every downstream answers its health check.
struct Downstreams {
    grpc: Vec<(&'static str, tonic::transport::Channel)>,
    ledger: String,
    http: reqwest::Client,
}

#[async_trait]
impl edge::Probe for Downstreams {
    async fn ready(&self) -> Result<(), String> {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
        for (name, channel) in &self.grpc {
            let answer = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|s| format!("{name}: {}", s.message()))?;
            if answer.get_ref().status != ServingStatus::Serving as i32 {
                return Err(format!("{name}: not serving"));
            }
        }
        let ledger = self
            .http
            .get(format!("{}/healthz", self.ledger))
            .send()
            .await
            .map_err(|e| format!("ledger: {e}"))?;
        if !ledger.status().is_success() {
            return Err(format!("ledger: {}", ledger.status()));
        }
        Ok(())
    }
}

pub(super) async fn serve_gateway(
    args: &ServiceArgs,
    tokens: &Credentials,
    listener: TcpListener,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let accounts = Arc::new(GrpcAccounts::new(
        Downstream::new(&args.client("accounts", &args.accounts_url, tokens)?)?,
        args.transfer_path,
    ));
    let transfers = Arc::new(GrpcTransfers(Downstream::new(&args.client(
        "transfers",
        &args.transfers_url,
        tokens,
    )?)?));
    let rooms = Arc::new(GrpcRooms(Downstream::new(&args.client(
        "chat",
        &args.chat_url,
        tokens,
    )?)?));
    let ledger = Arc::new(HttpLedger::new(
        args.http(ServiceKind::Gateway)?,
        &args.ledger_url,
        Duration::from_millis(args.call_timeout_ms),
        Breaker::new("ledger", args.breaker()),
        tokens.minter.clone(),
    )?);
    let pause: Arc<dyn Pause> = Arc::new(edge::backoff::Backoff::new(
        Duration::from_millis(5),
        Duration::from_millis(500),
        shutdown.clone(),
    ));
    let edge_config = edge::EdgeConfig {
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_in_flight: args.max_in_flight,
        ws_send_timeout: Duration::from_secs(5),
        server_timing: args.server_timing,
    };
    let sessions = Arc::new(edge::session::TaskSessions::new(
        rooms.clone(),
        pause,
        args.session_buffer,
        edge_config.ws_send_timeout,
    ));
    let channel = |name: &str, url: &str| -> anyhow::Result<tonic::transport::Channel> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_millis(args.call_timeout_ms));
        let endpoint = match args.pki() {
            Some(pki) => {
                endpoint.tls_config(pki.grpc_client(ServiceKind::Gateway.name(), name)?)?
            }
            None => endpoint,
        };
        Ok(endpoint.connect_lazy())
    };
    let probe = Arc::new(Downstreams {
        grpc: vec![
            ("accounts", channel("accounts", &args.accounts_url)?),
            ("transfers", channel("transfers", &args.transfers_url)?),
            ("chat", channel("chat", &args.chat_url)?),
        ],
        ledger: args.ledger_url.trim_end_matches('/').to_owned(),
        http: args
            .http(ServiceKind::Gateway)?
            .timeout(Duration::from_millis(args.call_timeout_ms))
            .build()?,
    });
    let services = edge::Services {
        accounts,
        transfers,
        ledger,
        rooms,
        sessions,
        probe,
        admin: None,
        metrics: None,
    };
    // The edge's deadline becomes every internal call's budget.
    let router = edge::router(services, edge_config)
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(args.request_timeout_ms),
            crate::deadline::at_the_edge,
        ))
        .layer(crate::trace::TraceLayer);
    announce(ServiceKind::Gateway, addr);
    edge::serve(listener, router, shutdown.cancelled_owned()).await?;
    Ok(())
}
