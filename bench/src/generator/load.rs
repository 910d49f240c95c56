//! An open-loop load generator that coordinated omission cannot fool.
//!
//! Request `i` is *scheduled* at `start + i / rate`, whatever happened to
//! the requests before it. A scheduler task on the client runtime (its
//! sleeps a `timerfd` on the runtime's reactor, precise to microseconds,
//! not tokio's millisecond timer) releases each request when its time
//! comes to a fixed crew of `max_in_flight` long-lived workers on the same
//! runtime, which take released requests in order; a request released
//! while every worker is busy waits for one. Its latency is measured from the
//! scheduled time, so a stall of the system (or of the sending) shows in
//! every request that should have been sent during it, as it would for
//! real users. The time from scheduled to actually sent is recorded too
//! (`send_lag`): it is the generator's own floor, reported beside results.
//!
//! A plan may hold a [`Surge`]: a stretch at another rate (the overload
//! part's), with the same schedule rule inside it.
//!
//! Requests scheduled in the warm-up are run but not recorded. The run is
//! bounded: it stops scheduling at `warmup + duration` and waits at most
//! `drain` for what is in flight; what is still running then is counted
//! as `unfinished`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

mod ticker;

use crate::cpu::CpuMeter;
use crate::record::{Bucket, Outcome, Profile, too_many_errors};
use ticker::Ticker;

/// A stretch of a run at another rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surge {
    /// When it starts, from the start of the run (warm-up included).
    pub at: Duration,
    /// How long it lasts.
    pub length: Duration,
    /// Requests per second meanwhile.
    pub rate: f64,
}

/// One constant-rate run (but for its surge, if it has one).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Requests per second.
    pub rate: f64,
    /// Recorded part of the run.
    pub duration: Duration,
    /// Run but not recorded, before it.
    pub warmup: Duration,
    /// Requests in flight at once; more wait for a slot (and their
    /// latency, measured from the schedule, shows the wait).
    pub max_in_flight: usize,
    /// How long to wait for stragglers after the last request is sent.
    pub drain: Duration,
    /// Record a timeline in buckets of this width (by answer time, from
    /// the start of the run, warm-up included), for fault scenarios.
    pub timeline: Option<Duration>,
    /// A stretch at another rate.
    pub surge: Option<Surge>,
}

impl Plan {
    /// One step of `profile`'s throughput–latency curve.
    pub fn curve_step(profile: &Profile, rate: f64) -> Self {
        Self {
            rate,
            duration: Duration::from_secs_f64(profile.curve_step_s),
            warmup: Duration::from_secs_f64(0.5_f64.min(profile.curve_step_s)),
            max_in_flight: 1024,
            drain: Duration::from_secs(3),
            timeline: None,
            surge: None,
        }
    }

    /// The plan of one step of the generator's own ceiling: a curve step
    /// with as many requests in flight as wrk has connections.
    ///
    /// The curve lets up to 1024 requests be in flight, so that a system's
    /// stall meets the burst real users would make. Against the echo at
    /// its highest rates that costs the generator itself: each hiccup
    /// opens connections, and the extra sockets' wake-ups and segments
    /// made the floor saturate at 160 000/s where 32 in flight sustained
    /// 170 000/s (`cargo run --release -p bench --example floor -- 160000
    /// 5 1024`, against `... 32`; 2026-11-27, Intel Xeon, 2 cores).
    pub fn ceiling_step(profile: &Profile, rate: f64) -> Self {
        Self {
            max_in_flight: crate::generator::wrk::CONNECTIONS,
            ..Self::curve_step(profile, rate)
        }
    }

    /// One of `profile`'s fixed-rate runs.
    pub fn fixed(profile: &Profile, rate: f64) -> Self {
        Self {
            rate,
            duration: Duration::from_secs_f64(profile.duration_s),
            warmup: Duration::from_secs_f64(profile.warmup_s),
            max_in_flight: 512,
            drain: Duration::from_secs(5),
            timeline: None,
            surge: None,
        }
    }

