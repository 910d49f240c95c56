//! Admission control: how many requests the edge lets in at once.
//!
//! Two bounds, both answered at once with 429 `overloaded` (never by
//! queueing the request):
//! - a hard one, `max_in_flight`, which bounds memory whatever happens;
//! - a **latency target** (Little's law, in the spirit of Netflix's
//!   concurrency-limits and Envoy's adaptive concurrency), read every
//!   100 ms from two signals, each as its *minimum* over the window (as
//!   CoDel reads a queue's sojourn time: a queue that stands delays
//!   everything, a burst or a stall does not):
//!   - the fastest admitted request: past the target, the limit drops to
//!     what the window's throughput finishes within it
//!     (`throughput × target`);
//!   - the **runtime's lag**: how late a timer set every 5 ms woke up at
//!     least (the load of Node's `toobusy`). A request waits in that
//!     queue of ready tasks *before* it reaches this middleware, where no
//!     handler's time shows it: with the CPU saturated (the two cores
//!     shared with the load generator and, for the microservices, four
//!     other processes) it was the whole of the wait. When that wait is
//!     a tenth of the target or more and, with the fastest request,
//!     passes the target, the limit drops to half of what is in flight. A busy runtime whose requests still
//!     finish within the target refuses nothing: a saturated closed loop
//!     (a fixed number of clients, each waiting for its answer) cannot
//!     grow a queue, and its requests are not late.
//!
//!   So the queue stops growing and the excess is refused in microseconds
//!   instead of waiting for its deadline. Otherwise the limit grows back
//!   by a quarter a window (from the floor of 32 to 4 096 in about 2.3 s),
//!   windows in which nothing was in flight included: an edge left idle
//!   after a burst does not refuse the next one with the burst's limit.
//!   A window that lasted over 400 ms changes nothing: the process was
//!   stopped or nothing finished, which says nothing of a queue (and the
//!   backlog a stall leaves is worth serving, not refusing). Nor does a
//!   window that ends a silence of a window's length or more (a disk that
//!   held every commit waiting on its sync for 200 ms, say): the request
//!   that ends it closes the window alone, as late as the stall was long,
//!   and reads like a standing queue; the backlog behind it and the
//!   requests after are judged in the next window.
//!
//! A request is admitted once its body has arrived (at most
//! [`crate::BODY_LIMIT`] bytes within the request deadline, else 413 or
//! 408 before admission): a client trickling its body holds a connection,
//! which the listener bounds, not a place among the requests being
//! worked on, so slow clients neither crowd out nor slow down the
//! reading of the others.
//!
//! Below saturation requests take a few milliseconds, the runtime keeps
//! up, and requests in flight stay far below the floor: the target acts
//! only when a queue stands. Every variant serves the same edge, so the
//! same rule admits their requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// How often the limit is reconsidered.
const WINDOW: Duration = Duration::from_millis(100);

/// How often the lag probe sets its timer.
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// A window longer than this is a stall, not a reading.
const STALL: Duration = Duration::from_millis(400);

