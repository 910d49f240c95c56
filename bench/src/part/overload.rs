//! Overload: one variant at half its knee, then at twice its knee for a
//! while, then at half again, in one open-loop schedule (no pause between
//! the phases: a drain between them would let the system catch its
//! breath). Every answer is kept with its latency from its scheduled time
//! and from its sending, and read per 100 ms bucket: goodput through the
//! surge, how fast the refusals come (429/503), the memory of the
//! variant's processes sampled every 250 ms, and how soon latency is
//! back once the load drops. The audit after it must pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use shared_domain::workload::Workload;

use crate::generator::client::Client;
use crate::generator::load::{self, Plan, Surge};
use crate::record::{Outcome, OverloadBucket, OverloadExact, OverloadRecord};

/// Width of a bucket.
const BUCKET: Duration = Duration::from_millis(100);
/// RSS sampling period.
const RSS_EVERY: Duration = Duration::from_millis(250);

/// A request its client could not even send within this long of its
/// schedule is given up, as a user's client would (an error, not sent):
/// otherwise the generator's own queue would grow through the surge.
const GIVE_UP: Duration = Duration::from_secs(5);

/// One answer, as kept (16 bytes: millions of them at twice a fast knee).
#[derive(Clone, Copy)]
struct Answer {
    /// When it came, µs from the start.
    at_us: u32,
    /// From its scheduled time, µs.
    from_due_us: u32,
    /// From its sending, µs.
    from_sent_us: u32,
    outcome: Outcome,
    /// Given up unsent (the generator fell behind).
    unsent: bool,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The shape of an overload run.
#[derive(Debug, Clone, Copy)]
pub struct OverloadPlan {
    /// The variant's knee, transfers/s.
    pub knee: f64,
    /// At half the knee before the surge.
    pub before: Duration,
    /// At twice the knee.
    pub surge: Duration,
    /// At half the knee after it.
    pub after: Duration,
}

/// Runs `shape` against the variant at `base` (its workload's accounts
/// open), sampling `rss` (the variant's processes' resident memory) as it
/// goes; blocks this thread. The audit is the caller's.
pub fn run(
    runtime: &tokio::runtime::Handle,
    base: &str,
    variant: &str,
    workload: &Workload,
    shape: OverloadPlan,
    rss: impl Fn() -> Option<u64> + Send + 'static,
) -> OverloadRecord {
    let (base_rate, surge_rate) = (shape.knee / 2.0, shape.knee * 2.0);
    let plan = Plan {
        rate: base_rate,
        duration: shape.before + shape.surge + shape.after,
        warmup: Duration::ZERO,
        // More than any edge admits (4 096 in flight, then 429), so the
        // system's admission control is what refuses; past it a request
        // waits for a worker (its latency from the schedule shows it).
        max_in_flight: 6144,
        drain: Duration::from_secs(5),
        timeline: None,
        surge: Some(Surge {
            at: shape.before,
            length: shape.surge,
            rate: surge_rate,
        }),
    };
    // Transfers of one unit between the workload's accounts, made up per
    // request (a prepared body per request would be gigabytes at twice a
    // fast knee for a minute).
    let accounts: Arc<Vec<String>> = Arc::new(
        workload
            .accounts()
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect(),
    );
    let answers = Arc::new(Mutex::new(Vec::with_capacity(plan.total() as usize)));
    let http = Client::new(Duration::from_secs(5));
    let connections = http.clone();
    let start = Instant::now();
    let sampler = super::rss::Sampler::start(start, RSS_EVERY, rss);
    // Ids of their own, so a second run against the same deployment
    // starts fresh transfers.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000_000);
    let (kept, base_url, prefix) = (answers.clone(), base.to_owned(), format!("ov{stamp}"));
    let stats = load::run(runtime, plan, move |i| {
        // Payer and payee differ: the payee is 1 to n - 1 accounts on.
        let n = accounts.len() as u64;
        let body = (n >= 2).then(|| {
            let from = &accounts[(i % n) as usize];
            let to = &accounts[((i + 1 + (i / n) % (n - 1)) % n) as usize];
            format!(r#"{{"transfer_id":"{prefix}-{i}","from":"{from}","to":"{to}","amount":1}}"#)
        });
        let due = start + plan.due(i);
        let (http, base, kept) = (http.clone(), base_url.clone(), kept.clone());
        async move {
            let sent = Instant::now();
            let unsent = sent.saturating_duration_since(due) > GIVE_UP;
            let outcome = match body {
                Some(body) if !unsent => http
                    .request(&base, true, "/v1/transfers", Some(body.into()))
                    .await
                    .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status)),
                _ => Outcome::Error,
            };
            let answered = Instant::now();
            kept.lock().push(Answer {
                at_us: micros(answered - start),
                from_due_us: micros(answered.saturating_duration_since(due)),
                from_sent_us: micros(answered - sent),
                outcome,
                unsent,
            });
            outcome
        }
    });
    let rss = sampler.stop();
    let mut answers = std::mem::take(&mut *answers.lock());
    let (at, end) = (shape.before, shape.before + shape.surge);
    let exact = exact(&mut answers, at, end);
    OverloadRecord {
        variant: variant.to_owned(),
        knee: shape.knee,
        base_rate,
        surge_rate,
        surge_at_s: shape.before.as_secs_f64(),
        surge_s: shape.surge.as_secs_f64(),
        bucket_ms: BUCKET.as_millis() as u64,
        buckets: buckets(&answers),
        rss,
        unfinished: stats.unfinished,
        send_lag_p99_us: if stats.send_lag.is_empty() {
            0.0
        } else {
            stats.send_lag.value_at_quantile(0.99) as f64 / 1000.0
        },
        audit: None,
        exact,
        peak_connections: Some(connections.peak_connections() as u64),
        storage: None,
    }
}

