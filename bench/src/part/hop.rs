//! One hop measured alone, for the cost model: the harness calls one
//! service of the split system directly, one call at a time at a fixed
//! pace, from a thread of its own running a single-threaded runtime that
//! does nothing else. The caller's CPU is that thread's; the callee's is
//! its process's, less what the same process uses idle (read just
//! before). The gRPC call goes through the microservices' own client
//! (deadline, breaker, concurrency limit, retry budget: what a saga's
//! call pays); the HTTP/JSON call through reqwest, as the services' HTTP
//! hop. Both handlers are a lookup under a lock, so the numbers are the
//! hop's own cost, the handler's microsecond included.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shared_domain::id::AccountId;
use shared_domain::service::AccountsService as _;

use crate::cpu::{CpuMeter, this_thread_cpu_ns};
use crate::record::HopRecord;

/// What to call.
#[derive(Debug, Clone)]
pub enum Call {
    /// `bank.v1.Accounts/Balance` of `account` at `url` (`http://host:port`).
    Grpc {
        /// The accounts service.
        url: String,
        /// An account it holds.
        account: AccountId,
    },
    /// `GET /v1/summary` of the ledger at `url` (`http://host:port`).
    Http {
        /// The ledger.
        url: String,
    },
}

impl Call {
    fn protocol(&self) -> &'static str {
        match self {
            Call::Grpc { .. } => "grpc",
            Call::Http { .. } => "http/json",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Call::Grpc { .. } => "bank.v1.Accounts/Balance",
            Call::Http { .. } => "GET /v1/summary",
        }
    }
}

/// How long and how fast.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Calls per second (one at a time: a call that takes longer than the
    /// interval delays the next).
    pub rate: f64,
    /// The callee watched with no calls, for its idle CPU.
    pub idle: Duration,
    /// Calls made before the window (the connection, the first calls).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// The repeat it runs in.
    pub repeat: u32,
}

/// The two sides' clients, made on the probe's own runtime.
enum Caller {
    Grpc(microservices::clients::GrpcAccounts, AccountId),
    Http(reqwest::Client, String),
}

impl Caller {
    fn new(call: &Call) -> anyhow::Result<Self> {
        use microservices::clients::{ClientConfig, Downstream, GrpcAccounts, TransferPath};
        Ok(match call {
            Call::Grpc { url, account } => {
                let config = ClientConfig {
                    name: "accounts".into(),
                    url: url.clone(),
                    timeout: Duration::from_secs(2),
                    max_in_flight: 64,
                    breaker: Default::default(),
                    retry: Default::default(),
                    tokens: None,
                    tls: None,
                };
                Caller::Grpc(
                    GrpcAccounts::new(Downstream::new(&config)?, TransferPath::Coarse),
                    account.clone(),
                )
            }
            Call::Http { url } => Caller::Http(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()?,
                format!("{url}/v1/summary"),
            ),
        })
    }

    async fn call(&self) -> anyhow::Result<()> {
        match self {
            Caller::Grpc(client, account) => {
                client
                    .balance(account)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            Caller::Http(client, url) => {
                client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
            }
        }
        Ok(())
    }
}

/// Measures `call` against the process `callee` as `plan` says.
pub fn probe(call: &Call, callee: u32, plan: Plan) -> anyhow::Result<HopRecord> {
    let call = call.clone();
    std::thread::Builder::new()
        .name("hop-probe".into())
        .spawn(move || {
            // The callee with nothing to do, for its idle CPU.
            let idle_cores = CpuMeter::of_pids(vec![callee]).cores_over(plan.idle);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(run(&call, callee, plan, idle_cores))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the hop probe panicked"))?
}

async fn run(
    call: &Call,
    callee: u32,
    plan: Plan,
    idle_cores: Option<f64>,
) -> anyhow::Result<HopRecord> {
    let meter = CpuMeter::of_pids(vec![callee]);
    let caller = Caller::new(call)?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(1.0)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let warm_until = Instant::now() + plan.warmup;
    while Instant::now() < warm_until {
        ticks.tick().await;
        let _ = caller.call().await;
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut calls, mut failed, mut first_error) = (0u64, 0u64, None);
    let (caller_before, callee_before, started) =
        (this_thread_cpu_ns(), meter.seconds(), Instant::now());
    while started.elapsed() < plan.window {
        ticks.tick().await;
        let sent = Instant::now();
        match caller.call().await {
            Ok(()) => {
                calls += 1;
                latency.saturating_record(sent.elapsed().as_micros().max(1) as u64);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (caller_after, callee_after) = (this_thread_cpu_ns(), meter.seconds());
    let per_call = |cpu_s: f64| (calls > 0).then(|| cpu_s * 1e6 / calls as f64);
    anyhow::ensure!(
        calls > 0,
        "no {} call answered: {}",
        call.name(),
        first_error.unwrap_or_default()
    );
    Ok(HopRecord {
        protocol: call.protocol().into(),
        call: call.name().into(),
        repeat: plan.repeat,
        rate: plan.rate,
        calls,
        failed,
        first_error,
        p50_us: latency.value_at_quantile(0.5) as f64,
        p99_us: latency.value_at_quantile(0.99) as f64,
        caller_cpu_us: match (caller_after, caller_before) {
            (Some(a), Some(b)) => per_call(a.saturating_sub(b) as f64 / 1e9),
            _ => None,
        },
        callee_cpu_us: match (callee_after, callee_before, idle_cores) {
            (Some(a), Some(b), Some(idle)) => per_call((a - b - idle * elapsed).max(0.0)),
            _ => None,
        },
    })
}