/// The limit never drops below this many requests in flight: a short
/// stall at a low rate must not refuse the few requests it holds.
pub const MIN_LIMIT: usize = 32;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_in_flight` requests were in flight.
    Full,
    /// The latency target's limit was reached.
    Queue,
}

/// The admission state one router shares across its requests.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    /// `None`: only `max` applies.
    target: Option<Duration>,
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    started: Instant,
    /// Microseconds since `started` at which the current window opened.
    window_start_us: AtomicU64,
    /// Requests finished in the current window, and the fastest, µs.
    done: AtomicU64,
    fastest_us: AtomicU64,
    /// The lag probe's wake-ups in the current window, and the least
    /// late, µs.
    probes: AtomicU64,
    least_lag_us: AtomicU64,
    /// Microseconds since `started` at which the last request in flight
    /// finished.
    idle_since_us: AtomicU64,
    /// Microseconds since `started` at which the last request finished.
    last_done_us: AtomicU64,
}

/// One admitted request; dropping it (the answer is made, or the request's
/// task was cancelled) releases its place and records its time.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    at: Instant,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.finished(self.at);
    }
}

impl Admission {
    /// At most `max_in_flight` requests at once, and with a `target`, no
    /// more than finish within it at the rate they are finishing.
    /// Built within a tokio runtime, it also watches that runtime's lag
    /// (a task of its own, until the admission is dropped).
    pub fn new(max_in_flight: usize, target: Option<Duration>) -> Arc<Self> {
        let max = max_in_flight.max(1);
        let admission = Arc::new(Self {
            max,
            target: target.filter(|t| !t.is_zero()),
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(max),
            started: Instant::now(),
            window_start_us: AtomicU64::new(0),
            done: AtomicU64::new(0),
            fastest_us: AtomicU64::new(u64::MAX),
            probes: AtomicU64::new(0),
            least_lag_us: AtomicU64::new(u64::MAX),
            idle_since_us: AtomicU64::new(0),
            last_done_us: AtomicU64::new(0),
        });
        if admission.target.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(probe_lag(Arc::downgrade(&admission)));
        }
        admission
    }

    /// Lets a request in, or says why not.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, Refusal> {
        let at = Instant::now();
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before == 0 {
            self.after_idle(at);
        }
        let refusal = if before >= self.max {
            Some(Refusal::Full)
        } else if before >= self.limit.load(Ordering::Acquire) {
            Some(Refusal::Queue)
        } else {
            None
        };
        match refusal {
            Some(why) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                Err(why)
            }
            None => Ok(Admitted {
                admission: Arc::clone(self),
                at,
            }),
        }
    }

    /// The first request after none were in flight: a window closes only
    /// when a request finishes, so the whole windows that passed since the
    /// last request finished are counted here. Nothing was waiting in them
    /// (there was no queue to measure), so the limit grows by a quarter for
    /// each, as it does for a window of requests finishing within the
    /// target, and a new window opens. Without this an idle edge kept the
    /// limit a burst had left, and refused the next burst however long
    /// after.
    fn after_idle(&self, now: Instant) {
        if self.target.is_none() {
            return;
        }
        let now_us = micros(now.saturating_duration_since(self.started));
        let idle_us = now_us.saturating_sub(self.idle_since_us.load(Ordering::Acquire));
        let windows = idle_us / micros(WINDOW);
        let opened = self.window_start_us.load(Ordering::Acquire);
        // What the window held is of the past: the queue it saw is gone.
        if windows == 0 || self.close_window(opened, now_us, now_us).is_none() {
            return;
        }
        self.set_limit(grown(self.limit.load(Ordering::Acquire), self.max, windows));
    }

    /// Closes the window opened at `opened` and opens the next at
    /// `now_us`: what the closed one counted, or None when another request
    /// closed it first.
    fn close_window(&self, opened: u64, now_us: u64, last_done_us: u64) -> Option<Window> {
        self.window_start_us
            .compare_exchange(opened, now_us, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(Window {
            done: self.done.swap(0, Ordering::AcqRel),
            fastest_us: self.fastest_us.swap(u64::MAX, Ordering::AcqRel),
            length_us: now_us.saturating_sub(opened),
            quiet_us: now_us.saturating_sub(last_done_us.max(opened)),
            probes: self.probes.swap(0, Ordering::AcqRel),
            least_lag_us: self.least_lag_us.swap(u64::MAX, Ordering::AcqRel),
            in_flight: self.in_flight.load(Ordering::Acquire),
        })
    }

    fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Release);
        metrics::gauge!("edge_admission_limit").set(limit as f64);
    }

    /// The current limit on requests in flight.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire).min(self.max)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// A request admitted `at` is done.
    fn finished(&self, at: Instant) {
        let before = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        let Some(target) = self.target else {
            return;
        };
        // One clock read a request: its time and the window's both from it.
        let now = Instant::now();
        let now_us = micros(now.saturating_duration_since(self.started));
        if before == 1 {
            self.idle_since_us.store(now_us, Ordering::Release);
        }
        let last_done_us = self.last_done_us.fetch_max(now_us, Ordering::AcqRel);
        self.done.fetch_add(1, Ordering::AcqRel);
        self.fastest_us
            .fetch_min(micros(now.saturating_duration_since(at)), Ordering::AcqRel);
        let opened = self.window_start_us.load(Ordering::Acquire);
        let length_us = now_us.saturating_sub(opened);
        if length_us < WINDOW.as_micros() as u64 {
            return;
        }
        // One request closes the window; the others go on counting into
        // the next.
        let Some(window) = self.close_window(opened, now_us, last_done_us) else {
            return;
        };
        if window.probes > 0 {
            metrics::gauge!("edge_runtime_lag_seconds").set(window.least_lag_us as f64 / 1e6);
        }
        self.set_limit(next_limit(
            self.limit.load(Ordering::Acquire),
            self.max,
            target,
            window,
        ));
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `limit` after `windows` windows of growth (a quarter each, at least
/// one), within `MIN_LIMIT..=max`.
fn grown(limit: usize, max: usize, windows: u64) -> usize {
    let mut next = limit;
    for _ in 0..windows.min(64) {
        if next >= max {
            break;
        }
        next = next.saturating_add((next / 4).max(1));
    }
    next.clamp(MIN_LIMIT.min(max), max)
}

/// Wakes every [`PROBE_EVERY`] and adds how late it woke to the window,
/// until the admission is gone.
async fn probe_lag(admission: std::sync::Weak<Admission>) {
    loop {
        let set = Instant::now();
        tokio::time::sleep(PROBE_EVERY).await;
        let late = set.elapsed().saturating_sub(PROBE_EVERY);
        let Some(admission) = admission.upgrade() else {
            return;
        };
        admission.probes.fetch_add(1, Ordering::AcqRel);
        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        admission.least_lag_us.fetch_min(late_us, Ordering::AcqRel);
    }
}

/// What one window saw.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Requests finished, and the fastest of them, µs.
    done: u64,
    fastest_us: u64,
    length_us: u64,
    /// From the request that finished before the one closing the window
    /// (or the window's start, if later) to it: how long nothing finished.
    quiet_us: u64,
    /// The probe's wake-ups, and the least late of them, µs.
    probes: u64,
    least_lag_us: u64,
    /// Requests in flight when it closed.
    in_flight: usize,
}

/// The limit after a window, always within `MIN_LIMIT..=max`:
/// - when even its fastest request took longer than `target`, down to
///   what finishes within it at the window's throughput;
/// - when the probe's timeliest wake-up (of two or more) was later than a
///   tenth of `target` and, with the fastest request, passes it, down to
///   half of what is in flight;
/// - else up by a quarter;
/// - unchanged after a window with nothing finished, one that lasted
///   past [`STALL`], or one that ended with a whole window's length in
///   which nothing finished, however many requests were in flight: the
///   disk, a dependency or the process stalled (a sync held every commit
///   waiting on it, say), and the request that ends the silence is the
///   first of the backlog the stall left, not a queue that stands. A
///   queue that stands keeps requests finishing: its windows are judged.
fn next_limit(limit: usize, max: usize, target: Duration, window: Window) -> usize {
    let floor = MIN_LIMIT.min(max);
    if window.done == 0
        || window.length_us == 0
        || window.length_us > STALL.as_micros() as u64
        || window.quiet_us >= WINDOW.as_micros() as u64
    {
        return limit;
    }
    let target_us = target.as_secs_f64() * 1e6;
    let mut next = limit;
    let mut over = false;
    if window.fastest_us as f64 > target_us {
        // Little's law: in flight = throughput × time in the system.
        let throughput_per_us = window.done as f64 / window.length_us as f64;
        next = next.min((throughput_per_us * target_us).ceil() as usize);
        over = true;
    }
    // The lag counts when it is a tenth of the target or more (less is the
    // machine's ordinary noise) and, with the fastest request, passes it.
    let lag_us = window.least_lag_us as f64;
    let waited_us = lag_us + window.fastest_us as f64;
    if window.probes >= 2 && lag_us > target_us / 10.0 && waited_us > target_us {
        next = next.min(window.in_flight / 2);
        over = true;
    }
    if !over {
        next = grown(limit, max, 1);
    }
    next.clamp(floor, max)
}

/// What the middleware needs: the admission, and how long a body may
/// take to arrive (the request deadline).
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub(crate) admission: Arc<Admission>,
    pub(crate) body_deadline: Duration,
}

/// Middleware: receives a POST's body (413 or 408 when it is too large or
/// too slow), then admits the request or refuses it at once with 429.
pub(crate) async fn admit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let request = if request.method() == axum::http::Method::POST {
        let (parts, body) = request.into_parts();
        match crate::body::receive(body, gate.body_deadline).await {
            Ok(bytes) => Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(error) => return error.into_response(),
        }
    } else {
        request
    };
    match gate.admission.admit() {
        Ok(admitted) => {
            let response = next.run(request).await;
            drop(admitted);
            response
        }
        Err(why) => {
            let (reason, message) = match why {
                Refusal::Full => ("full", "too many requests in flight, retry later"),
                Refusal::Queue => (
                    "latency",
                    "requests are queueing past the latency target, retry later",
                ),
            };
            metrics::counter!("edge_shed_total", "reason" => reason).increment(1);
            ApiError::overloaded(message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(50);

    /// A window of 100 ms: `done` requests, the fastest in `fastest_ms`.
    fn window(done: u64, fastest_ms: f64) -> Window {
        Window {
            done,
            fastest_us: (fastest_ms * 1000.0) as u64,
            length_us: 100_000,
            quiet_us: 1_000,
            probes: 20,
            least_lag_us: 100,
            in_flight: 10,
        }
    }

    #[test]
    fn a_window_under_the_target_keeps_growing_the_limit_up_to_the_bound() {
        assert_eq!(next_limit(4096, 4096, TARGET, window(500, 2.0)), 4096);
        assert_eq!(next_limit(100, 4096, TARGET, window(500, 2.0)), 125);
        assert_eq!(next_limit(4000, 4096, TARGET, window(500, 2.0)), 4096);
    }

    #[test]
    fn a_window_past_the_target_limits_to_what_finishes_within_it() {
        // 600 finished in 100 ms: 6 000/s, × 50 ms = 300 in flight.
        assert_eq!(next_limit(4096, 4096, TARGET, window(600, 400.0)), 300);
        // Never up while over the target.
        assert_eq!(next_limit(200, 4096, TARGET, window(600, 400.0)), 200);
        // A stall at a low rate keeps the floor.
        assert_eq!(next_limit(4096, 4096, TARGET, window(3, 900.0)), MIN_LIMIT);
    }

    #[test]
    fn a_lagging_runtime_halves_what_is_in_flight_however_fast_the_handlers() {
        // 49 ms late at least, and 2 ms for the fastest request: past 50.
        let lagging = |in_flight| Window {
            least_lag_us: 49_000,
            in_flight,
            ..window(600, 2.0)
        };
        assert_eq!(next_limit(4096, 4096, TARGET, lagging(1000)), 500);
        assert_eq!(next_limit(400, 4096, TARGET, lagging(1000)), 400);
        assert_eq!(next_limit(4096, 4096, TARGET, lagging(10)), MIN_LIMIT);
        // A busy runtime whose requests still finish within the target
        // (a saturated closed loop: 20 ms late, 2 ms to serve) is not a
        // queue past the target.
        let busy = Window {
            least_lag_us: 20_000,
            in_flight: 1000,
            ..window(600, 2.0)
        };
        assert_eq!(next_limit(400, 4096, TARGET, busy), 500);
        // The same lag with slower requests (20 + 31 ms) is past it.
        let slower = Window {
            least_lag_us: 20_000,
            in_flight: 600,
            ..window(600, 31.0)
        };
        assert_eq!(next_limit(400, 4096, TARGET, slower), 300);
        // One late wake-up is a stall, not a queue.
        let once = Window {
            probes: 1,
            ..lagging(1000)
        };
        assert_eq!(next_limit(400, 4096, TARGET, once), 500);
    }

    #[test]
    fn a_window_as_long_as_a_stall_changes_nothing() {
        // The process was stopped for 1.5 s: every request it held is
        // late, and none of that is a queue standing now.
        let stalled = Window {
            length_us: 1_500_000,
            least_lag_us: 1_500_000,
            probes: 3,
            in_flight: 450,
            ..window(450, 1_500.0)
        };
        assert_eq!(next_limit(4096, 4096, TARGET, stalled), 4096);
    }

    #[test]
    fn a_window_that_ends_a_silence_changes_nothing() {
        // The disk held every commit for 200 ms: the request that ends
        // the silence closes the window alone, 200 ms late; the backlog
        // behind it counts into the next window.
        let silence = Window {
            length_us: 230_000,
            quiet_us: 200_000,
            in_flight: 200,
            ..window(1, 200.0)
        };
        assert_eq!(next_limit(4096, 4096, TARGET, silence), 4096);
        // A queue that stands keeps finishing requests, each slow: judged.
        let standing = Window {
            length_us: 100_500,
            quiet_us: 4_000,
            ..window(30, 200.0)
        };
        assert_eq!(next_limit(4096, 4096, TARGET, standing), MIN_LIMIT);
    }

    #[test]
    fn the_request_that_ends_a_silence_does_not_bring_the_limit_down() {
        let admission = Admission::new(4096, Some(TARGET));
        // 150 in flight held 250 ms by a stall (under the 400 ms of a
        // window too long to read); the first of them to finish ends the
        // silence and closes the window alone, 250 ms late.
        let held: Vec<_> = (0..150).map(|_| admission.admit().expect("in")).collect();
        std::thread::sleep(Duration::from_millis(250));
        drop(held);
        assert_eq!(admission.limit(), 4096, "a stall is not a queue");
    }

    #[test]
    fn a_window_with_nothing_finished_changes_nothing() {
        assert_eq!(next_limit(777, 4096, TARGET, window(0, 0.0)), 777);
    }

    #[test]
    fn a_small_bound_is_the_floor_too() {
        assert_eq!(next_limit(8, 8, TARGET, window(10, 900.0)), 8);
    }

    #[test]
    fn past_the_limit_a_request_is_refused_and_a_finished_one_frees_its_place() {
        let admission = Admission::new(2, None);
        let first = admission.admit().expect("room for one");
        let _second = admission.admit().expect("room for two");
        assert_eq!(admission.admit().expect_err("full"), Refusal::Full);
        assert_eq!(admission.in_flight(), 2);
        drop(first);
        assert_eq!(admission.in_flight(), 1);
        assert!(admission.admit().is_ok());
    }

    /// An admission with a target of 1 µs, after requests of 5 ms each,
    /// one after another, until a window has passed: every one took
    /// longer than the target, so the limit is what finishes within it,
    /// the floor.
    fn at_the_floor() -> Arc<Admission> {
        let admission = Admission::new(4096, Some(Duration::from_micros(1)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while admission.limit() == 4096 && Instant::now() < deadline {
            let admitted = admission.admit().expect("admitted");
            std::thread::sleep(Duration::from_millis(5));
            drop(admitted);
        }
        assert_eq!(admission.limit(), MIN_LIMIT);
        admission
    }

    #[test]
    fn requests_slower_than_the_target_bring_the_limit_down_and_refuse_the_excess() {
        let admission = at_the_floor();
        let held: Vec<_> = (0..MIN_LIMIT)
            .map(|_| admission.admit().expect("within the limit"))
            .collect();
        assert_eq!(
            admission.admit().expect_err("past the limit"),
            Refusal::Queue
        );
        drop(held);
        assert_eq!(admission.in_flight(), 0);
    }

    #[test]
    fn an_idle_edge_grows_its_limit_back_for_the_windows_it_was_idle() {
        assert_eq!(grown(32, 4096, 1), 40);
        assert_eq!(grown(32, 4096, 10), 291);
        assert_eq!(grown(32, 4096, 1_000_000), 4096);
        // Requests past the target brought the limit to the floor (one
        // after another, 5 ms apart: never idle for a window).
        let admission = at_the_floor();
        // Then nothing for ten windows and more: the next request, the
        // first of a new burst, finds the limit grown back for each.
        std::thread::sleep(WINDOW * 10 + WINDOW / 2);
        let first = admission.admit().expect("admitted");
        assert_eq!(admission.limit(), grown(MIN_LIMIT, 4096, 10));
        let burst: Vec<_> = (0..200)
            .map(|_| admission.admit().expect("within the grown limit"))
            .collect();
        drop((first, burst));
        // While requests are in flight, time alone grows nothing.
        let held = admission.admit().expect("admitted");
        let limit = admission.limit();
        std::thread::sleep(WINDOW * 2);
        let _second = admission.admit().expect("admitted");
        assert_eq!(admission.limit(), limit);
        drop(held);
    }

    /// A router of one POST route behind the gate, admitting one request.
    fn gated_one() -> axum::Router {
        axum::Router::new()
            .route(
                "/x",
                axum::routing::post(|body: axum::body::Bytes| async move { body }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                Gate {
                    admission: Admission::new(1, None),
                    body_deadline: Duration::from_millis(300),
                },
                admit,
            ))
    }

    #[tokio::test]
    async fn a_body_still_arriving_holds_no_place_and_is_cut_at_the_deadline() {
        use tower::ServiceExt;
        let router = gated_one();
        // One byte of a body, then nothing: it waits outside the gate.
        let trickle = futures::stream::unfold(false, |sent| async move {
            if sent {
                futures::future::pending::<()>().await;
            }
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{")),
                true,
            ))
        });
        let slow = tokio::spawn(
            router.clone().oneshot(
                Request::post("/x")
                    .body(axum::body::Body::from_stream(trickle))
                    .expect("request"),
            ),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The one place is free for a request whose body is there.
        let whole = router
            .clone()
            .oneshot(
                Request::post("/x")
                    .body(axum::body::Body::from("{}"))
                    .expect("request"),
            )
            .await
            .expect("answered");
        assert_eq!(whole.status(), axum::http::StatusCode::OK);
        // The trickled one gets 408 at the deadline, never admitted.
        let cut = tokio::time::timeout(Duration::from_secs(10), slow)
            .await
            .expect("cut at the deadline")
            .expect("task")
            .expect("answered");
        assert_eq!(cut.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
    }
}