    /// When request `i` is due, counted from the start.
    pub fn due(&self, i: u64) -> Duration {
        let Some((surge, before, during)) = self.surge_counts() else {
            return Duration::from_secs_f64(i as f64 / self.rate);
        };
        if i < before {
            Duration::from_secs_f64(i as f64 / self.rate)
        } else if i < before + during {
            surge.at + Duration::from_secs_f64((i - before) as f64 / surge.rate)
        } else {
            surge.at
                + surge.length
                + Duration::from_secs_f64((i - before - during) as f64 / self.rate)
        }
    }

    /// How many requests the plan schedules in all (warm-up included).
    pub fn total(&self) -> u64 {
        let span = self.warmup + self.duration;
        let Some((surge, before, during)) = self.surge_counts() else {
            return (span.as_secs_f64() * self.rate).floor() as u64;
        };
        let after = span.saturating_sub(surge.at + surge.length);
        before + during + (after.as_secs_f64() * self.rate).floor() as u64
    }

    /// The surge, clipped to the run, with the requests due before it
    /// and during it.
    fn surge_counts(&self) -> Option<(Surge, u64, u64)> {
        let span = self.warmup + self.duration;
        let mut surge = self.surge?;
        if surge.at >= span || surge.rate <= 0.0 {
            return None;
        }
        surge.length = surge.length.min(span - surge.at);
        let before = (surge.at.as_secs_f64() * self.rate).floor() as u64;
        let during = (surge.length.as_secs_f64() * surge.rate).floor() as u64;
        Some((surge, before, during))
    }

    /// Whether request `i` is in the warm-up.
    pub fn in_warmup(&self, i: u64) -> bool {
        self.due(i) < self.warmup
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Latency from the scheduled time to the answer, recorded requests,
    /// in nanoseconds.
    pub latency: Histogram<u64>,
    /// Scheduled → sent, recorded requests, in nanoseconds: the
    /// generator's own delay.
    pub send_lag: Histogram<u64>,
    /// Recorded requests by outcome.
    pub outcomes: Vec<(Outcome, u64)>,
    /// Requests scheduled in the recorded part.
    pub scheduled: u64,
    /// Requests still running when the drain ended.
    pub unfinished: u64,
    /// Recorded requests answered per second of the recorded part.
    pub achieved_rate: f64,
    /// Per bucket of `Plan::timeline`: answers that were ok (or a correct
    /// refusal), answers that were not, and the slowest latency (ns).
    pub timeline: Vec<Bucket>,
    /// Whether the generator or the system could not keep the rate: the
    /// achieved rate fell below 95 % of the target, or requests were left
    /// unfinished, or the median send lag exceeded a millisecond.
    pub saturated: bool,
    /// CPU seconds the system under test used in the recorded window
    /// (from the end of the warm-up to the end of the drain), when a
    /// [`CpuMeter`] was given: divided by the recorded answers, it is the
    /// CPU per request, with no warm-up in it.
    pub system_cpu_s: Option<f64>,
    /// The same window's CPU seconds by process (by the meter's named
    /// groups), when it has more than one.
    pub system_cpu_by_process: Vec<(String, f64)>,
}

impl RunStats {
    /// How many recorded requests ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(0, |(_, n)| *n)
    }
}

/// The scheduler's shortest sleep: at most 20 000 wake-ups a second.
const MIN_SLEEP: Duration = Duration::from_micros(50);

/// What the requests record, under one lock.
struct Recorder {
    latency: Histogram<u64>,
    send_lag: Histogram<u64>,
    outcomes: Vec<(Outcome, u64)>,
    timeline: Vec<Bucket>,
}

/// When one request was due, sent and answered.
#[derive(Clone, Copy)]
struct Moments {
    due: Instant,
    sent: Instant,
    answered: Instant,
}

