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

use async_trait::async_trait;
use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, Resolution, StepResult, TransferRecord,
    TransferRequest,
};
use shared_domain::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use shared_domain::error::{BankResult, CallError, ChatError, ChatResult};
use shared_domain::id::{AccountId, RoomName, TransferId};
use shared_domain::money::OpeningBalance;
use shared_domain::service::{AccountsService, RoomsService, Subscription, TransfersService};

use crate::deadline;
use crate::resilience::{Breaker, BreakerConfig, BreakerLayer, Retry, RetryConfig};
use crate::wire::pb::bank::accounts_client::AccountsClient;
use crate::wire::pb::bank::transfers_client::TransfersClient;
use crate::wire::pb::chat::chat_client::ChatClient;
use crate::wire::pb::{bank as b, chat as c};
use crate::wire::{self, bank_error, chat_error};

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
        let channel = tower::ServiceBuilder::new()
            .load_shed()
            .layer(BreakerLayer::new(breaker.clone()))
            .concurrency_limit(config.max_in_flight)
            .service(endpoint.connect_lazy());
        Ok(Self {
            channel,
            breaker,
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
                let request = self.request(message.clone());
                // A sampled request times each attempt, with what the
                // callee reports of itself nested under it.
                let span = edge::timing::enter(&self.span_name);
                let fut = call(self.channel.clone(), request);
                async move {
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

/// How the transfers service moves a transfer's money at the accounts
/// service: the switch that shows what chattiness costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferPath {
    /// One `ApplyTransfer` call: the payee check, debit and credit in one
    /// round trip, applied under one lock and committed together (what a
    /// latency-minded team ships when one service owns every account).
    Coarse,
    /// One call per step: `Balance` for the payee (until the payee cache
    /// knows it), `ApplyStep` for the debit, `ApplyStep` for the credit:
    /// three sequential round trips to the same process.
    Fine,
}

impl TransferPath {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TransferPath::Coarse => "coarse",
            TransferPath::Fine => "fine",
        }
    }
}

/// `AccountsService` over `bank.v1.Accounts`.
pub struct GrpcAccounts {
    downstream: Arc<Downstream>,
    path: TransferPath,
    /// Settled transfers on their way to the accounts service, in
    /// batches (started with the first one).
    settled: std::sync::OnceLock<tokio::sync::mpsc::Sender<TransferId>>,
}

/// Settled transfers waiting to be reported before more are dropped (and
/// their records kept).
const SETTLE_QUEUE: usize = 65_536;
/// Transfers reported in one `Settle` call at most.
const SETTLE_BATCH: usize = 1024;
/// How long the first settled transfer of a batch waits for others.
const SETTLE_LINGER: Duration = Duration::from_millis(20);
/// Tries of one `Settle` batch (about 10 s in all) before its records are
/// left to the accounts.
const SETTLE_ATTEMPTS: u32 = 15;

impl GrpcAccounts {
    /// A client of the accounts service whose sagas take `path`.
    pub fn new(downstream: Downstream, path: TransferPath) -> Self {
        Self {
            downstream: Arc::new(downstream),
            path,
            settled: std::sync::OnceLock::new(),
        }
    }

    /// The client's channel and policy (its breaker, say).
    pub fn downstream(&self) -> &Downstream {
        &self.downstream
    }

    /// Reports settled transfers in batches: the first one waits
    /// [`SETTLE_LINGER`] for others (nothing waits on a settlement, so a
    /// batch may take its time; sent at once, a batch would be one
    /// transfer at moderate rates, an extra call per transfer), then
    /// everything waiting goes, up to [`SETTLE_BATCH`]. A batch that cannot
    /// be sent is dropped after its retries: the accounts keep those
    /// records (memory, never money).
    fn settler(&self) -> &tokio::sync::mpsc::Sender<TransferId> {
        self.settled.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<TransferId>(SETTLE_QUEUE);
            let downstream = self.downstream.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(SETTLE_BATCH);
                while crate::batch::next(&mut rx, &mut batch, SETTLE_BATCH, SETTLE_LINGER).await {
                    let message = b::SettleRequest { transfer_ids: batch.drain(..).map(|id| id.to_string()).collect() };
                    // Across an outage of the accounts (a restart takes
                    // about half a second), then given up.
                    let mut pause = Duration::from_millis(50);
                    for attempt in 1..=SETTLE_ATTEMPTS {
                        let sent = downstream
                            .unary(true, message.clone(), bank_error, |ch, r| async move { AccountsClient::new(ch).settle(r).await })
                            .await;
                        match sent {
                            Ok(_) => break,
                            Err(e) if attempt == SETTLE_ATTEMPTS => {
                                metrics::counter!("transfers_settle_batches_failed_total").increment(1);
                                tracing::warn!(error = %e, "a batch of settled transfers was not reported; the accounts keep their records");
                            }
                            Err(_) => {
                                tokio::time::sleep(pause).await;
                                pause = (pause * 2).min(Duration::from_secs(1));
                            }
                        }
                    }
                }
            });
            tx
        })
    }
}

