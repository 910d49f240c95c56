//! Who a service process is and every knob it takes (`ServiceArgs`, one
//! clap struct for `serve` and `up`), with what the knobs make: its
//! clients' configurations, its storage, its credentials.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

pub use crate::layout::ServiceKind;
use store::Storage;

use crate::auth::{Minter, TokenKey, Verifier};
use crate::clients::{ClientConfig, TransferPath};
use crate::pki::Pki;
use crate::resilience::{BreakerConfig, RetryConfig};

/// Every knob of a service process (also what the launcher passes on).
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Storage engine.
    #[arg(
        long,
        env = "MICROSERVICES_STORAGE",
        value_enum,
        default_value = "memory"
    )]
    pub storage: store::StorageKind,
    /// Directory of the durable stores (one redb file per service).
    #[arg(
        long,
        env = "MICROSERVICES_DATA_DIR",
        default_value = "data/microservices"
    )]
    pub data_dir: PathBuf,
    /// The accounts service, `http://host:port`.
    #[arg(
        long,
        env = "MICROSERVICES_ACCOUNTS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub accounts_url: String,
    /// The transfers service.
    #[arg(
        long,
        env = "MICROSERVICES_TRANSFERS_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub transfers_url: String,
    /// The ledger service (HTTP/JSON).
    #[arg(
        long,
        env = "MICROSERVICES_LEDGER_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub ledger_url: String,
    /// The chat service.
    #[arg(
        long,
        env = "MICROSERVICES_CHAT_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub chat_url: String,
    /// Longest a call to another service may take, milliseconds (less when
    /// the caller's deadline is nearer).
    #[arg(long, env = "MICROSERVICES_CALL_TIMEOUT_MS", default_value_t = 1000)]
    pub call_timeout_ms: u64,
    /// Calls in flight per downstream before they are shed.
    #[arg(
        long,
        env = "MICROSERVICES_CLIENT_MAX_IN_FLIGHT",
        default_value_t = 1024
    )]
    pub client_max_in_flight: usize,
    /// Circuit breaker: calls in the sliding window.
    #[arg(long, env = "MICROSERVICES_BREAKER_WINDOW", default_value_t = 20)]
    pub breaker_window: usize,
    /// Circuit breaker: calls needed before the failure rate is judged.
    #[arg(long, env = "MICROSERVICES_BREAKER_MIN_CALLS", default_value_t = 10)]
    pub breaker_min_calls: usize,
    /// Circuit breaker: failure rate that opens it, percent.
    #[arg(
        long,
        env = "MICROSERVICES_BREAKER_FAILURE_PERCENT",
        default_value_t = 50
    )]
    pub breaker_failure_percent: u8,
    /// Circuit breaker: how long it stays open, milliseconds.
    #[arg(long, env = "MICROSERVICES_BREAKER_OPEN_MS", default_value_t = 1000)]
    pub breaker_open_ms: u64,
    /// Circuit breaker: probe calls let through half-open.
    #[arg(long, env = "MICROSERVICES_BREAKER_PROBES", default_value_t = 3)]
    pub breaker_probes: u32,
    /// Retries: attempts in all for idempotent calls.
    #[arg(long, env = "MICROSERVICES_RETRY_ATTEMPTS", default_value_t = 3)]
    pub retry_attempts: u32,
    /// Request deadline at the gateway, milliseconds.
    #[arg(long, env = "MICROSERVICES_REQUEST_TIMEOUT_MS", default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// Requests in flight at the gateway before 429.
    #[arg(long, env = "MICROSERVICES_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Latency target, milliseconds: when even the fastest request of a
    /// 100 ms window takes longer (or the runtime's timers wake a tenth of
    /// it late), the edge limits requests in flight to what finishes
    /// within it and refuses the rest with 429 (0: only the in-flight
    /// bound applies).
    #[arg(long, env = "MICROSERVICES_LATENCY_TARGET_MS", default_value_t = edge::LATENCY_TARGET_MS)]
    pub latency_target_ms: u64,
    /// Messages a WebSocket reader may fall behind before it is disconnected.
    #[arg(long, env = "MICROSERVICES_SESSION_BUFFER", default_value_t = 1024)]
    pub session_buffer: usize,
    /// Messages a room subscriber may fall behind before its stream ends.
    #[arg(long, env = "MICROSERVICES_SUBSCRIBER_BUFFER", default_value_t = 256)]
    pub subscriber_buffer: usize,
    /// Settled transfers the journal keeps in memory with durable storage
    /// (the rest are read back from disk when asked for).
    #[arg(long, env = "MICROSERVICES_KEEP_SETTLED", default_value_t = shared_domain::bank::KEEP_SETTLED)]
    pub keep_settled: usize,
    /// Messages each room keeps in memory with durable storage (older
    /// pages and repeated posts are read back from disk).
    #[arg(long, env = "MICROSERVICES_KEEP_MESSAGES", default_value_t = shared_domain::chat::KEEP_MESSAGES)]
    pub keep_messages: usize,
    /// Require a signed service token (audience = the service) on every
    /// internal call, and send one with every call made.
    #[arg(long, env = "MICROSERVICES_SERVICE_TOKENS")]
    pub service_tokens: bool,
    /// The token signing key (64 hex digits; default
    /// `<data-dir>/secrets/token.key`); `up --service-tokens` makes a
    /// fresh one there at run time.
    #[arg(long, env = "MICROSERVICES_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,
    /// Mutual TLS on every internal hop (gRPC and HTTP/JSON), with
    /// certificates from the private CA in --pki-dir.
    #[arg(long, env = "MICROSERVICES_MTLS")]
    pub mtls: bool,
    /// The private CA and certificates (default `<data-dir>/pki`); `up
    /// --mtls` generates a fresh one there at run time, `microservices
    /// certs` makes one by hand.
    #[arg(long, env = "MICROSERVICES_PKI_DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Tokio worker threads of each service process (default: one per
    /// core, tokio's own default). Five processes on two cores each start
    /// two workers by default; the harness sizes them to its core budget
    /// (see bench's README).
    #[arg(long, env = "MICROSERVICES_WORKERS")]
    pub workers: Option<usize>,
    /// How far apart two services' clocks may be, milliseconds: a settled
    /// transfer's tombstone lives `--call-timeout-ms` plus this, so no
    /// delayed copy of its steps is applied (see `settlement`).
    #[arg(long, env = "MICROSERVICES_MAX_CLOCK_SKEW_MS", default_value_t = 1000)]
    pub max_clock_skew_ms: u64,
    /// Answer requests sampled by their `traceparent` (flag 01) with their
    /// timing, hop by hop, in `Server-Timing`: every service reports its
    /// own spans to its caller and the gateway answers the whole tree. Off
    /// by default.
    #[arg(long, env = "MICROSERVICES_SERVER_TIMING")]
    pub server_timing: bool,
    /// How the transfers service moves money at the accounts service:
    /// `coarse` (one call per transfer) or `fine` (one call per step).
    #[arg(
        long,
        env = "MICROSERVICES_TRANSFER_PATH",
        value_enum,
        default_value = "coarse"
    )]
    pub transfer_path: TransferPath,
    /// How the gateway follows a room for its WebSocket sessions when the
    /// chat service is another process: `per-room` (one upstream stream
    /// per room, fanned out in the gateway) or `per-subscriber` (one
    /// stream from the chat service per session).
    #[arg(
        long,
        env = "MICROSERVICES_ROOM_STREAMS",
        value_enum,
        default_value = "per-room"
    )]
    pub room_streams: RoomStreams,
    /// Shut down gracefully when standard input closes: the parent (the
    /// launcher, a test, the harness) holds the other end, so nothing it
    /// started outlives it.
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
}

