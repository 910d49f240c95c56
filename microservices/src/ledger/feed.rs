//! The transfers service's side of the read model: the feed of committed
//! transfers, shipped to the ledger in lingering batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use shared_domain::bank::{TransferRecord, TransferStatus};

use crate::auth::Minter;

use super::{Applied, Entries, Entry, authorized};

/// The transfers service's side of the read model: committed transfers go
/// into a bounded queue that a shipper task posts to the ledger in
/// batches. Nothing blocks a transfer: if the queue is full the entry is
/// dropped and a full resync from the journal is scheduled instead.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Entry>,
    resync: Arc<AtomicBool>,
}

/// Where the shipper reads the whole journal for a resync.
pub type Snapshot = Arc<dyn Fn() -> Vec<TransferRecord> + Send + Sync>;

impl Feed {
    /// A feed to the ledger at `base`, with a queue of `capacity` entries;
    /// the shipper runs until `shutdown`. It starts with a resync, so a
    /// restarted transfers service re-sends what its predecessor had not.
    pub fn start(
        http: reqwest::ClientBuilder,
        base: &str,
        capacity: usize,
        snapshot: Snapshot,
        tokens: Option<Arc<Minter>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let resync = Arc::new(AtomicBool::new(true));
        let shipper = Shipper {
            http: http
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_millis(500))
                .build()?,
            url: format!("{}/v1/entries", base.trim_end_matches('/')),
            resync: resync.clone(),
            snapshot,
            epoch: AtomicU64::new(0),
            tokens,
        };
        tokio::spawn(async move { shipper.run(rx, shutdown).await });
        Ok(Self { tx, resync })
    }

    /// Queues a committed transfer for the ledger.
    pub fn committed(&self, record: &TransferRecord) {
        if record.status != TransferStatus::Committed {
            return;
        }
        if self
            .tx
            .try_send(Entry::of(record, Some(edge::now_us())))
            .is_err()
        {
            metrics::counter!("ledger_feed_overflow_total").increment(1);
            self.resync.store(true, Ordering::Release);
        }
    }
}

struct Shipper {
    http: reqwest::Client,
    url: String,
    resync: Arc<AtomicBool>,
    snapshot: Snapshot,
    epoch: AtomicU64,
    tokens: Option<Arc<Minter>>,
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
            if self.resync.swap(false, Ordering::AcqRel) {
                let entries: Vec<Entry> = (self.snapshot)()
                    .iter()
                    .filter(|r| r.status == TransferStatus::Committed)
                    .map(|r| Entry::of(r, None))
                    .collect();
                tracing::info!(
                    entries = entries.len(),
                    "resyncing the ledger from the journal"
                );
                let mut ok = true;
                for chunk in entries.chunks(BATCH) {
                    if !self.ship(chunk.to_vec()).await {
                        ok = false;
                        break;
                    }
                }
                if !ok {
                    failures += 1;
                    if !self.pause(failures, &shutdown).await {
                        return;
                    }
                    continue;
                }
                failures = 0;
            }
            tokio::select! {
                more = crate::batch::next(&mut rx, &mut batch, BATCH, LINGER) => if !more { return },
                () = shutdown.cancelled() => return,
                // Wake now and then to notice a resync request.
                () = tokio::time::sleep(Duration::from_millis(200)) => continue,
            }
            if self.ship(std::mem::take(&mut batch)).await {
                failures = 0;
            } else {
                // What failed is covered by a resync once the ledger is back.
                failures += 1;
                if !self.pause(failures, &shutdown).await {
                    return;
                }
            }
        }
    }

    /// Posts a batch; `false` (and a resync scheduled) if it did not land.
    async fn ship(&self, entries: Vec<Entry>) -> bool {
        let sent = authorized(self.http.post(&self.url), self.tokens.as_ref())
            .json(&Entries { entries })
            .send()
            .await;
        let applied = match sent {
            Ok(r) if r.status().is_success() => r.json::<Applied>().await.ok(),
            Ok(r) => {
                tracing::warn!(status = %r.status(), "ledger refused a batch");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "ledger unreachable");
                None
            }
        };
        match applied {
            Some(a) => {
                let before = self.epoch.swap(a.epoch, Ordering::AcqRel);
                if before != 0 && before != a.epoch {
                    tracing::info!("the ledger restarted; its read model will be resent");
                    self.resync.store(true, Ordering::Release);
                }
                true
            }
            None => {
                metrics::counter!("ledger_feed_failures_total").increment(1);
                self.resync.store(true, Ordering::Release);
                false
            }
        }
    }

    async fn pause(&self, failures: u32, shutdown: &CancellationToken) -> bool {
        let wait = Duration::from_millis(20u64.saturating_mul(1 << failures.min(5)))
            .min(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = shutdown.cancelled() => false,
        }
    }
}
