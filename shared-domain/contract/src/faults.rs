//! A bounded mixed load for fault tests, run the same way against either
//! variant: careful clients that repeat a request with the same idempotency
//! key on 202/429/503, what they were told, and the invariant checks that
//! must hold once the faults stop (money conserved, every acknowledged
//! transfer and post still there, histories gap-free).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use futures::StreamExt;

use shared_domain::invariant::check_acked_posts;

use crate::Api;

/// How big the load is.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Accounts opened, `a0..`.
    pub accounts: usize,
    /// Opening balance of each.
    pub opening: i64,
    /// Rooms created, `r0..`.
    pub rooms: usize,
    /// Transfers attempted.
    pub transfers: usize,
    /// Posts attempted.
    pub posts: usize,
    /// Transfers in flight at once.
    pub transfer_concurrency: usize,
    /// Posts in flight at once.
    pub post_concurrency: usize,
    /// Pause between a client's repeats.
    pub retry_pause: Duration,
    /// Distinguishes the ids of one run from another's, so a load can be
    /// run round after round while faults happen.
    pub round: u32,
    /// What a lost connection means.
    pub disconnects: Disconnects,
}

impl Load {
    /// The fault tests' mixed load: 12 accounts, 2 rooms, 120 transfers
    /// 16 at a time and 40 posts 4 at a time per round, repeats 20 ms
    /// apart.
    pub fn mixed(round: u32, disconnects: Disconnects) -> Self {
        Self {
            accounts: 12,
            opening: 10_000,
            rooms: 2,
            transfers: 120,
            posts: 40,
            transfer_concurrency: 16,
            post_concurrency: 4,
            retry_pause: Duration::from_millis(20),
            round,
            disconnects,
        }
    }
}

/// What a client does when its connection is lost or refused before an
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnects {
    /// Fail the run: the edge under test never dies, so a connection lost
    /// without an answer is a defect.
    Fail,
    /// Repeat with the same key, as a fault: the process serving the edge
    /// is the one the fault stops (a monolith), so its clients see its
    /// connections close and the port refuse until it is back.
    Retry,
}

/// How a careful client repeats a request, and where it counts the
/// answers that made it repeat.
#[derive(Debug, Clone, Copy)]
pub struct Repeats<'a> {
    /// Pause between repeats.
    pub pause: Duration,
    /// What a lost connection means.
    pub disconnects: Disconnects,
    /// Answers that were faults.
    pub faults: &'a AtomicU64,
}

impl Repeats<'_> {
    /// Counts a fault and pauses before the repeat.
    async fn fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.pause).await;
    }

    /// Whether `error` (from sending a request) is repeated as a fault.
    fn retries(&self, error: &anyhow::Error) -> bool {
        self.disconnects == Disconnects::Retry && error.chain().any(|c| c.is::<reqwest::Error>())
    }
}

/// What clients were told.
#[derive(Default, Debug)]
pub struct Acked {
    /// Transfer id → "committed" or "rejected".
    pub transfers: HashMap<String, String>,
    /// (room, author, key, text, seq).
    pub posts: Vec<(String, String, String, String, u64)>,
    /// Answers that were faults (202, 429, 503) and made a client repeat.
    pub faults: u64,
}

impl Acked {
    /// Adds another round's answers.
    pub fn merge(&mut self, other: Acked) {
        self.transfers.extend(other.transfers);
        self.posts.extend(other.posts);
        self.faults += other.faults;
    }
}

/// The longest any single call may take before it counts as a hang: the
/// edge's deadline (2 s by default) plus slack for a loaded machine.
pub const HANG: Duration = Duration::from_secs(5);

/// Repeats a transfer with the same key until it has an outcome.
pub async fn transfer_until_answered(
    api: &Api,
    id: &str,
    from: &str,
    to: &str,
    amount: i64,
    repeats: Repeats<'_>,
) -> anyhow::Result<Option<&'static str>> {
    for _ in 0..2000 {
        let started = Instant::now();
        let answer = match api.transfer(id, from, to, amount).await {
            Ok(answer) => answer,
            Err(e) if repeats.retries(&e) => {
                repeats.fault().await;
                continue;
            }
            Err(e) => return Err(e),
        };
        ensure!(
            started.elapsed() < HANG,
            "a transfer call hung for {:?}",
            started.elapsed()
        );
        match (answer.status.as_u16(), answer.code()) {
            (200, _) => return Ok(Some("committed")),
            (409, "insufficient_funds") => return Ok(Some("rejected")),
            (202, _) | (503, _) | (429, _) => repeats.fault().await,
            _ => anyhow::bail!("transfer {id}: {} {}", answer.status, answer.body),
        }
    }
    Ok(None)
}

