//! The transfers service's side of the read model: the feed of committed
//! transfers, shipped to the ledger in lingering batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use shared_domain::bank::{Committed, TransferRecord};

use crate::auth::Minter;

use super::{Applied, Base, Commit, Entries, Entry, Ledger, authorized};

/// Where the feed's batches go: the ledger over HTTP/JSON ([`HttpSink`]),
/// or the ledger in the same process.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Delivers a batch; the ledger's answer, or why it did not land.
    async fn send(&self, batch: Entries) -> Result<Applied, String>;
}

/// The ledger's `POST /v1/entries`.
pub struct HttpSink {
    http: reqwest::Client,
    url: String,
    tokens: Option<Arc<Minter>>,
}

impl HttpSink {
    /// The ledger at `base` (`http://host:port`); `http` carries the TLS
    /// settings under `--mtls`.
    pub fn new(
        http: reqwest::ClientBuilder,
        base: &str,
        tokens: Option<Arc<Minter>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            http: http
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_millis(500))
                .build()?,
            url: format!("{}/v1/entries", base.trim_end_matches('/')),
            tokens,
        })
    }
}

#[async_trait]
impl Sink for HttpSink {
    async fn send(&self, batch: Entries) -> Result<Applied, String> {
        let answer = authorized(self.http.post(&self.url), self.tokens.as_ref())
            .json(&batch)
            .send()
            .await
            .map_err(|e| format!("ledger unreachable: {e}"))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("ledger refused a batch: {status}"));
        }
        answer
            .json::<Applied>()
            .await
            .map_err(|e| format!("ledger's answer: {e}"))
    }
}

#[async_trait]
impl Sink for Ledger {
    async fn send(&self, batch: Entries) -> Result<Applied, String> {
        let entries: Vec<Commit> = batch.entries.iter().map(Commit::from).collect();
        Ok(self.receive(batch.base, &entries))
    }
}

/// Reads what the journal committed so far, in one pass (blocking).
pub type Snapshot = Arc<dyn Fn() -> anyhow::Result<Committed> + Send + Sync>;

/// The transfers service's side of the read model: the journal tells it
/// of each durable commit, in order ([`Feed::committed`]); a bounded queue
/// holds them for a shipper task that sends them to the ledger in
/// batches. Nothing blocks a transfer: if the queue is full the entry is
/// dropped and the shipper sends a new base instead.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Entry>,
    resync: Arc<AtomicBool>,
}

impl Feed {
    /// A feed into `sink`, with a queue of `capacity` entries; the shipper
    /// runs until `shutdown`. It starts with a base, so a restarted
    /// transfers service covers what its predecessor had not sent.
    pub fn start(
        sink: Arc<dyn Sink>,
        capacity: usize,
        snapshot: Snapshot,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let resync = Arc::new(AtomicBool::new(true));
        let shipper = Shipper {
            sink,
            resync: resync.clone(),
            snapshot,
        };
        tokio::spawn(async move { shipper.run(rx, shutdown).await });
        Self { tx, resync }
    }

    /// Queues commit number `seq`, durable now (called in commit order).
    pub fn committed(&self, seq: u64, record: &TransferRecord) {
        if self.tx.try_send(Entry::of(seq, record)).is_err() {
            metrics::counter!("ledger_feed_overflow_total").increment(1);
            self.resync.store(true, Ordering::Release);
        }
    }
}

struct Shipper {
    sink: Arc<dyn Sink>,
    resync: Arc<AtomicBool>,
    snapshot: Snapshot,
}

/// Entries in one post at most.
const BATCH: usize = 512;
/// How long the first entry of a batch waits for others: a read model
/// may lag a few milliseconds (Kafka's producers default to 5 ms since
/// 4.0); posted at once, a batch would be one or two transfers at
/// moderate rates, a second network call per transfer.
const LINGER: Duration = Duration::from_millis(5);

impl Shipper {
    async fn run(self, mut rx: mpsc::Receiver<Entry>, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let mut next = Entries::default();
            if self.resync.swap(false, Ordering::AcqRel) {
                // Entries queued before the base are in it or follow it;
                // those it covers are skipped by the ledger.
                match self.base().await {
                    Ok(base) => next.base = Some(base),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the journal's totals for the ledger");
                        self.resync.store(true, Ordering::Release);
                        failures += 1;
                        if !pause(failures, &shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    more = crate::batch::next(&mut rx, &mut batch, BATCH, LINGER) => if !more { return },
                    () = shutdown.cancelled() => return,
                    // Wake now and then to notice a resync request.
                    () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
                next.entries = std::mem::take(&mut batch);
            }
            // A batch that may not have landed is sent again: the ledger
            // applies each commit number once.
            loop {
                match self.sink.send(next.clone()).await {
                    Ok(applied) => {
                        failures = 0;
                        if applied.resync {
                            tracing::info!(
                                through = applied.through,
                                "the ledger asks for a base (it restarted, or entries were lost)"
                            );
                            self.resync.store(true, Ordering::Release);
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "a batch did not reach the ledger");
                        metrics::counter!("ledger_feed_failures_total").increment(1);
                        failures += 1;
                        if !pause(failures, &shutdown).await {
                            return;
                        }
                        // A base taken later covers this batch and more.
                        if self.resync.load(Ordering::Acquire) {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The journal's totals so far, read off the runtime's threads.
    async fn base(&self) -> anyhow::Result<Base> {
        let snapshot = self.snapshot.clone();
        let committed = tokio::task::spawn_blocking(move || snapshot()).await??;
        tracing::info!(
            through = committed.count,
            "sending the ledger a base from the journal"
        );
        Ok(committed.into())
    }
}

/// Backs off after `failures` failures in a row (20 ms doubling to 1 s);
/// `false` once shutting down.
async fn pause(failures: u32, shutdown: &CancellationToken) -> bool {
    let wait = Duration::from_millis(20u64.saturating_mul(1 << failures.min(5)))
        .min(Duration::from_secs(1));
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = shutdown.cancelled() => false,
    }
}
