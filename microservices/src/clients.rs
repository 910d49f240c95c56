//! gRPC clients implementing the shared service traits, so the gateway's
//! edge and the transfers service's saga run unchanged over the network.
//!
//! Every client's channel is wrapped in tower layers, outermost first:
//! load shedding (a full concurrency limit answers `RESOURCE_EXHAUSTED` at
//! once instead of queueing), the circuit breaker, the concurrency limit,
//! then tonic's channel (which enforces the `grpc-timeout` it sends).
//! Around each call: the deadline (what remains of the caller's, at most
//! the client's own) and retries for idempotent calls.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use shared_domain::error::CallError;

use crate::deadline;
use crate::resilience::{Breaker, BreakerConfig, BreakerLayer, Retry, RetryConfig, Watch};

mod bank;
mod chat;
mod hub;

pub use bank::{GrpcAccounts, GrpcTransfers, TransferPath};
pub use chat::GrpcRooms;
pub use hub::RoomHubs;

/// Less time than this left, a call is not made (its deadline passed).
const MIN_BUDGET: Duration = Duration::from_millis(1);

/// A layered channel: shed → breaker → limit → tonic.
pub type Layered = tower::load_shed::LoadShed<
    crate::resilience::BreakerService<tower::limit::ConcurrencyLimit<Channel>>,
>;

/// The status tonic makes of a shed call carries the `Overloaded` error as
/// its source.
fn shed(status: &Status) -> bool {
    std::error::Error::source(status).is_some_and(|e| e.is::<tower::load_shed::error::Overloaded>())
}

/// How a client reaches one downstream.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The downstream's name (metrics, errors).
    pub name: String,
    /// Its address, `http://host:port`.
    pub url: String,
    /// The longest a call may take (less if the caller's deadline is nearer).
    pub timeout: Duration,
    /// Calls in flight at once; more are shed.
    pub max_in_flight: usize,
    /// The breaker's knobs.
    pub breaker: BreakerConfig,
    /// The retries' knobs.
    pub retry: RetryConfig,
    /// Mints the service token sent with every call, when tokens are on.
    pub tokens: Option<Arc<crate::auth::Minter>>,
    /// TLS with a client certificate, under `--mtls` (the URL is https).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

/// The parts every client shares.
pub struct Downstream {
    channel: Layered,
    breaker: Arc<Breaker>,
    /// The breaker's watcher of the downstream's health.
    _watch: Watch,
    retry: Retry,
    timeout: Duration,
    name: String,
    /// `call.<name>`: this downstream's span in `Server-Timing`.
    span_name: String,
    tokens: Option<Arc<crate::auth::Minter>>,
}