/// Repeats a post with the same key until it is acknowledged.
pub async fn post_until_answered(
    api: &Api,
    room: &str,
    author: &str,
    text: &str,
    key: &str,
    repeats: Repeats<'_>,
) -> anyhow::Result<Option<u64>> {
    for _ in 0..2000 {
        let started = Instant::now();
        let answer = match api.say(room, author, text, key).await {
            Ok(answer) => answer,
            Err(e) if repeats.retries(&e) => {
                repeats.fault().await;
                continue;
            }
            Err(e) => return Err(e),
        };
        ensure!(
            started.elapsed() < HANG,
            "a post hung for {:?}",
            started.elapsed()
        );
        match answer.status.as_u16() {
            200 | 201 => return Ok(answer.body["seq"].as_u64()),
            503 | 429 => repeats.fault().await,
            _ => anyhow::bail!("post {key}: {} {}", answer.status, answer.body),
        }
    }
    Ok(None)
}

impl Load {
    /// The account names.
    pub fn account_ids(&self) -> Vec<String> {
        (0..self.accounts).map(|i| format!("a{i}")).collect()
    }

    /// The room names.
    pub fn room_ids(&self) -> Vec<String> {
        (0..self.rooms).map(|i| format!("r{i}")).collect()
    }

    /// Opens the accounts and creates the rooms. A cluster just started
    /// may still answer 503 (a first connection, a first durable commit
    /// past a short call timeout): the setup retries those, a bounded
    /// number of times, and takes an `*_exists` after a 503 as the earlier
    /// attempt having landed. Nothing under test happens here.
    pub async fn setup(&self, api: &Api) -> anyhow::Result<()> {
        for a in self.account_ids() {
            let body = serde_json::json!({"account_id": a, "opening_balance": self.opening});
            created(|| api.post("/v1/accounts", &body), "account_exists").await?;
        }
        for r in self.room_ids() {
            let body = serde_json::json!({"room": r});
            created(|| api.post("/v1/rooms", &body), "room_exists").await?;
        }
        Ok(())
    }

