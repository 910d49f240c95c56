//! Resident memory sampled on a thread of its own while a part runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Samples `(seconds since the start, bytes)` every `every` until stopped.
pub struct Sampler {
    running: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(f64, u64)>>,
}

impl Sampler {
    /// Starts sampling `rss` (None: not readable now, skipped), counting
    /// time from `start`.
    pub fn start(
        start: Instant,
        every: Duration,
        rss: impl Fn() -> Option<u64> + Send + 'static,
    ) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let running = running.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while running.load(Ordering::Relaxed) {
                    if let Some(bytes) = rss() {
                        samples.push((start.elapsed().as_secs_f64(), bytes));
                    }
                    std::thread::sleep(every);
                }
                samples
            })
        };
        Self { running, thread }
    }

    /// Stops it: the samples taken.
    pub fn stop(self) -> Vec<(f64, u64)> {
        self.running.store(false, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }

    /// Stops it: the highest sample (0 when none was read).
    pub fn peak(self) -> u64 {
        self.stop().into_iter().map(|s| s.1).max().unwrap_or(0)
    }
}