/// The 99th percentile of `values` (0 when empty); reorders them.
fn p99(values: &mut [u32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let at = ((values.len() as f64 * 0.99).ceil() as usize).clamp(1, values.len()) - 1;
    f64::from(*values.select_nth_unstable(at).1)
}

/// The readings that need every answer: the p99 before the surge, the
/// refusals' p99 during it, and when a whole second after it was back
/// (`answers` sorted by answer time on the way).
fn exact(answers: &mut [Answer], surge_at: Duration, surge_end: Duration) -> OverloadExact {
    answers.sort_unstable_by_key(|a| a.at_us);
    let us = |d: Duration| micros(d);
    let within = |from: u32, to: u32| {
        let lo = answers.partition_point(|a| a.at_us < from);
        let hi = answers.partition_point(|a| a.at_us < to);
        &answers[lo..hi]
    };
    let ok = |a: &&Answer| !a.unsent && matches!(a.outcome, Outcome::Ok | Outcome::Refused);
    let mut before: Vec<u32> = within(
        us(surge_at.saturating_sub(Duration::from_secs(2))),
        us(surge_at),
    )
    .iter()
    .filter(ok)
    .map(|a| a.from_due_us)
    .collect();
    let p99_before_us = p99(&mut before);
    let mut sheds: Vec<u32> = within(us(surge_at), us(surge_end))
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Shed | Outcome::Unavailable))
        .map(|a| a.from_sent_us)
        .collect();
    let shed_p99_us = (!sheds.is_empty()).then(|| p99(&mut sheds));
    let last = answers.last().map_or(0, |a| a.at_us);
    let (step, second) = (us(BUCKET), us(Duration::from_secs(1)));
    let mut back_after_s = None;
    let mut from = us(surge_end);
    while from.saturating_add(second) <= last {
        let window = within(from, from + second);
        let healthy = window.iter().all(|a| ok(&a));
        let mut latencies: Vec<u32> = window.iter().map(|a| a.from_due_us).collect();
        if healthy && !latencies.is_empty() && p99(&mut latencies) <= 2.0 * p99_before_us {
            back_after_s = Some(f64::from(from - us(surge_end)) / 1e6);
            break;
        }
        from += step;
    }
    OverloadExact {
        p99_before_us,
        shed_p99_us,
        back_after_s,
    }
}

