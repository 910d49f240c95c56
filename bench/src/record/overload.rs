//! Overload: a variant at half its knee, then at twice it for a while,
//! then at half again; every answer kept, read per 100 ms bucket.

use serde::{Deserialize, Serialize};

use super::Audit;

/// One variant's overload run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverloadRecord {
    /// The variant.
    pub variant: String,
    /// Its knee: the highest step of the curve it sustained (the durable
    /// curve's when [`OverloadRecord::storage`] says durable), transfers
    /// per second.
    pub knee: f64,
    /// Before and after the surge (half the knee).
    pub base_rate: f64,
    /// During the surge (twice the knee).
    pub surge_rate: f64,
    /// When the surge began, seconds from the start of the run.
    pub surge_at_s: f64,
    /// How long it lasted.
    pub surge_s: f64,
    /// Width of a bucket, milliseconds.
    pub bucket_ms: u64,
    /// Per bucket, by answer time.
    pub buckets: Vec<OverloadBucket>,
    /// Resident memory of the variant's processes: (seconds from the
    /// start, bytes), a sample every 250 ms.
    pub rss: Vec<(f64, u64)>,
    /// Requests still unanswered when the drain ended (none may hang).
    pub unfinished: u64,
    /// The generator's own delay (scheduled to sent), p99 over the run,
    /// microseconds: past a millisecond, it was the generator that could
    /// not keep the rate, not only the system.
    pub send_lag_p99_us: f64,
    /// The audit after the run (money conserved, nothing pending).
    pub audit: Option<Audit>,
    /// What only every answer tells.
    pub exact: OverloadExact,
    /// The most connections the generator had open to the variant at once
    /// (one per request in flight: it does not pipeline); each costs the
    /// edge its buffers, so the RSS under overload follows it. Not
    /// recorded before 2026-11-29's session 18.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_connections: Option<u64>,
    /// `durable` when the variant was overloaded on durable storage,
    /// started afresh with the durable curve (whose knee it took), while
    /// the rest of the run was in memory: there the settled transfers
    /// leave memory, so the RSS reads the buffers and queues alone. None:
    /// the storage of the rest of the run (runs before 2026-11-29's
    /// session 23 were all so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// Read off every answer of an overload run, not its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OverloadExact {
    /// p99 of the ok answers (from their schedule) in the 2 s before the
    /// surge, µs.
    pub p99_before_us: f64,
    /// p99 of the refusals (429, 503) during the surge, from their
    /// sending, µs; none when nothing was refused.
    pub shed_p99_us: Option<f64>,
    /// From the end of the surge to the start of the first second (read
    /// every 100 ms) whose ok answers' p99 is within twice
    /// `p99_before_us` with nothing refused or failed, s; none when no
    /// such second came in the run.
    pub back_after_s: Option<f64>,
}

/// One bucket of an overload run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OverloadBucket {
    /// Transfers answered 2xx, or refused for a domain reason (409).
    pub ok: u64,
    /// Refused for load: 429 or 503.
    pub shed: u64,
    /// Anything else: other statuses, transport errors, timeouts.
    pub errors: u64,
    /// Given up unsent: the generator, which shares the machine, fell
    /// more than 5 s behind its schedule (not the system's answer).
    #[serde(default)]
    pub unsent: u64,
    /// p99 of the `ok` answers' latency from their scheduled time, µs.
    pub ok_p99_us: f64,
    /// The slowest `shed` answer from its sending (the system's refusal,
    /// not the generator's queue), µs.
    pub shed_max_us: f64,
}

/// Where an overload run stands against issue 16's targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverloadVerdict {
    /// `ok` answers per second during the surge.
    pub goodput: f64,
    /// `goodput` over the knee (target: 0.8 at least).
    pub goodput_ratio: f64,
    /// p99 of the sheds' latency from sending during the surge, ms
    /// (target: 10 ms at most); none when nothing was shed.
    pub shed_p99_ms: Option<f64>,
    /// Answers refused for load during the surge.
    pub shed: u64,
    /// RSS just before the surge, bytes.
    pub rss_before: u64,
    /// The highest RSS sampled during it.
    pub rss_peak: u64,
    /// `rss_peak` over `rss_before` (target: 1.5 at most).
    pub rss_ratio: f64,
    /// The ok answers' p99 in the two seconds before the surge, ms.
    pub p99_before_ms: f64,
    /// From the end of the surge to the first bucket of a healthy second
    /// (p99 within twice the one before, nothing shed or failed), s
    /// (target: 1 s at most); none when it never came back in the run.
    pub back_after_s: Option<f64>,
    /// Errors (not sheds) over the run, and unanswered requests.
    pub errors: u64,
    /// Requests the generator gave up unsent: where it fell behind, the
    /// run measured the generator as much as the system.
    pub unsent: u64,
}

/// Issue 16's targets under overload.
pub mod target {
    /// Goodput during the surge over the knee, at least.
    pub const GOODPUT_RATIO: f64 = 0.8;
    /// p99 of the refusals from sending, ms, at most.
    pub const SHED_P99_MS: f64 = 10.0;
    /// Peak RSS during the surge over the RSS before it, at most.
    pub const RSS_RATIO: f64 = 1.5;
    /// From the end of the surge to latency back, s, at most.
    pub const BACK_S: f64 = 1.0;
}

