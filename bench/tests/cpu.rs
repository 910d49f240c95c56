//! CPU per request counts the recorded window and nothing else.
//!
//! A fixture process (this test binary again, started with
//! `BENCH_CPU_FIXTURE`) burns a known pattern of CPU: a whole core during
//! the run's one-second warm-up, nothing for a fifth of a second, then
//! half a second during the recorded second. The run's meter must see
//! the half second and not the warm-up's second: counting from before the
//! warm-up (the accounting this replaced) reads three times as much. The
//! shares are checked, not the seconds, so a busy machine that gives the
//! fixture less than a core does not fail it.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bench::cpu::CpuMeter;
use bench::generator::load::{self, Plan};
use bench::record::Outcome;

const FIXTURE: &str = "BENCH_CPU_FIXTURE";

/// Spins this thread until `until`.
fn spin_until(until: Instant) {
    let mut x = 0u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// The fixture: says when it starts, burns the pattern, then waits for its
/// parent to close stdin (at most 30 s, so it never outlives a broken run).
fn fixture() {
    let start = Instant::now();
    println!("burning");
    let _ = std::io::stdout().flush();
    spin_until(start + Duration::from_millis(1000));
    std::thread::sleep(Duration::from_millis(200));
    let again = Instant::now();
    spin_until(again + Duration::from_millis(500));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(30));
}

#[test]
fn cpu_per_request_counts_the_recorded_window_only() {
    if std::env::var_os(FIXTURE).is_some() {
        fixture();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "cpu_per_request_counts_the_recorded_window_only",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(FIXTURE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the fixture");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("burning") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("fixture output") > 0,
            "the fixture ended before burning"
        );
    }
    // Two groups, so the window is also read by process: the fixture, and
    // this process (the generator's side, a little CPU).
    let meter = CpuMeter::of_groups(vec![
        ("fixture".to_owned(), vec![child.id()]),
        ("harness".to_owned(), vec![std::process::id()]),
    ]);
    let fixture_meter = CpuMeter::of_pids(vec![child.id()]);
    let before_warmup = fixture_meter.seconds().expect("the fixture's CPU");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let plan = Plan {
        rate: 200.0,
        duration: Duration::from_secs(1),
        warmup: Duration::from_secs(1),
        max_in_flight: 4,
        drain: Duration::from_secs(1),
        timeline: None,
        surge: None,
    };
    let stats = load::run_metered(runtime.handle(), plan, Some(&meter), |_| async {
        Outcome::Ok
    });
    let whole = fixture_meter.seconds().expect("the fixture's CPU") - before_warmup;
    drop(child.stdin.take());
    let _ = child.wait();

    let by_process = &stats.system_cpu_by_process;
    assert_eq!(
        by_process
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["fixture", "harness"],
        "each group's share, in order"
    );
    let total: f64 = by_process.iter().map(|(_, s)| s).sum();
    assert!(
        (total - stats.system_cpu_s.expect("metered")).abs() < 1e-9,
        "the groups add up to the whole: {by_process:?}"
    );
    let window = by_process[0].1;
    assert_eq!(
        stats.count(Outcome::Ok),
        200,
        "every recorded request answered"
    );
    // The fixture burned a warm-up's worth and a window's worth: the test
    // means something only if the meter saw both. On a busy machine (other
    // tests beside it on 2 cores) the fixture gets less than a core, so
    // its burns shrink alike: the shares are checked, not the seconds.
    assert!(
        whole > 0.3,
        "the fixture burned {whole:.3} s in all, too little to tell the window from the run"
    );
    // Of the 1.5 s burned, 0.5 s fell in the window: a third. Counting from
    // before the warm-up (the accounting this replaced) reads all of it.
    let share = window / whole;
    assert!(
        (0.15..=0.6).contains(&share),
        "the recorded window holds the half second burned in it, not the warm-up's second: {window:.3} s of {whole:.3} s"
    );
}
