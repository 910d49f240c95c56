//! A soak: one variant, durable, at half its durable knee for a long
//! while, sampled as it goes.

use serde::{Deserialize, Serialize};

/// One variant's soak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakRecord {
    /// The variant.
    pub variant: String,
    /// Transfers per second (half its highest sustained durable step).
    pub rate: f64,
    /// One per sample window, in order (the audit after the last one
    /// passed, or the run failed).
    pub samples: Vec<SoakSample>,
    /// How the store was filled past its page caches before the first
    /// window; not recorded before 2026-11-29 (those soaks began on an
    /// empty store, and their early RSS had caches still filling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<SoakFill>,
}

/// The soak's first stretch, unsampled: transfers at the variant's durable
/// knee until its store's files hold at least its page caches' bound (each
/// database caches up to `store::kv::CACHE_BYTES` of its pages), so that
/// the RSS the soak compares is the steady state's, not caches filling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakFill {
    /// Transfers per second while filling.
    pub rate: f64,
    /// How long it took (or the cap, when `reached` is false).
    pub seconds: f64,
    /// The store's files at its end.
    pub store_bytes: u64,
    /// The databases' page caches together: their number times the bound.
    pub cache_bytes: u64,
    /// Whether the store reached `cache_bytes` within the cap.
    pub reached: bool,
}

/// One sample window of a soak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakSample {
    /// Seconds since the soak began, at the window's end.
    pub t_s: f64,
    /// The variant's processes' resident memory then.
    pub rss_bytes: u64,
    /// Its store's files then.
    pub store_bytes: u64,
    /// The window's latency (open loop, from each request's scheduled time).
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// Answers per second in the window.
    pub achieved_rate: f64,
    /// Answers that were neither a success nor a correct refusal.
    pub errors: u64,
    /// Those errors by outcome (`shed_429`, `unavailable_503`, …); not
    /// recorded before 2026-11-29.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_kinds: Vec<(String, u64)>,
}

/// Where a soak stands against issue 18's targets: the first and last
/// tenth of its samples (a minute each of ten).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoakVerdict {
    /// RSS at the end of the first tenth.
    pub rss_early: u64,
    /// RSS at the end.
    pub rss_late: u64,
    /// The median of the windows' p99 in the first tenth.
    pub p99_early: f64,
    /// The same in the last tenth.
    pub p99_late: f64,
    /// RSS grew by at most 10 %.
    pub rss_flat: bool,
    /// The late p99 is at most 1.5x the early one.
    pub p99_flat: bool,
}

impl SoakRecord {
    /// Its verdict, once it has samples.
    pub fn verdict(&self) -> Option<SoakVerdict> {
        let n = self.samples.len();
        if n == 0 {
            return None;
        }
        let tenth = (n / 10).max(1);
        let median = |window: &[SoakSample]| {
            let mut p99: Vec<f64> = window.iter().map(|s| s.p99_us).collect();
            p99.sort_by(f64::total_cmp);
            p99[p99.len() / 2]
        };
        let (early, late) = (&self.samples[..tenth], &self.samples[n - tenth..]);
        let rss_early = early.last().map_or(0, |s| s.rss_bytes);
        let rss_late = self.samples[n - 1].rss_bytes;
        let (p99_early, p99_late) = (median(early), median(late));
        Some(SoakVerdict {
            rss_early,
            rss_late,
            p99_early,
            p99_late,
            rss_flat: rss_late as f64 <= rss_early as f64 * 1.10,
            p99_flat: p99_late <= p99_early * 1.5,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, rss_mib: u64, p99: f64) -> SoakSample {
        SoakSample {
            t_s: t,
            rss_bytes: rss_mib << 20,
            store_bytes: 0,
            p50_us: p99 / 4.0,
            p99_us: p99,
            achieved_rate: 100.0,
            errors: 0,
            error_kinds: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_compares_the_first_tenth_with_the_last() {
        let flat = SoakRecord {
            variant: "v".into(),
            rate: 100.0,
            fill: None,
            samples: (0u32..20)
                .map(|i| sample(f64::from(i), 100 + u64::from(i % 2), 1000.0))
                .collect(),
        };
        let v = flat.verdict().expect("samples");
        assert!(v.rss_flat && v.p99_flat, "{v:?}");
        assert_eq!(v.rss_early, 101 << 20, "the end of the first tenth");

        let growing = SoakRecord {
            samples: (0u32..20)
                .map(|i| {
                    sample(
                        f64::from(i),
                        100 + 5 * u64::from(i),
                        1000.0 + 100.0 * f64::from(i),
                    )
                })
                .collect(),
            ..flat
        };
        let v = growing.verdict().expect("samples");
        assert!(!v.rss_flat && !v.p99_flat, "{v:?}");
    }
}
