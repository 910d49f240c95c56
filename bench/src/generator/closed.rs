//! A closed loop: `connections` clients, each sending its next request as
//! soon as its previous one is answered (wrk's and oha's model). It
//! measures the most a system answers with that many requests in flight,
//! not latency at a given rate: a stalled system makes the loop wait
//! instead of queueing requests, so its latency hides the stall
//! (coordinated omission). The comparison uses the open loop
//! ([`super::load`]); this one is for throughput questions such as
//! "how many durable transfers a second with 64 connections".
//!
//! Bounded: it stops at `warmup + duration`, or when the prepared
//! requests run out, and waits at most [`DRAIN`] for what is in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::record::Outcome;

/// How long the loop waits for requests in flight when time is up.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What a closed loop measured over its recorded window.
#[derive(Debug, Clone)]
pub struct ClosedStats {
    /// Sent → answered, recorded answers, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Recorded answers by outcome.
    pub outcomes: Vec<(Outcome, u64)>,
    /// Answers per second of the recorded window.
    pub rate: f64,
    /// The recorded window (shorter than asked when the requests ran out).
    pub seconds: f64,
}

impl ClosedStats {
    /// How many recorded answers ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(0, |(_, n)| *n)
    }
}

/// Runs `connections` loops of `op` (request `i` → its outcome, for `i`
/// below `total`) on `runtime` for `warmup + duration`, recording the
/// answers that arrive after the warm-up. Blocks the calling thread (not
/// one of `runtime`'s).
pub fn run<F, Fut>(
    runtime: &tokio::runtime::Handle,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    total: u64,
    op: F,
) -> ClosedStats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let recorded = Arc::new(Mutex::new((
        super::load::histogram(),
        Outcome::ALL.map(|o| (o, 0u64)).to_vec(),
        None::<Instant>,
    )));
    let start = Instant::now();
    let (opens, ends) = (start + warmup, start + warmup + duration);
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (op, next, recorded) = (op.clone(), next.clone(), recorded.clone());
            runtime.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    if i >= total || sent >= ends {
                        return;
                    }
                    let outcome = op(i).await;
                    let answered = Instant::now();
                    if answered >= opens && answered < ends {
                        let mut r = recorded.lock();
                        let _ =
                            r.0.record(answered.duration_since(sent).as_nanos().max(1) as u64);
                        if let Some(entry) = r.1.iter_mut().find(|(o, _)| *o == outcome) {
                            entry.1 += 1;
                        }
                        r.2 = Some(answered);
                    }
                }
            })
        })
        .collect();
    runtime.block_on(async {
        let all = futures::future::join_all(workers);
        let _ = tokio::time::timeout_at((ends + DRAIN).into(), all).await;
    });
    let (latency, outcomes, last) = recorded.lock().clone();
    // The window ends at `ends`, or at the last answer if the requests
    // ran out before.
    let window_end = if next.load(Ordering::Relaxed) >= total {
        last.unwrap_or(ends).min(ends)
    } else {
        ends
    };
    let seconds = window_end.saturating_duration_since(opens).as_secs_f64();
    let rate = if seconds > 0.0 {
        latency.len() as f64 / seconds
    } else {
        0.0
    };
    ClosedStats {
        latency,
        outcomes,
        rate,
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_keeps_one_request_in_flight_and_stops_in_time() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let in_flight = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let (seen, top) = (in_flight.clone(), most.clone());
        let stats = run(
            runtime.handle(),
            4,
            Duration::from_millis(50),
            Duration::from_millis(300),
            u64::MAX,
            move |_| {
                let (seen, top) = (seen.clone(), top.clone());
                async move {
                    let now = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    top.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    seen.fetch_sub(1, Ordering::SeqCst);
                    Outcome::Ok
                }
            },
        );
        assert_eq!(most.load(Ordering::SeqCst), 4, "four loops, four in flight");
        assert!(stats.count(Outcome::Ok) > 0);
        assert_eq!(stats.count(Outcome::Ok), stats.latency.len());
        // Each answer took at least the 5 ms the op slept.
        assert!(stats.latency.min() >= 5_000_000, "{}", stats.latency.min());
    }

    #[test]
    fn the_window_shrinks_to_the_last_answer_when_requests_run_out() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let stats = run(
            runtime.handle(),
            2,
            Duration::ZERO,
            Duration::from_secs(60),
            10,
            |_| async { Outcome::Refused },
        );
        assert_eq!(stats.count(Outcome::Refused), 10);
        assert!(stats.seconds < 10.0, "stopped with the requests: {stats:?}");
    }
}
