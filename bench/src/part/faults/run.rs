//! One fault run: transfers or posts at a steady rate with a fault
//! injected into it, every acknowledged answer kept, and afterwards each
//! of them re-read: nothing acknowledged may be lost.

use std::sync::Arc;
use std::time::Duration;

use shared_domain::invariant::check_acked_posts;
use shared_domain::workload::Workload;

use crate::generator::load::{self, Plan, RunStats};
use crate::generator::requests::{Call, calls, send_raw};
use crate::part::latency::check_invariants;
use crate::record::{FaultRecord, Outcome, Scenario};

/// An answer that acknowledged something: the call's index, its status
/// and its body (200/201, and 409 for a transfer: rejected for good).
pub type Ack = (u64, u16, serde_json::Value);

/// Sends one prepared request and keeps the answer if it acknowledged
/// something, so the invariants can check it was not lost.
fn send_keeping_acks(
    http: &crate::generator::client::Client,
    base: &str,
    call: &Call,
    i: u64,
    acks: Arc<parking_lot::Mutex<Vec<Ack>>>,
) -> impl Future<Output = Outcome> + Send + use<> {
    let answer = send_raw(http, base, call, None);
    async move {
        match answer.await {
            Some((status, body)) => {
                if matches!(status, 200 | 201 | 409) {
                    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    acks.lock().push((i, status, value));
                }
                Outcome::of_status(status)
            }
            None => Outcome::Error,
        }
    }
}

/// A fault run's load and what its clients were told.
pub struct FaultRun {
    /// The timeline and its reading.
    pub record: FaultRecord,
    calls: Arc<Vec<Call>>,
    acks: Vec<Ack>,
    scenario: Scenario,
}

/// The load of one fault run and where the fault falls in it.
#[derive(Debug, Clone, Copy)]
pub struct FaultLoad<'a> {
    /// The variant.
    pub variant: &'a str,
    /// Its edge, `http://host:port`.
    pub base: &'a str,
    /// What the fault does, in words.
    pub fault: &'a str,
    /// Transfers or posts.
    pub scenario: Scenario,
    /// Requests per second.
    pub rate: f64,
    /// Length of the run.
    pub seconds: f64,
    /// When the fault is injected, from the start.
    pub at: Duration,
}

/// A fault, and how to tell when what it hit is back.
pub struct Injection {
    /// Does it (on the injector thread, at its moment).
    pub inject: Box<dyn FnOnce() + Send>,
    /// When the faulted part is back.
    pub back: Back,
}

/// When the part a fault hit counts as back.
pub enum Back {
    /// When the injection returns: it lifts the fault itself (a pause
    /// ends with SIGCONT, a partition with the reconnect).
    Lifted,
    /// Once this answers `true` (asked every 5 ms after the injection
    /// returned, for up to 30 s): the restarted process answers.
    Probe(Box<dyn FnMut() -> bool + Send>),
    /// Not measured (a panic's actors restart inside the process; an
    /// upgrade has no gap to close).
    Unknown,
}

/// How long a restarted part may take to answer before it counts as not
/// back within the run.
const BACK_WITHIN: Duration = Duration::from_secs(30);