impl OverloadVerdict {
    /// The targets it missed, each said briefly (empty: it holds).
    pub fn missed(&self) -> Vec<String> {
        let mut missed = Vec::new();
        if self.goodput_ratio < target::GOODPUT_RATIO {
            missed.push(format!("goodput {:.2}", self.goodput_ratio));
        }
        if self.shed_p99_ms.is_some_and(|ms| ms > target::SHED_P99_MS) {
            missed.push("slow refusals".to_owned());
        }
        if self.rss_ratio > target::RSS_RATIO {
            missed.push(format!("RSS {:.1}x", self.rss_ratio));
        }
        match self.back_after_s {
            Some(s) if s <= target::BACK_S => {}
            Some(s) => missed.push(format!("back after {s:.1} s")),
            None => missed.push("not back in the run".to_owned()),
        }
        if self.errors > 0 {
            missed.push("errors".to_owned());
        }
        missed
    }
}

impl OverloadRecord {
    fn bucket_s(&self) -> f64 {
        self.bucket_ms.max(1) as f64 / 1000.0
    }

    /// The buckets of `[from_s, to_s)`.
    fn window(&self, from_s: f64, to_s: f64) -> &[OverloadBucket] {
        let b = self.bucket_s();
        let from = ((from_s / b).round().max(0.0) as usize).min(self.buckets.len());
        let to = ((to_s / b).round().max(0.0) as usize).clamp(from, self.buckets.len());
        &self.buckets[from..to]
    }

    /// Its verdict.
    pub fn verdict(&self) -> OverloadVerdict {
        let (at, end) = (self.surge_at_s, self.surge_at_s + self.surge_s);
        let surge = self.window(at, end);
        let goodput = surge.iter().map(|b| b.ok).sum::<u64>() as f64 / self.surge_s.max(1e-9);
        let rss_before = self.rss.iter().rfind(|(t, _)| *t < at).map_or(0, |s| s.1);
        let rss_peak = self
            .rss
            .iter()
            .filter(|(t, _)| *t >= at && *t <= end)
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
        OverloadVerdict {
            goodput,
            goodput_ratio: goodput / self.knee.max(1e-9),
            shed_p99_ms: self.exact.shed_p99_us.map(|us| us / 1000.0),
            shed: surge.iter().map(|b| b.shed).sum(),
            rss_before,
            rss_peak,
            rss_ratio: if rss_before > 0 {
                rss_peak as f64 / rss_before as f64
            } else {
                0.0
            },
            p99_before_ms: self.exact.p99_before_us / 1000.0,
            back_after_s: self.exact.back_after_s,
            errors: self.buckets.iter().map(|b| b.errors).sum::<u64>() + self.unfinished,
            unsent: self.buckets.iter().map(|b| b.unsent).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(ok: u64, shed: u64, ok_p99_us: f64, shed_max_us: f64) -> OverloadBucket {
        OverloadBucket {
            ok,
            shed,
            errors: 0,
            unsent: 0,
            ok_p99_us,
            shed_max_us,
        }
    }

    #[test]
    fn the_verdict_reads_goodput_sheds_memory_and_the_way_back() {
        // 10 buckets a second: 3 s at the base, 2 s of surge, 3 s after.
        let mut buckets = vec![bucket(50, 0, 2_000.0, 0.0); 30];
        buckets.extend(vec![bucket(160, 40, 30_000.0, 4_000.0); 20]);
        buckets.extend(vec![bucket(50, 5, 50_000.0, 1_000.0); 4]);
        buckets.extend(vec![bucket(50, 0, 3_000.0, 0.0); 26]);
        let record = OverloadRecord {
            variant: "v".into(),
            knee: 2_000.0,
            base_rate: 1_000.0,
            surge_rate: 4_000.0,
            surge_at_s: 3.0,
            surge_s: 2.0,
            bucket_ms: 100,
            buckets,
            rss: vec![(2.9, 100), (3.5, 120), (4.5, 140), (6.0, 400)],
            unfinished: 0,
            send_lag_p99_us: 100.0,
            audit: None,
            exact: OverloadExact {
                p99_before_us: 2_000.0,
                shed_p99_us: Some(4_000.0),
                back_after_s: Some(0.4),
            },
            peak_connections: None,
            storage: None,
        };
        let v = record.verdict();
        assert_eq!(v.goodput, 1_600.0);
        assert!((v.goodput_ratio - 0.8).abs() < 1e-9);
        assert_eq!(v.shed_p99_ms, Some(4.0));
        assert!(
            (v.rss_ratio - 1.4).abs() < 1e-9,
            "the peak in the surge only"
        );
        // Read off every answer (`exact`), not the buckets.
        assert_eq!(v.p99_before_ms, 2.0);
        assert_eq!(v.back_after_s, Some(0.4));
        assert_eq!(v.shed, 20 * 40);
        assert_eq!(v.errors, 0);
        assert!(v.missed().is_empty(), "{:?}", v.missed());
        let slow = OverloadVerdict {
            goodput_ratio: 0.5,
            shed_p99_ms: Some(11.0),
            back_after_s: None,
            ..v
        };
        assert_eq!(
            slow.missed(),
            ["goodput 0.50", "slow refusals", "not back in the run"]
        );
    }
}
