//! CPU time of the processes of a system under test, read from `/proc`.
//!
//! Every thread's `schedstat` gives the nanoseconds it ran, so a window of
//! a few seconds is measured to the microsecond, not to the 10 ms tick of
//! `/proc/<pid>/stat`. A thread that exits inside a window takes its time
//! with it; the systems' worker threads live as long as their process.
//! Where `schedstat` is missing (a kernel without schedstats), the tick
//! counters of `/proc/<pid>/stat` are used instead.

/// Reads the CPU time used so far by a fixed set of processes, in named
/// groups (a microservice's processes, the microlith's one).
#[derive(Debug, Clone, Default)]
pub struct CpuMeter {
    groups: Vec<(String, Vec<u32>)>,
}

impl CpuMeter {
    /// A meter over these processes (every thread of each), as one group.
    pub fn of_pids(pids: Vec<u32>) -> Self {
        Self {
            groups: vec![(String::new(), pids)],
        }
    }

    /// A meter over named groups of processes; a reading gives each
    /// group's CPU.
    pub fn of_groups(groups: Vec<(String, Vec<u32>)>) -> Self {
        Self { groups }
    }

    /// Every process it reads.
    pub fn pids(&self) -> Vec<u32> {
        self.groups
            .iter()
            .flat_map(|(_, pids)| pids.iter().copied())
            .collect()
    }

    /// The groups' names, in the order of [`CpuMeter::reading`].
    pub fn names(&self) -> Vec<String> {
        self.groups.iter().map(|(name, _)| name.clone()).collect()
    }

    /// CPU seconds used so far by every thread of every process, or `None`
    /// when there are no processes or one cannot be read (gone, or not on
    /// Linux).
    pub fn seconds(&self) -> Option<f64> {
        Some(self.reading()?.iter().sum())
    }

    /// The cores the processes use over the next `window` (blocking for
    /// it): the CPU they ran divided by the time that passed.
    pub fn cores_over(&self, window: std::time::Duration) -> Option<f64> {
        let (before, started) = (self.seconds()?, std::time::Instant::now());
        std::thread::sleep(window);
        Some((self.seconds()? - before).max(0.0) / started.elapsed().as_secs_f64())
    }

    /// CPU seconds used so far by each group, as [`CpuMeter::seconds`].
    pub fn reading(&self) -> Option<Vec<f64>> {
        if self.groups.iter().all(|(_, pids)| pids.is_empty()) {
            return None;
        }
        self.groups
            .iter()
            .map(|(_, pids)| {
                let mut ns = 0u64;
                for pid in pids {
                    ns += process_cpu_ns(*pid)?;
                }
                Some(ns as f64 / 1e9)
            })
            .collect()
    }
}

/// CPU nanoseconds the calling thread has run so far (its `schedstat`),
/// or `None` where the kernel does not keep it.
pub fn this_thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU nanoseconds of every live thread of `pid`: the sum of each thread's
/// `schedstat`, else the process's `utime + stime` ticks.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let threads = crate::procfs::threads(crate::procfs::Proc::Pid(pid))?;
    if !threads.is_empty() {
        return Some(threads.iter().map(|t| t.run_ns).sum());
    }
    crate::procfs::stat_ticks(pid).map(|ticks| ticks * 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured_to_the_microsecond() {
        let meter = CpuMeter::of_pids(vec![std::process::id()]);
        let before = meter.seconds().expect("readable");
        // Spin for 30 ms of this thread's CPU (well under a 10 ms tick's
        // resolution three times over).
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = meter.seconds().expect("readable");
        assert!(
            after - before >= 0.005,
            "spun, yet {:.4} s measured",
            after - before
        );
        assert_eq!(CpuMeter::of_pids(Vec::new()).seconds(), None);
        assert_eq!(
            CpuMeter::of_pids(vec![u32::MAX]).seconds(),
            None,
            "no such process"
        );
    }
}