impl Back {
    /// Waits for it, after the injection returned; the time from the
    /// injection to then.
    pub fn wait(self, injected: std::time::Instant) -> Option<Duration> {
        match self {
            Back::Lifted => Some(injected.elapsed()),
            Back::Probe(mut answers) => {
                while injected.elapsed() < BACK_WITHIN {
                    if answers() {
                        return Some(injected.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                None
            }
            Back::Unknown => None,
        }
    }
}

/// Runs `load`, injecting the fault (on another thread) at its moment and
/// noting when the faulted part is back; blocks this thread.
pub fn run_fault(
    runtime: &tokio::runtime::Handle,
    http: &crate::generator::client::Client,
    load: FaultLoad<'_>,
    workload: &mut Workload,
    injection: Injection,
) -> FaultRun {
    let FaultLoad {
        variant,
        base,
        fault,
        scenario,
        rate,
        seconds,
        at,
    } = load;
    let plan = Plan {
        rate,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::ZERO,
        max_in_flight: 1024,
        drain: Duration::from_secs(5),
        timeline: Some(Duration::from_millis(100)),
        surge: None,
    };
    let prepared = Arc::new(calls(scenario, workload, plan.total()));
    let acks = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (http, base, calls, kept) = (
        http.clone(),
        base.to_owned(),
        prepared.clone(),
        acks.clone(),
    );
    let injector = std::thread::spawn(move || {
        std::thread::sleep(at);
        let injected = std::time::Instant::now();
        (injection.inject)();
        injection.back.wait(injected)
    });
    let stats = load::run(runtime, plan, move |i| {
        send_keeping_acks(&http, &base, &calls[i as usize], i, kept.clone())
    });
    let back = injector.join().ok().flatten();
    let mut record = fault_record(variant, fault, &plan, at, &stats);
    record.scenario = scenario;
    record.back_s = back.map(|d| d.as_secs_f64());
    let acks = std::mem::take(&mut *acks.lock());
    FaultRun {
        record,
        calls: prepared,
        acks,
        scenario,
    }
}

impl FaultRun {
    /// The invariants once the fault is over: money conserved and nothing
    /// pending; every acknowledged transfer still has its outcome; every
    /// acknowledged post is in its room's history at its seq, and every
    /// history is gap-free. Fills in the record's audit.
    pub async fn check(
        mut self,
        api: &contract::Api,
        workload: &Workload,
    ) -> anyhow::Result<FaultRecord> {
        let mut audit = check_invariants(api, workload).await?;
        let checked = match self.scenario {
            Scenario::Transfer => self.check_transfers(api).await?,
            Scenario::Post => self.check_posts(api, workload).await?,
            _ => 0,
        };
        audit.acknowledged_checked = Some(checked);
        self.record.audit = Some(audit);
        Ok(self.record)
    }

    async fn check_transfers(&self, api: &contract::Api) -> anyhow::Result<u64> {
        use futures::StreamExt;
        let expected: Vec<(String, &'static str)> = self
            .acks
            .iter()
            .filter_map(|(i, status, _)| {
                let body: serde_json::Value =
                    serde_json::from_slice(self.calls.get(*i as usize)?.body.as_deref()?).ok()?;
                let id = body["transfer_id"].as_str()?.to_owned();
                Some((
                    id,
                    if *status == 409 {
                        "rejected"
                    } else {
                        "committed"
                    },
                ))
            })
            .collect();
        let mut lookups = futures::stream::iter(expected.iter().map(|(id, want)| async move {
            // A system still recovering may shed the lookups (429/503):
            // ask again for up to 30 s; only an answer counts.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let answer = loop {
                let answer = api.get(&format!("/v1/transfers/{id}")).await?;
                if !matches!(answer.status.as_u16(), 429 | 503)
                    || std::time::Instant::now() > deadline
                {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let status = answer.expect_status(200)?["status"].clone();
            anyhow::ensure!(
                status == *want,
                "INVARIANT VIOLATED: transfer {id} was acknowledged {want}, now {status}"
            );
            anyhow::Ok(())
        }))
        .buffer_unordered(16);
        while let Some(result) = lookups.next().await {
            result?;
        }
        Ok(expected.len() as u64)
    }

    async fn check_posts(&self, api: &contract::Api, workload: &Workload) -> anyhow::Result<u64> {
        let mut acked: Vec<(String, String, String, String, u64)> = Vec::new();
        for (i, status, answer) in &self.acks {
            let Some(call) = self.calls.get(*i as usize) else {
                continue;
            };
            let body: serde_json::Value =
                serde_json::from_slice(call.body.as_deref().unwrap_or(b"null"))?;
            let room = call
                .path
                .trim_start_matches("/v1/rooms/")
                .trim_end_matches("/messages")
                .to_owned();
            let seq = answer["seq"].as_u64();
            anyhow::ensure!(
                *status != 409 && seq.is_some(),
                "INVARIANT VIOLATED: post {i} answered {status} {answer}"
            );
            acked.push((
                room,
                body["author"].as_str().unwrap_or_default().to_owned(),
                body["client_msg_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["text"].as_str().unwrap_or_default().to_owned(),
                seq.unwrap_or(0),
            ));
        }
        for room in workload.rooms() {
            let history = api.seen_history(room.as_str()).await?;
            let here = acked
                .iter()
                .filter(|p| p.0 == room.as_str())
                .map(|(_, a, k, t, s)| (a.as_str(), k.as_str(), t.as_str(), *s));
            check_acked_posts(room.as_str(), &history, here)
                .map_err(|v| anyhow::anyhow!("INVARIANT VIOLATED: {v}"))?;
        }
        Ok(acked.len() as u64)
    }
}

/// A fault run's record: the impact read off its timeline.
pub fn fault_record(
    variant: &str,
    fault: &str,
    plan: &Plan,
    injected_at: Duration,
    stats: &RunStats,
) -> FaultRecord {
    let width = plan.timeline.unwrap_or(Duration::from_millis(100));
    let mut record = FaultRecord {
        variant: variant.to_owned(),
        kind: String::new(),
        scenario: Scenario::Transfer,
        fault: fault.to_owned(),
        rate: plan.rate,
        bucket_ms: width.as_millis() as u64,
        injected_at_s: injected_at.as_secs_f64(),
        first_failure_s: None,
        impact_s: 0.0,
        failed: stats.timeline.iter().map(|b| b.failed).sum(),
        ok: stats.timeline.iter().map(|b| b.ok).sum(),
        timeline: stats.timeline.clone(),
        audit: None,
        back_s: None,
        outcomes: stats
            .outcomes
            .iter()
            .map(|(o, n)| (o.name().to_owned(), *n))
            .collect(),
        unfinished: stats.unfinished,
    };
    let at = record.fault_bucket();
    let bucket_s = width.as_secs_f64();
    record.first_failure_s = record
        .timeline
        .iter()
        .enumerate()
        .skip(at)
        .find(|(_, b)| b.failed > 0)
        .map(|(i, _)| ((i - at) as f64 + 1.0) * bucket_s);
    record.impact_s = record.recovery_s();
    record
}