/// Who a service process is, and its token minting and checking.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) me: ServiceKind,
    pub(super) minter: Option<Arc<Minter>>,
    pub(super) verifier: Option<Arc<Verifier>>,
}

impl Credentials {
    pub(super) fn of(kind: ServiceKind, args: &ServiceArgs) -> anyhow::Result<Self> {
        if !args.service_tokens {
            return Ok(Self {
                me: kind,
                minter: None,
                verifier: None,
            });
        }
        let path = args.token_key_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the token key {}", path.display()))?;
        let key = TokenKey::from_hex(&text)?;
        Ok(Self {
            me: kind,
            minter: Some(Arc::new(Minter::new(key.clone(), kind.name()))),
            verifier: Some(Arc::new(Verifier::new(key, kind.name()))),
        })
    }
}

impl ServiceArgs {
    /// Where the token key is read (and written by `up`).
    pub fn token_key_path(&self) -> PathBuf {
        self.token_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets").join("token.key"))
    }

    /// Where the PKI is read (and written by `up --mtls`).
    pub fn pki_path(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"))
    }

    pub(super) fn pki(&self) -> Option<Pki> {
        self.mtls.then(|| Pki::at(&self.pki_path()))
    }

    /// A reqwest builder for calls from `me`, with a client certificate
    /// under `--mtls`.
    pub(super) fn http(&self, me: ServiceKind) -> anyhow::Result<reqwest::ClientBuilder> {
        // An idle connection is let go before the server's 10 s for the
        // next request head would close it under a request.
        let builder = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5));
        match self.pki() {
            Some(pki) => pki.http_client(me.name(), builder),
            // Plain HTTP between services: no TLS, so no trust roots to
            // load (a FROM scratch image has none, and reqwest's platform
            // verifier refuses to start without them).
            None => Ok(builder.tls_backend_preconfigured(Pki::no_roots()?)),
        }
    }

    pub(super) fn client(
        &self,
        name: &str,
        url: &str,
        tokens: &Credentials,
    ) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig {
            name: name.to_owned(),
            url: url.to_owned(),
            timeout: Duration::from_millis(self.call_timeout_ms),
            max_in_flight: self.client_max_in_flight,
            breaker: self.breaker(),
            retry: RetryConfig {
                max_attempts: self.retry_attempts,
                ..RetryConfig::default()
            },
            tokens: tokens.minter.clone(),
            tls: match self.pki() {
                Some(pki) => Some(pki.grpc_client(tokens.me.name(), name)?),
                None => None,
            },
        })
    }

    pub(super) fn breaker(&self) -> BreakerConfig {
        BreakerConfig {
            window: self.breaker_window.max(1),
            minimum_calls: self.breaker_min_calls.max(1),
            failure_rate: f64::from(self.breaker_failure_percent.clamp(1, 100)) / 100.0,
            open_wait: Duration::from_millis(self.breaker_open_ms),
            half_open_probes: self.breaker_probes.max(1),
        }
    }

    pub(super) fn storage(&self, kind: ServiceKind) -> anyhow::Result<Storage> {
        Ok(Storage::open(
            &self.storage.mode(&self.data_dir),
            kind.name(),
        )?)
    }
}

/// How the gateway's WebSocket sessions reach a remote chat service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoomStreams {
    /// One upstream subscription per room, fanned out in the gateway
    /// ([`crate::clients::RoomHubs`]).
    PerRoom,
    /// One upstream subscription per session.
    PerSubscriber,
}
