//! The gateway: the shared edge over the other components (in this
//! process, or reached by the gRPC and HTTP clients), ready when every
//! remote downstream answers its health check.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use shared_domain::service::Pause;

use super::{Credentials, InProcess, ServiceArgs, ServiceKind};

/// Readiness of the gateway: every remote downstream answers its health
/// check.
struct Downstreams {
    grpc: Vec<(&'static str, tonic::transport::Channel)>,
    ledger: Option<String>,
    http: reqwest::Client,
}

#[async_trait]
impl edge::Probe for Downstreams {
    async fn ready(&self) -> Result<(), String> {
        for (name, channel) in &self.grpc {
            crate::clients::health(channel.clone())
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        crate::ledger::healthz(&self.http, ledger)
            .await
            .map_err(|e| format!("ledger: {e}"))?;
        Ok(())
    }
}

/// The gateway's router: the shared edge over the other components, in
/// this process or over the network, ready when every remote one answers
/// its health check.
pub(super) fn router(
    args: &ServiceArgs,
    tokens: &Credentials,
    local: &InProcess,
    shutdown: &CancellationToken,
) -> anyhow::Result<axum::Router> {
    let (accounts, _) = local.accounts(args, tokens)?;
    let transfers = local.transfers(args, tokens)?;
    let rooms = local.rooms(args, tokens)?;
    let ledger = local.audit(args, tokens)?;
    let pause: Arc<dyn Pause> = Arc::new(edge::backoff::Backoff::new(
        Duration::from_millis(5),
        Duration::from_millis(500),
        shutdown.clone(),
    ));
    let edge_config = edge::EdgeConfig {
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_in_flight: args.max_in_flight,
        latency_target: edge::latency_target(args.latency_target_ms),
        ws_send_timeout: Duration::from_secs(5),
        server_timing: args.server_timing,
    };
    // Sessions of a remote chat share one upstream stream per room.
    let followed: Arc<dyn shared_domain::service::RoomsService> =
        if local.rooms_remote() && args.room_streams == super::args::RoomStreams::PerRoom {
            Arc::new(crate::clients::RoomHubs::new(
                rooms.clone(),
                pause.clone(),
                args.subscriber_buffer,
            ))
        } else {
            rooms.clone()
        };
    let sessions = Arc::new(edge::session::TaskSessions::new(
        followed,
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
    let remote = local.remote();
    let mut grpc = Vec::new();
    for (kind, url) in [
        (ServiceKind::Accounts, &args.accounts_url),
        (ServiceKind::Transfers, &args.transfers_url),
        (ServiceKind::Chat, &args.chat_url),
    ] {
        if remote.contains(&kind) {
            grpc.push((kind.name(), channel(kind.name(), url)?));
        }
    }
    let probe = Arc::new(Downstreams {
        grpc,
        ledger: remote
            .contains(&ServiceKind::Ledger)
            .then(|| args.ledger_url.trim_end_matches('/').to_owned()),
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
    Ok(edge::router(services, edge_config)
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(args.request_timeout_ms),
            crate::deadline::at_the_edge,
        ))
        .layer(crate::trace::TraceLayer))
}