impl Downstream {
    /// A lazily connected, layered channel to `config.url`.
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(config.url.clone())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            // A connection whose peer went silent (a partition, a paused
            // container) is found dead within two seconds and the channel
            // reconnects, instead of the next calls waiting out TCP's
            // retransmissions after the peer is back (found by the
            // container partition run: 2.5 s of failures after the
            // reconnect with a 10 s interval). Also while idle: an open
            // breaker sends no calls, and its first probe must not land on
            // a dead connection. One ping a second per connection.
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(1))
            .keep_alive_while_idle(true);
        let endpoint = match &config.tls {
            Some(tls) => endpoint.tls_config(tls.clone())?,
            None => endpoint,
        };
        let breaker = Breaker::new(&config.name, config.breaker);
        let raw = endpoint.connect_lazy();
        // Health checks on the calls' own channel while the breaker is
        // open: the one that finds the restarted process also connects
        // the channel the calls take.
        let watch = breaker.watch({
            let raw = raw.clone();
            move || {
                let check = health(raw.clone());
                async move { check.await.is_ok() }
            }
        });
        let channel = tower::ServiceBuilder::new()
            .load_shed()
            .layer(BreakerLayer::new(breaker.clone()))
            .concurrency_limit(config.max_in_flight)
            .service(raw);
        Ok(Self {
            channel,
            breaker,
            _watch: watch,
            retry: Retry::new(&config.name, config.retry),
            timeout: config.timeout,
            name: config.name.clone(),
            span_name: format!("call.{}", config.name),
            tokens: config.tokens.clone(),
        })
    }

    /// The downstream's breaker.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let budget = deadline::budget(self.timeout);
        request.set_timeout(budget);
        // The absolute deadline too: the accounts service's fence refuses a
        // step that arrives after it (a stale copy).
        crate::settlement::set_deadline(&mut request, budget);
        traced(&mut request);
        self.authorize(&mut request);
        request
    }

    /// Adds this service's token for the downstream, when tokens are on.
    fn authorize<T>(&self, request: &mut Request<T>) {
        if let Some(minter) = &self.tokens
            && let Ok(value) = format!("Bearer {}", minter.token_for(&self.name)).parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
    }

    /// One unary call with the client's policy: deadline, retries when
    /// `idempotent`, and the status read back into the domain's error.
    async fn unary<Req, Resp, E, Fut>(
        &self,
        idempotent: bool,
        message: Req,
        error: fn(&Status) -> CallError<E>,
        call: impl Fn(Layered, Request<Req>) -> Fut,
    ) -> Result<Resp, CallError<E>>
    where
        Req: Clone,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        self.retry
            .run(idempotent, || {
                // No time left (a retry late in its request, a request
                // that waited out its deadline): not sent, and no breaker
                // permit spent on a call that cannot succeed (a half-open
                // probe so spent reopened the breaker at once).
                let expired = deadline::budget(self.timeout) < MIN_BUDGET;
                let request = self.request(message.clone());
                // A sampled request times each attempt, with what the
                // callee reports of itself nested under it.
                let span = edge::timing::enter(&self.span_name);
                let fut = (!expired).then(|| call(self.channel.clone(), request));
                async move {
                    let Some(fut) = fut else {
                        return Err(CallError::DeadlineExceeded);
                    };
                    let answer = fut.await;
                    if let Some(span) = &span {
                        span.adopt_header(match &answer {
                            Ok(response) => response.metadata().as_ref().get(edge::timing::HEADER),
                            Err(status) => status.metadata().as_ref().get(edge::timing::HEADER),
                        });
                    }
                    drop(span);
                    answer.map(Response::into_inner).map_err(|s| {
                        if shed(&s) {
                            CallError::Overloaded
                        } else {
                            error(&s)
                        }
                    })
                }
            })
            .await
    }
}

/// Asks the service behind `channel` whether it serves (`grpc.health.v1`);
/// why not, if it does not. The gateway's readiness and the breakers'
/// watchers ask the same question.
pub async fn health(channel: Channel) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| s.message().to_owned())?;
    if answer.get_ref().status != ServingStatus::Serving as i32 {
        return Err("not serving".to_owned());
    }
    Ok(())
}

/// Sends the current trace context (this hop's span as the parent).
fn traced<T>(request: &mut Request<T>) {
    if let Some(context) = crate::trace::current()
        && let Ok(value) = context.header().parse()
    {
        request.metadata_mut().insert("traceparent", value);
    }
}

fn decoded<T, E>(r: Result<T, Status>) -> Result<T, CallError<E>> {
    // The downstream answered something that does not decode: a bug or a
    // version skew, not a domain answer.
    r.map_err(|s| CallError::Unavailable(format!("undecodable answer: {}", s.message())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceContext;

    #[tokio::test]
    async fn calls_carry_the_current_trace_with_this_hop_as_parent() {
        let mut outside = Request::new(());
        traced(&mut outside);
        assert!(
            outside.metadata().get("traceparent").is_none(),
            "no trace, no header"
        );
        let hop = TraceContext::from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let sent = crate::trace::scope_for_test(hop, async {
            let mut request = Request::new(());
            traced(&mut request);
            request
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .await
        .expect("header sent");
        let next = TraceContext::from_header(Some(&sent));
        assert_eq!(next.trace_id, hop.trace_id);
        assert_eq!(next.parent_span_id, Some(hop.span_id));
    }
}