    /// Fails unless the store behind `api` has had commits share syncs
    /// (`store_commits_total` above `store_syncs_total`): under this load
    /// a batch is then in flight nearly all the time, so a kill lands
    /// amid one.
    /// On a busy machine the first batches may take a while: it asks
    /// every 100 ms for up to 5 s.
    pub async fn ensure_syncs_shared(api: &Api) -> anyhow::Result<()> {
        let (mut commits, mut syncs) = (0.0, 0.0);
        for _ in 0..50 {
            commits = api.metric_sum("store_commits_total").await?;
            syncs = api.metric_sum("store_syncs_total").await?;
            if syncs > 0.0 && commits > syncs {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{commits} commits in {syncs} syncs: no batch to kill")
    }

    /// Runs round after round of this load (this one's `round` first)
    /// until `stop` is set, at most 200 rounds, merging what clients were
    /// told: the load a fault test keeps up while it breaks things.
    pub async fn run_until(&self, api: &Api, stop: &AtomicBool) -> anyhow::Result<Acked> {
        let mut acked = Acked::default();
        for round in self.round..self.round.saturating_add(200) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            acked.merge(Load { round, ..*self }.run(api).await?);
        }
        Ok(acked)
    }

    /// Runs every transfer and post to an outcome (or gives up after a
    /// bounded number of repeats) and returns what clients were told.
    pub async fn run(&self, api: &Api) -> anyhow::Result<Acked> {
        let faults = AtomicU64::new(0);
        let repeats = Repeats {
            pause: self.retry_pause,
            disconnects: self.disconnects,
            faults: &faults,
        };
        let transfers = (0..self.transfers).map(|k| {
            let (from, to) = (
                format!("a{}", k % self.accounts),
                format!("a{}", (k * 5 + 1) % self.accounts),
            );
            async move {
                if from == to {
                    return anyhow::Ok::<Option<(String, String)>>(None);
                }
                let id = format!("t{}-{k}", self.round);
                let outcome =
                    transfer_until_answered(api, &id, &from, &to, (k % 3000 + 1) as i64, repeats)
                        .await?;
                anyhow::Ok::<Option<(String, String)>>(outcome.map(|s| (id, s.to_owned())))
            }
        });
        let posts = (0..self.posts).map(|k| {
            let room = format!("r{}", k % self.rooms.max(1));
            async move {
                let (author, key, text) = (
                    format!("u{}", k % 5),
                    format!("k{}-{k}", self.round),
                    format!("text {k}"),
                );
                let seq = post_until_answered(api, &room, &author, &text, &key, repeats).await?;
                anyhow::Ok(seq.map(|s| (room, author, key, text, s)))
            }
        });
        let (transfer_results, post_results) = tokio::join!(
            futures::stream::iter(transfers)
                .buffer_unordered(self.transfer_concurrency.max(1))
                .collect::<Vec<anyhow::Result<Option<(String, String)>>>>(),
            futures::stream::iter(posts)
                .buffer_unordered(self.post_concurrency.max(1))
                .collect::<Vec<_>>(),
        );
        let mut acked = Acked::default();
        for r in transfer_results {
            if let Some((id, status)) = r? {
                acked.transfers.insert(id, status);
            }
        }
        for r in post_results {
            if let Some(p) = r? {
                acked.posts.push(p);
            }
        }
        acked.faults = faults.load(Ordering::Relaxed);
        Ok(acked)
    }

    /// Once faults stop: nothing pending, money conserved, every balance
    /// non-negative, every acknowledged transfer still has its outcome,
    /// every room's history is exactly the acknowledged posts, gap-free.
    pub async fn check_invariants(&self, api: &Api, acked: &Acked) -> anyhow::Result<()> {
        let audit = api.settled_audit().await?;
        let expected = self.opening * self.accounts as i64;
        ensure!(
            audit["pending_transfers"] == 0,
            "pending after faults stopped: {audit}"
        );
        ensure!(
            audit["accounts"] == self.accounts as u64,
            "accounts: {audit}"
        );
        ensure!(
            audit["total_balance"].as_i64() == Some(expected),
            "money not conserved: {audit}"
        );
        let mut total = 0;
        for a in self.account_ids() {
            let b = api.balance(&a).await?;
            ensure!(b >= 0, "{a} is negative: {b}");
            total += b;
        }
        ensure!(total == expected, "balances sum to {total}, not {expected}");
        for (id, status) in &acked.transfers {
            let record = api.get(&format!("/v1/transfers/{id}")).await?;
            ensure!(
                record.expect_status(200)?["status"] == *status,
                "acknowledged {id} {status}, now {}",
                record.body
            );
        }
        for room in self.room_ids() {
            let history = api.seen_history(&room).await?;
            let acked_here: Vec<_> = acked
                .posts
                .iter()
                .filter(|p| p.0 == room)
                .map(|(_, a, k, t, s)| (a.as_str(), k.as_str(), t.as_str(), *s))
                .collect();
            ensure!(
                history.len() == acked_here.len(),
                "room {room}: {} messages, {} acknowledged",
                history.len(),
                acked_here.len()
            );
            check_acked_posts(&room, &history, acked_here)?;
        }
        Ok(())
    }
}

/// Sends a creating request until it answers 201 (or `exists` after a
/// 503), retrying a 503 at most 50 times, 20 ms apart.
async fn created<F, Fut>(send: F, exists: &str) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<crate::client::Answer>>,
{
    let mut unavailable = 0;
    loop {
        let answer = send().await?;
        match answer.status.as_u16() {
            201 => return Ok(()),
            409 if unavailable > 0 && answer.code() == exists => return Ok(()),
            503 if unavailable < 50 => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => {
                answer.expect_status(201)?;
                return Ok(());
            }
        }
    }
}
