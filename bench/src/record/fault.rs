//! A fault injected under load, and what it did to the clients.

use serde::{Deserialize, Serialize};

use super::{Audit, Bucket, Scenario};

fn transfer() -> Scenario {
    Scenario::Transfer
}

/// A fault injected under steady load, and what it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Variant.
    pub variant: String,
    /// The kind of fault (`crash`, `pause`, …), the same for both variants.
    #[serde(default)]
    pub kind: String,
    /// The load: transfers or posts.
    #[serde(default = "transfer")]
    pub scenario: Scenario,
    /// What was done.
    pub fault: String,
    /// Transfers per second during the run.
    pub rate: f64,
    /// Width of a timeline bucket, milliseconds.
    pub bucket_ms: u64,
    /// When the fault was injected, seconds from the start of the run.
    pub injected_at_s: f64,
    /// From the fault to the first failed answer, seconds (none: no
    /// client saw a failure).
    pub first_failure_s: Option<f64>,
    /// From the fault to the end of the last bucket with a failure or a
    /// latency over ten times the pre-fault norm, seconds (0: no visible
    /// impact).
    pub impact_s: f64,
    /// From the fault to when the part it hit was back: the restarted
    /// process answering its health check, or the fault lifted (a pause's
    /// SIGCONT), seconds; none where not measured (a panic's actors
    /// restart inside the process) or before 2026-11-29.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_s: Option<f64>,
    /// Answers that failed (429, 503, 202, errors) over the whole run.
    pub failed: u64,
    /// Answers that succeeded.
    pub ok: u64,
    /// The timeline.
    pub timeline: Vec<Bucket>,
    /// The audit after the run (money conserved, nothing pending).
    pub audit: Option<Audit>,
    /// Every answer by kind (`ok`, `unavailable_503`, `error`, ...), so a
    /// failure can be read as shed, refused for a breaker or broken; not
    /// recorded before 2026-11-27.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<(String, u64)>,
    /// Requests still unanswered when the drain ended.
    #[serde(default)]
    pub unfinished: u64,
}

impl FaultRecord {
    /// The failures by kind, e.g. `unavailable_503 500, error 17`
    /// (empty when none failed or the kinds were not recorded).
    pub fn failure_kinds(&self) -> String {
        let mut kinds: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(o, n)| *n > 0 && o != "ok" && o != "refused_409")
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        if self.unfinished > 0 && !self.outcomes.is_empty() {
            kinds.push(format!("unanswered {}", self.unfinished));
        }
        kinds.join(", ")
    }

    /// The timeline bucket the fault was injected in.
    pub fn fault_bucket(&self) -> usize {
        (self.injected_at_s * 1000.0 / self.bucket_ms.max(1) as f64) as usize
    }

    /// From the part being back to the end of the last bucket with a
    /// failed answer (or no answer at all) in the fault's stretch (0:
    /// failures had stopped by then); none when `back_s` is.
    pub fn failing_after_back_s(&self) -> Option<f64> {
        let back = self.back_s?;
        let end = self.stretch_end(|b| b.failed > 0 || b.ok + b.failed == 0);
        Some((end - back).max(0.0))
    }

    /// From the fault to the end of the hurt stretch it caused: the last
    /// bucket with a failed answer or a worst latency over ten times the
    /// pre-fault norm (the median of the worst latencies in the buckets
    /// before the fault) that comes before a full second of healthy
    /// buckets. A blip of the shared machine seconds later is not counted;
    /// 0 when the fault hurt no bucket.
    pub fn recovery_s(&self) -> f64 {
        let at = self.fault_bucket();
        let mut sorted: Vec<u64> = self
            .timeline
            .iter()
            .take(at)
            .skip(at / 2)
            .map(|b| b.max_latency_ns)
            .filter(|v| *v > 0)
            .collect();
        sorted.sort_unstable();
        let norm = sorted.get(sorted.len() / 2).copied().unwrap_or(1_000_000);
        self.stretch_end(|b| {
            b.failed > 0 || b.max_latency_ns > norm.saturating_mul(10) || b.ok + b.failed == 0
        })
    }

    /// From the fault to the end of the last `hurt` bucket that comes
    /// before a full second of buckets that are not, seconds (0: none).
    fn stretch_end(&self, hurt: impl Fn(&Bucket) -> bool) -> f64 {
        let at = self.fault_bucket();
        let healthy_second = (1000 / self.bucket_ms.max(1)).max(1) as usize;
        let (mut last_hurt, mut healthy) = (None, 0);
        for (i, b) in self.timeline.iter().enumerate().skip(at) {
            if hurt(b) {
                last_hurt = Some(i);
                healthy = 0;
            } else {
                healthy += 1;
                if healthy >= healthy_second {
                    break;
                }
            }
        }
        last_hurt.map_or(0.0, |i| {
            (i - at + 1) as f64 * self.bucket_ms as f64 / 1000.0
        })
    }
}
