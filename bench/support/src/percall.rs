//! Criterion benches timed call by call: criterion's estimate plus the
//! HdrHistogram percentiles of the individual calls, printed as one line
//! per bench (`name: n=… p50=…us p90=… p99=… p99.9=… max=…`).

use std::time::{Duration, Instant};

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use hdrhistogram::Histogram;

/// Percentiles of one bench, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// Calls timed.
    pub n: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// Prints one bench's percentiles and returns them (`None` when the bench
/// was filtered out on the command line).
pub fn report(name: &str, hist: &Histogram<u64>) -> Option<Percentiles> {
    if hist.is_empty() {
        return None;
    }
    println!(
        "{name}: n={} p50={:.2}us p90={:.2}us p99={:.2}us p99.9={:.2}us max={:.2}us",
        hist.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.9) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
    );
    Some(Percentiles {
        n: hist.len(),
        p50: hist.value_at_quantile(0.5),
        p99: hist.value_at_quantile(0.99),
    })
}

/// A criterion bench of one call, timed call by call: criterion's estimate
/// plus the HdrHistogram percentiles printed under `label`. `make_op`
/// builds the per-iteration operation afresh for every criterion sample.
pub fn per_call<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    label: &str,
    make_op: impl Fn() -> F,
) -> Option<Percentiles>
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    group.bench_function(name, |b| {
        b.iter_custom(|iters| timed(rt, iters, &mut hist, make_op()))
    });
    report(label, &hist)
}

/// Runs `op` `iters` times in one task on the runtime, timing each call
/// (the awaiting of the future `op` returns).
pub fn timed<F, Fut>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    hist: &mut Histogram<u64>,
    op: F,
) -> Duration
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (total, h) = rt.block_on(async move {
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let start = Instant::now();
            for i in 0..iters {
                // Work the closure does before returning its future (building
                // the request) is the harness's, not the system's: untimed.
                let call = op(i);
                let t = Instant::now();
                call.await;
                let _ = h.record(t.elapsed().as_nanos() as u64);
            }
            (start.elapsed(), h)
        })
        .await
        .expect("bench task")
    });
    let _ = hist.add(&h);
    total
}
