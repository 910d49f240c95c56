use super::*;

fn plan(rate: f64, secs: f64, max_in_flight: usize) -> Plan {
    Plan {
        rate,
        duration: Duration::from_secs_f64(secs),
        warmup: Duration::from_millis(100),
        max_in_flight,
        drain: Duration::from_secs(5),
        timeline: Some(Duration::from_millis(100)),
        surge: None,
    }
}

#[test]
fn schedule_math() {
    let p = plan(1000.0, 1.0, 1);
    assert_eq!(p.due(0), Duration::ZERO);
    assert_eq!(p.due(1500), Duration::from_millis(1500));
    assert_eq!(p.total(), 1100);
    assert!(p.in_warmup(99) && !p.in_warmup(100));
}

/// 1 s at 1000/s (after a 100 ms warm-up) with a surge to `rate` from
/// `at_ms` for `length_ms`.
fn surged(at_ms: u64, length_ms: u64, rate: f64) -> Plan {
    Plan {
        surge: Some(Surge {
            at: Duration::from_millis(at_ms),
            length: Duration::from_millis(length_ms),
            rate,
        }),
        ..plan(1000.0, 1.0, 1)
    }
}

#[test]
fn a_surge_schedules_its_own_rate_for_its_stretch() {
    let p = surged(500, 200, 4000.0);
    // 500 before (1000/s), 800 during (4000/s), 400 after (1000/s).
    assert_eq!(p.total(), 1700);
    assert_eq!(p.due(499), Duration::from_millis(499));
    assert_eq!(p.due(500), Duration::from_millis(500));
    assert_eq!(p.due(900), Duration::from_millis(600));
    assert_eq!(p.due(1300), Duration::from_millis(700));
    assert_eq!(p.due(1699), Duration::from_millis(1099));
    let dues: Vec<Duration> = (0..p.total()).map(|i| p.due(i)).collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "in order");
    // A surge past the end is cut at the end; one after it is none.
    assert_eq!(surged(1000, 5000, 2000.0).total(), 1000 + 200);
    assert_eq!(surged(2000, 1000, 2000.0).total(), 1100);
}

/// The classic coordinated-omission trap: one connection (one request
/// in flight) and a system that stalls for 300 ms. A closed-loop
/// client would record one slow request; measured from the schedule,
/// every request due during the stall waited, so about a tenth of the
/// recorded requests see more than 100 ms, while their send lag shows
/// it was the stall that held them (not the generator's pacing).
#[test]
fn a_stall_shows_in_every_request_scheduled_during_it() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let stall_at = 500u64; // request index: 500 ms into the run at 1000/s, past the warm-up
    let stats = run(rt.handle(), plan(1000.0, 1.4, 1), move |i| async move {
        if i == stall_at {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Outcome::Ok
    });
    assert_eq!(stats.scheduled, 1400);
    assert_eq!(stats.count(Outcome::Ok) + stats.unfinished, 1400);
    let slow = stats.latency.count_between(100_000_000, u64::MAX);
    // About 300 requests were due during the stall (the 300 ms at
    // 1000/s); at least 100 of them must read as > 100 ms.
    assert!(slow >= 100, "only {slow} requests show the stall");
    assert!(
        stats.latency.max() >= 250_000_000,
        "max {} ns",
        stats.latency.max()
    );
    // A closed-loop view (time from actual send) would hide it: the
    // send lag carries the wait.
    assert!(stats.send_lag.count_between(100_000_000, u64::MAX) >= 100);
    // The timeline shows the hole: no answer for at least two 100 ms
    // buckets while the system stalled, then a burst.
    let empty = stats
        .timeline
        .iter()
        .filter(|b| b.ok + b.failed == 0)
        .count();
    assert!(empty >= 2, "{:?}", stats.timeline);
    assert_eq!(
        stats.timeline.iter().map(|b| b.ok).sum::<u64>(),
        1500,
        "every request, warm-up included"
    );
}

#[test]
fn outcomes_are_counted_by_kind_and_warmup_is_excluded() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let stats = run(rt.handle(), plan(500.0, 0.4, 16), |i| async move {
        match i % 4 {
            0 => Outcome::Ok,
            1 => Outcome::Shed,
            2 => Outcome::Unavailable,
            _ => Outcome::Error,
        }
    });
    assert_eq!(stats.scheduled, 200, "warm-up requests are not recorded");
    let counted: u64 = Outcome::ALL.iter().map(|o| stats.count(*o)).sum();
    assert_eq!(counted, 200);
    assert_eq!(stats.count(Outcome::Ok), 50);
    assert_eq!(stats.count(Outcome::Shed), 50);
    assert_eq!(stats.count(Outcome::Pending), 0);
    assert_eq!(stats.latency.len(), 200);
    // Three in four answers are errors: the rate is not kept.
    assert!(stats.saturated);
}

#[test]
fn errors_beyond_one_percent_flag_a_run_saturated_and_refusals_do_not() {
    use Outcome::*;
    assert!(
        too_many_errors(&[(Ok, 950), (Unavailable, 50)]),
        "5 % errors"
    );
    assert!(
        too_many_errors(&[(Ok, 980), (Shed, 11), (Pending, 5), (Error, 4)]),
        "2 % of mixed errors"
    );
    assert!(!too_many_errors(&[(Ok, 995), (Error, 5)]), "0.5 %");
    assert!(
        !too_many_errors(&[(Ok, 500), (Refused, 500)]),
        "409s are answers"
    );
    assert!(!too_many_errors(&[]));
}

#[test]
fn a_system_slower_than_the_rate_is_flagged_saturated() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    // 10 ms per request, one at a time: 100/s at most, asked for 400/s.
    let mut p = plan(400.0, 0.5, 1);
    p.drain = Duration::from_millis(200);
    let stats = run(rt.handle(), p, |_| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Outcome::Ok
    });
    assert!(
        stats.saturated,
        "achieved {:.0}/s of 400/s",
        stats.achieved_rate
    );
    assert!(stats.unfinished > 0);
}

#[test]
fn outcome_of_status() {
    assert_eq!(Outcome::of_status(200), Outcome::Ok);
    assert_eq!(Outcome::of_status(201), Outcome::Ok);
    assert_eq!(Outcome::of_status(202), Outcome::Pending);
    assert_eq!(Outcome::of_status(429), Outcome::Shed);
    assert_eq!(Outcome::of_status(503), Outcome::Unavailable);
    assert_eq!(Outcome::of_status(409), Outcome::Refused);
    assert_eq!(Outcome::of_status(400), Outcome::Error);
    assert_eq!(Outcome::of_status(500), Outcome::Error);
}