#[async_trait]
impl AccountsService for GrpcAccounts {
    async fn open(&self, account: AccountId, opening: OpeningBalance) -> BankResult<AccountView> {
        let message = b::OpenRequest {
            account_id: account.to_string(),
            opening_balance: opening.balance().minor_units(),
        };
        // Not idempotent: a retry after a lost answer would say "exists".
        let a = self
            .downstream
            .unary(false, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).open(r).await
            })
            .await?;
        decoded(wire::account_from_wire(&a))
    }
    async fn balance(&self, account: &AccountId) -> BankResult<AccountView> {
        let message = b::BalanceRequest {
            account_id: account.to_string(),
        };
        let a = self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).balance(r).await
            })
            .await?;
        decoded(wire::account_from_wire(&a))
    }
    async fn apply_step(&self, step: AccountStep) -> BankResult<StepResult> {
        let message = wire::step_to_wire(&step);
        // Idempotent per (transfer_id, kind): a retried step moves no money twice.
        let r = self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).apply_step(r).await
            })
            .await?;
        decoded(wire::step_result_from_wire(&r))
    }
    /// Queued for the next `Settle` batch; a full queue drops it (and the
    /// accounts keep its records).
    fn settled(&self, request: &TransferRequest) {
        if self
            .settler()
            .try_send(request.transfer_id.clone())
            .is_err()
        {
            metrics::counter!("transfers_settle_dropped_total").increment(1);
        }
    }
    async fn apply_transfer(&self, request: &TransferRequest) -> BankResult<Option<Resolution>> {
        if self.path == TransferPath::Fine {
            return Ok(None);
        }
        let message = wire::transfer_to_wire(request);
        // Idempotent: every step it applies is recorded per (transfer_id, kind).
        match self
            .downstream
            .unary(true, message, bank_error, |ch, r| async move {
                AccountsClient::new(ch).apply_transfer(r).await
            })
            .await
        {
            Ok(outcome) => Ok(Some(Resolution::Resolved(decoded(
                wire::outcome_status_from_wire(&outcome),
            )?))),
            // Refused before money moved, as the saga's own checks refuse.
            Err(CallError::Domain(e)) => Ok(Some(Resolution::Abandon(e))),
            Err(e) => Err(e),
        }
    }
    async fn totals(&self) -> BankResult<AccountTotals> {
        let t = self
            .downstream
            .unary(true, b::TotalsRequest {}, bank_error, |ch, r| async move {
                AccountsClient::new(ch).totals(r).await
            })
            .await?;
        Ok(wire::totals_from_wire(&t))
    }
}

/// `TransfersService` over `bank.v1.Transfers`.
pub struct GrpcTransfers(pub Downstream);

impl GrpcTransfers {
    /// Transfers still pending in the journal.
    pub async fn pending_count(&self) -> BankResult<u64> {
        let p = self
            .0
            .unary(
                true,
                b::PendingCountRequest {},
                bank_error,
                |ch, r| async move { TransfersClient::new(ch).pending_count(r).await },
            )
            .await?;
        Ok(p.pending)
    }
}

#[async_trait]
impl TransfersService for GrpcTransfers {
    async fn transfer(&self, request: TransferRequest) -> BankResult<TransferRecord> {
        let message = wire::transfer_to_wire(&request);
        // Idempotent under its transfer_id.
        let r = self
            .0
            .unary(true, message, bank_error, |ch, r| async move {
                TransfersClient::new(ch).transfer(r).await
            })
            .await?;
        decoded(wire::record_from_wire(&r))
    }
    async fn get(&self, id: &TransferId) -> BankResult<TransferRecord> {
        let message = b::GetTransferRequest {
            transfer_id: id.to_string(),
        };
        let r = self
            .0
            .unary(true, message, bank_error, |ch, r| async move {
                TransfersClient::new(ch).get(r).await
            })
            .await?;
        decoded(wire::record_from_wire(&r))
    }
}

/// A page of history is up to 1000 messages of 4 KiB: more than tonic's
/// default 4 MiB answer limit.
fn chat_client(channel: Layered) -> ChatClient<Layered> {
    ChatClient::new(channel).max_decoding_message_size(16 * 1024 * 1024)
}

/// `RoomsService` over `chat.v1.Chat`.
pub struct GrpcRooms(pub Downstream);

#[async_trait]
impl RoomsService for GrpcRooms {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        let message = c::CreateRoomRequest {
            room: room.to_string(),
        };
        self.0
            .unary(false, message, chat_error, |ch, r| async move {
                chat_client(ch).create_room(r).await
            })
            .await?;
        Ok(())
    }
    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let message = wire::post_to_wire(&request);
        // Idempotent per (room, author, client_msg_id).
        let o = self
            .0
            .unary(true, message, chat_error, |ch, r| async move {
                chat_client(ch).post(r).await
            })
            .await?;
        Ok(wire::outcome_from_wire(&o))
    }
    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        let message = c::HistoryRequest {
            room: room.to_string(),
            after: query.after,
            limit: query.limit,
        };
        let h = self
            .0
            .unary(true, message, chat_error, |ch, r| async move {
                chat_client(ch).history(r).await
            })
            .await?;
        h.messages
            .iter()
            .map(|m| decoded(wire::message_from_wire(m)))
            .collect()
    }
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        // No deadline on a live stream; opening it is retried like a read.
        let message = c::SubscribeRequest {
            room: room.to_string(),
            after,
        };
        let stream = self
            .0
            .retry
            .run(true, || {
                let mut request = Request::new(message.clone());
                traced(&mut request);
                self.0.authorize(&mut request);
                let channel = self.0.channel.clone();
                async move {
                    chat_client(channel)
                        .subscribe(request)
                        .await
                        .map_err(|s| chat_error(&s))
                }
            })
            .await?
            .into_inner();
        Ok(stream
            .map(|item| match item {
                Ok(m) => decoded::<_, ChatError>(wire::message_from_wire(&m)),
                Err(s) => Err(chat_error(&s)),
            })
            .boxed())
    }
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
