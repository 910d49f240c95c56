//! A probe of the disk the durable stores live on, run beside the system
//! under test: every [`DISK_PROBE_EVERY_MS`] it writes 4 KiB to a file of
//! its own and waits for `fdatasync`. The file shares nothing with the
//! stores but the disk, so a slow sync here while a run was measured is
//! the disk stalling (a VM's shared volume, say), not the system: the
//! report names such runs, and the curve runs a saturated step the disk
//! stalled in once more.
//!
//! Its own load is 50 small syncs a second, the same beside every
//! variant.

use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::record::{DISK_PROBE_EVERY_MS, DISK_STALL_MS, DiskRecord};

/// A running probe; [`Probe::stop`] reads it.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<Histogram<u64>>>>,
    file: PathBuf,
}

impl Probe {
    /// Starts probing with a file in `dir` (created if missing).
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join("disk-probe");
        let mut f = std::fs::File::create(&file)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                let block = [0x5au8; 4096];
                let every = Duration::from_millis(DISK_PROBE_EVERY_MS);
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                    .map_err(std::io::Error::other)?;
                let mut next = Instant::now();
                while !stopped.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    f.write_all(&block)?;
                    f.sync_data()?;
                    h.saturating_record(t.elapsed().as_micros() as u64);
                    // Rewrite the same block: a file that grew would be
                    // a growing write, and a metadata sync besides.
                    f.rewind()?;
                    next += every;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        // A stall: start the beat afresh after it.
                        next = now;
                    }
                }
                Ok(h)
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            file,
        })
    }

    /// Stops the probe and reads it; `None` when it failed or made no sync.
    pub fn stop(mut self) -> Option<DiskRecord> {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.thread.take()?.join().ok()?;
        match h {
            Ok(h) => record_of(&h),
            Err(e) => {
                eprintln!("the disk probe failed: {e}");
                None
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The record of the syncs in `h` (microseconds each).
fn record_of(h: &Histogram<u64>) -> Option<DiskRecord> {
    if h.is_empty() {
        return None;
    }
    let stall_us = (DISK_STALL_MS * 1000.0) as u64;
    Some(DiskRecord {
        syncs: h.len(),
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
        max_us: h.max() as f64,
        // Past the bound at the histogram's precision (3 digits).
        stalls: h.count_between(h.next_non_equivalent(stall_us), u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_syncs_its_own_file_and_removes_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-tmp")
            .join(format!("disk-probe-{}", std::process::id()));
        let probe = Probe::start(&dir).expect("start");
        std::thread::sleep(Duration::from_millis(5 * DISK_PROBE_EVERY_MS));
        let record = probe.stop().expect("a reading");
        assert!(record.syncs >= 1, "{record:?}");
        assert!(record.p50_us <= record.p99_us && record.p99_us <= record.max_us);
        assert!(!dir.join("disk-probe").exists());
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn a_sync_past_the_bound_is_a_stall() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        for us in [400, 500, 50_000, 120_000] {
            h.record(us).expect("record");
        }
        let r = record_of(&h).expect("a reading");
        assert_eq!(r.syncs, 4);
        assert_eq!(r.stalls, 1, "{r:?}");
        assert!(r.stalled());
        assert!(r.max_us >= 119_000.0);
    }
}