struct Shared {
    recorder: Mutex<Recorder>,
    done: AtomicU64,
}

impl Shared {
    /// Records one answered request: the timeline (warm-up included) and,
    /// when `recorded`, its latency from when it was due, its send lag and
    /// outcome.
    fn record(&self, plan: &Plan, start: Instant, recorded: bool, at: Moments, outcome: Outcome) {
        let Moments {
            due,
            sent,
            answered,
        } = at;
        let latency_ns = answered.saturating_duration_since(due).as_nanos() as u64;
        let mut r = self.recorder.lock();
        if let Some(width) = plan.timeline {
            let index = (answered.saturating_duration_since(start).as_nanos()
                / width.as_nanos().max(1)) as usize;
            if r.timeline.len() <= index {
                r.timeline.resize(index + 1, Bucket::default());
            }
            let bucket = &mut r.timeline[index];
            if matches!(outcome, Outcome::Ok | Outcome::Refused) {
                bucket.ok += 1;
            } else {
                bucket.failed += 1;
            }
            bucket.max_latency_ns = bucket.max_latency_ns.max(latency_ns);
        }
        if recorded {
            let _ = r.latency.record(latency_ns.max(1));
            let _ = r
                .send_lag
                .record(sent.saturating_duration_since(due).as_nanos().max(1) as u64);
            if let Some(entry) = r.outcomes.iter_mut().find(|(o, _)| *o == outcome) {
                entry.1 += 1;
            }
            drop(r);
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An empty latency histogram: 1 ns .. 1 hour, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // 1 ns .. 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// Runs `plan` against `op` (request `i` → its outcome) on `runtime`.
/// Blocks the calling thread (not a thread of `runtime`) until the run
/// ends.
///
/// The scheduler, a task on `runtime`, sleeps until the next request is
/// due, then releases every request due by then at once: at low rates
/// that is one request per wake-up, precise to the timer's; at high rates a wake-up finds
/// several due and releases them together, so the generator's cost per
/// request stays small. A request's latency is measured from its own
/// scheduled time either way. Workers still busy when the drain ends are
/// stopped, so nothing of one run spills into the next.
pub fn run<F, Fut>(runtime: &tokio::runtime::Handle, plan: Plan, op: F) -> RunStats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    run_metered(runtime, plan, None, op)
}

/// [`run`], also reading the CPU of the system under test with `meter` at
/// the end of the warm-up and at the end of the drain
/// ([`RunStats::system_cpu_s`]). The first reading is taken by a thread of
/// its own that sleeps until then, so the generator's runtime does no
/// file I/O.
pub fn run_metered<F, Fut>(
    runtime: &tokio::runtime::Handle,
    plan: Plan,
    meter: Option<&CpuMeter>,
    op: F,
) -> RunStats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder {
            latency: histogram(),
            send_lag: histogram(),
            outcomes: Outcome::ALL.iter().map(|o| (*o, 0)).collect(),
            timeline: Vec::new(),
        }),
        done: AtomicU64::new(0),
    });
    // Tickets: the scheduler releases request indices as they fall due
    // (one permit each); `max_in_flight` long-lived workers take them in
    // order and run them one after another. No task, semaphore slot or
    // hand-off is made per request: a permit and a counter are all a
    // request costs the generator beyond its own call.
    let released = Arc::new(tokio::sync::Semaphore::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let total = plan.total();
    let recorded_from = (0..total).find(|i| !plan.in_warmup(*i)).unwrap_or(total);
    let workers = plan.max_in_flight.max(1);
    let start = Instant::now();
    let window_opens = meter.cloned().map(|meter| {
        let at = start + plan.warmup;
        std::thread::spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            meter.reading()
        })
    });
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (op, shared, released, claimed) = (
                op.clone(),
                shared.clone(),
                released.clone(),
                claimed.clone(),
            );
            runtime.spawn(async move {
                loop {
                    let Ok(ticket) = released.acquire().await else {
                        return;
                    };
                    ticket.forget();
                    let i = claimed.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let due = start + plan.due(i);
                    let sent = Instant::now();
                    let outcome = op(i).await;
                    let answered = Instant::now();
                    let at = Moments {
                        due,
                        sent,
                        answered,
                    };
                    shared.record(&plan, start, i >= recorded_from, at, outcome);
                }
            })
        })
        .collect();
    // The scheduler is a task on the same runtime as the workers, so a
    // release is a wake-up within the thread, not across threads.
    let scheduler = {
        let released = released.clone();
        runtime.spawn(async move {
            let mut ticker = Ticker::new();
            let mut next = 0;
            while next < total {
                let due = start + plan.due(next);
                let now = Instant::now();
                if due > now {
                    // Never a sleep shorter than MIN_SLEEP: at high rates
                    // the wake-ups themselves would eat the core the
                    // clients need; a wake-up then releases the few
                    // requests that fell due meanwhile, each still timed
                    // from its own schedule.
                    ticker.sleep_until(due.max(now + MIN_SLEEP)).await;
                    continue;
                }
                // Everything due by now, released at once.
                let mut last = next + 1;
                while last < total && start + plan.due(last) <= now {
                    last += 1;
                }
                released.add_permits((last - next) as usize);
                next = last;
            }
        })
    };
    // A scheduler that panicked has released what it could: the run ends
    // with the rest unscheduled and counted unfinished.
    let _ = runtime.block_on(scheduler);
    // One more ticket per worker: past the end, it tells the worker to stop.
    released.add_permits(workers);
    let scheduled = total - recorded_from;
    let sent_all = Instant::now();
    while shared.done.load(Ordering::Relaxed) < scheduled && sent_all.elapsed() < plan.drain {
        std::thread::sleep(Duration::from_millis(1));
    }
    let window_closed = meter.and_then(CpuMeter::reading);
    // What is still running now is abandoned (and counted unfinished),
    // so it cannot spill into the next run.
    for handle in &handles {
        handle.abort();
    }
    let window_opened = window_opens.and_then(|reader| reader.join().ok().flatten());
    let window: Option<Vec<f64>> = window_opened.zip(window_closed).map(|(opened, closed)| {
        opened
            .iter()
            .zip(&closed)
            .map(|(o, c)| (c - o).max(0.0))
            .collect()
    });
    let system_cpu_s = window.as_ref().map(|groups| groups.iter().sum());
    // By group only when there are several (a named process each).
    let system_cpu_by_process = match (meter, window) {
        (Some(meter), Some(groups)) if groups.len() > 1 => {
            meter.names().into_iter().zip(groups).collect()
        }
        _ => Vec::new(),
    };
    let done = shared.done.load(Ordering::Relaxed);
    let recorded_span =
        (sent_all.max(start + plan.warmup + plan.duration) - (start + plan.warmup)).as_secs_f64();
    let (latency, send_lag, outcomes, timeline) = {
        let r = shared.recorder.lock();
        (
            r.latency.clone(),
            r.send_lag.clone(),
            r.outcomes.clone(),
            r.timeline.clone(),
        )
    };
    let achieved_rate = if recorded_span > 0.0 {
        done as f64 / recorded_span
    } else {
        0.0
    };
    let unfinished = scheduled - done.min(scheduled);
    let saturated = achieved_rate
        < 0.95
            * plan
                .rate
                .min(scheduled as f64 / plan.duration.as_secs_f64().max(1e-9))
        || unfinished > 0
        || too_many_errors(&outcomes)
        || (!send_lag.is_empty() && send_lag.value_at_quantile(0.5) > 1_000_000);
    RunStats {
        latency,
        send_lag,
        outcomes,
        scheduled,
        unfinished,
        achieved_rate,
        timeline,
        saturated,
        system_cpu_s,
        system_cpu_by_process,
    }
}

#[cfg(test)]
mod tests;