/// The answers read per bucket of their answer time.
fn buckets(answers: &[Answer]) -> Vec<OverloadBucket> {
    let width = u64::try_from(BUCKET.as_micros()).unwrap_or(1).max(1);
    let n = answers
        .iter()
        .map(|a| (u64::from(a.at_us) / width) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut ok_latencies: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut out = vec![OverloadBucket::default(); n];
    for a in answers {
        let i = (u64::from(a.at_us) / width) as usize;
        let b = &mut out[i];
        if a.unsent {
            b.unsent += 1;
            continue;
        }
        match a.outcome {
            Outcome::Ok | Outcome::Refused => {
                b.ok += 1;
                ok_latencies[i].push(a.from_due_us);
            }
            Outcome::Shed | Outcome::Unavailable => {
                b.shed += 1;
                b.shed_max_us = b.shed_max_us.max(f64::from(a.from_sent_us));
            }
            Outcome::Pending | Outcome::Error => b.errors += 1,
        }
    }
    for (b, mut latencies) in out.iter_mut().zip(ok_latencies) {
        if !latencies.is_empty() {
            b.ok_p99_us = p99(&mut latencies);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer at `at_ms`, `due_ms` after its schedule and `sent_ms`
    /// after its sending.
    fn answer(at_ms: u32, due_ms: u32, sent_ms: u32, outcome: Outcome) -> Answer {
        Answer {
            at_us: at_ms * 1000,
            from_due_us: due_ms * 1000,
            from_sent_us: sent_ms * 1000,
            outcome,
            unsent: false,
        }
    }

    #[test]
    fn answers_fall_in_their_buckets_with_the_right_latencies() {
        let mut answers: Vec<Answer> = (1..=100).map(|ms| answer(10, ms, 1, Outcome::Ok)).collect();
        answers.push(answer(150, 900, 3, Outcome::Shed));
        answers.push(answer(160, 900, 7, Outcome::Unavailable));
        answers.push(answer(170, 900, 9, Outcome::Error));
        answers.push(answer(180, 4, 2, Outcome::Refused));
        answers.push(Answer {
            unsent: true,
            ..answer(190, 6000, 0, Outcome::Error)
        });
        let b = buckets(&answers);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].ok, b[0].shed, b[0].errors), (100, 0, 0));
        assert_eq!(b[0].ok_p99_us, 99_000.0);
        assert_eq!((b[1].ok, b[1].shed, b[1].errors, b[1].unsent), (1, 2, 1, 1));
        assert_eq!(
            b[1].shed_max_us, 7_000.0,
            "from sending, not from the schedule"
        );
        assert_eq!(b[1].ok_p99_us, 4_000.0);
    }

    #[test]
    fn the_exact_readings_come_from_every_answer() {
        // Before the surge (0-2 s): 1 ms, one in fifty 3 ms.
        let mut answers: Vec<Answer> = (0..2000)
            .map(|i| answer(i, if i % 50 == 0 { 3 } else { 1 }, 1, Outcome::Ok))
            .collect();
        // The surge (2-3 s): slow answers and refusals of 1 to 100 ms.
        answers.extend((0..1000).map(|i| answer(2000 + i, 80, 80, Outcome::Ok)));
        answers.extend((1..=100).map(|i| answer(2000 + i * 9, 0, i, Outcome::Shed)));
        // After: still slow for 300 ms, then back.
        answers.extend((0..300).map(|i| answer(3000 + i, 50, 50, Outcome::Ok)));
        answers.extend((300..2500).map(|i| answer(3000 + i, 2, 2, Outcome::Ok)));
        // Shuffled, as the workers push them.
        answers.reverse();
        let e = exact(&mut answers, Duration::from_secs(2), Duration::from_secs(3));
        assert_eq!(e.p99_before_us, 3_000.0);
        assert_eq!(e.shed_p99_us, Some(99_000.0));
        assert_eq!(e.back_after_s, Some(0.3));
    }
}
