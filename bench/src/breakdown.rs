//! Where a request's time goes: the critical path of sampled requests,
//! from the `Server-Timing` tree both variants answer (`edge::timing`),
//! and each variant against its own floor (the hop budget).
//!
//! In every fixed-rate run, about [`STRIDE`] of the recorded requests
//! (evenly spread) carry a sampled `traceparent`; the generator times it
//! from sending to the whole answer and keeps the answer's spans. Each
//! sampled request's time splits, with no clock shared between processes,
//! into:
//! - **outside the edge**: its time minus the edge's span: the generator,
//!   the kernel and loopback, HTTP/1 parsing and writing around the router;
//! - **edge**: the edge's span minus the hops it made (routing, JSON, the
//!   saga's own steps, admission);
//! - **hops**: each hop minus what its callee reports of itself: for a
//!   network call (`call.*` minus `serve.*`) the client stack, HTTP/2,
//!   encoding, the kernel and the callee's stack before its timing layer;
//!   for an actor call (`ask.*` minus `handle.*`) the mailbox, wake-ups and
//!   a batch's commit the reply waited for;
//! - **handlers**: the callees' own time minus the hops they made in turn
//!   (the domain rules, the book's lock, the store).
//!
//! The parts are averaged over the sampled requests whose time lies
//! between the 40th and 60th percentile of the sample (the band around the
//! median), so they describe a typical request; the generator's send lag
//! (scheduled → sent, the run's median) is added, and the sum is checked
//! against the run's measured p50 (the report flags a gap over 15 %).
//!
//! The hop budget is each variant's floor: what its typical request would
//! take if its own code (the edge's and the handlers' time) were free: the
//! round trip into the edge as the same requests measured it (outside the
//! edge and the send lag, at the scenario's own rate) plus the hops a
//! request makes times the median cost of one hop measured in the same run
//! and placement. (The echo endpoint is not the floor here: it runs at one
//! rate only, and at a lower rate every wake-up costs more.)

use std::fmt::Write as _;
use std::time::Duration;

use edge::timing::Span;
use serde::{Deserialize, Serialize};

use crate::report::Raw;
use crate::scenarios::{RunRecord, Scenario};

/// About how many requests a run samples: one in
/// `max(1, requests / STRIDE)`, warm-up excluded.
pub const STRIDE: u64 = 512;

/// How far apart the parts' sum and the measured p50 may be before the
/// report flags it.
pub const TOLERANCE: f64 = 0.15;

/// One sampled request: its time from sending to the whole answer, and
/// what the system reported of it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Sent → whole answer read.
    pub latency: Duration,
    /// The `Server-Timing` tree, root first.
    pub spans: Vec<Span>,
}

/// A run's time breakdown (stored in `raw.json` with its run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Sampled requests answered (correctly) with their timing.
    pub samples: usize,
    /// Of them, those in the band around the median whose parts are
    /// averaged.
    pub band: usize,
    /// Generator → edge and back, outside the router, µs.
    pub outside_us: f64,
    /// The edge's own time, µs.
    pub edge_us: f64,
    /// Hops, net of their callees' own time, µs.
    pub hops_us: f64,
    /// Handlers behind the edge, net of the hops they made, µs.
    pub handlers_us: f64,
    /// Hops per request on the critical path (the band's mean).
    pub hops: f64,
    /// One hop's cost, the median over every sampled hop of the run, µs.
    pub hop_us: f64,
}

impl Breakdown {
    /// Sums the parts (without the generator's send lag).
    pub fn total_us(&self) -> f64 {
        self.outside_us + self.edge_us + self.hops_us + self.handlers_us
    }
}

/// The parts of one sampled request, µs, and its hops' own costs.
struct Parts {
    latency_us: f64,
    outside: f64,
    edge: f64,
    hops: f64,
    handlers: f64,
    hop_costs: Vec<f64>,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn is_hop(name: &str) -> bool {
    name.starts_with("call.") || name.starts_with("ask.")
}

/// Splits one request; `None` when its tree is not rooted at the edge.
fn parts(sample: &Sample) -> Option<Parts> {
    let spans = &sample.spans;
    let root = spans.first().filter(|s| s.depth == 0 && s.name == "edge")?;
    let latency_us = us(sample.latency);
    let mut p = Parts {
        latency_us,
        outside: (latency_us - us(root.duration)).max(0.0),
        edge: 0.0,
        hops: 0.0,
        handlers: 0.0,
        hop_costs: Vec::new(),
    };
    for (i, span) in spans.iter().enumerate() {
        let children: f64 = spans[i + 1..]
            .iter()
            .take_while(|s| s.depth > span.depth)
            .filter(|s| s.depth == span.depth + 1)
            .map(|s| us(s.duration))
            .sum();
        let own = (us(span.duration) - children).max(0.0);
        if i == 0 {
            p.edge = own;
        } else if is_hop(&span.name) {
            p.hops += own;
            p.hop_costs.push(own);
        } else {
            p.handlers += own;
        }
    }
    Some(p)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// The breakdown of a run's samples; `None` with no sample answered with
/// its timing (timing off, or a target that does not time).
pub fn of(samples: &[Sample]) -> Option<Breakdown> {
    let mut all: Vec<Parts> = samples.iter().filter_map(parts).collect();
    if all.is_empty() {
        return None;
    }
    all.sort_by(|a, b| a.latency_us.total_cmp(&b.latency_us));
    let n = all.len();
    let (lo, hi) = (n * 2 / 5, (n * 3 / 5).max(n * 2 / 5 + 1).min(n));
    let band = &all[lo..hi];
    let mean = |f: &dyn Fn(&Parts) -> f64| band.iter().map(f).sum::<f64>() / band.len() as f64;
    Some(Breakdown {
        samples: n,
        band: band.len(),
        outside_us: mean(&|p| p.outside),
        edge_us: mean(&|p| p.edge),
        hops_us: mean(&|p| p.hops),
        handlers_us: mean(&|p| p.handlers),
        hops: mean(&|p| p.hop_costs.len() as f64),
        hop_us: median(
            all.iter()
                .flat_map(|p| p.hop_costs.iter().copied())
                .collect(),
        )
        .unwrap_or(0.0),
    })
}

/// Whether request `i` of a run of `total` is one of its samples.
pub fn sampled(i: u64, total: u64) -> bool {
    i.is_multiple_of((total / STRIDE).max(1))
}

/// The `traceparent` of sample `i`: sampled, its trace id naming the run's
/// request (never zero).
pub fn traceparent(i: u64) -> String {
    format!(
        "00-{:032x}-{:016x}-01",
        u128::from(i) + 1,
        0x6265_6e63_6800_0001u64
    )
}

/// One variant's breakdown of one scenario over the run's repeats (each
/// part the median of the repeats'), with the run's p50 and send lag.
#[derive(Debug, Clone)]
pub struct Row {
    /// The variant.
    pub variant: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Parts (medians over the repeats).
    pub parts: Breakdown,
    /// The generator's send lag, median over the repeats, µs.
    pub send_lag_us: f64,
    /// The measured p50, median over the repeats, µs.
    pub p50_us: f64,
    /// The hop budget: the round trip into the edge (outside and lag)
    /// plus hops x one hop's cost, µs.
    pub budget_us: f64,
}

impl Row {
    /// The parts' sum with the send lag, over the measured p50.
    pub fn sum_over_p50(&self) -> f64 {
        (self.parts.total_us() + self.send_lag_us) / self.p50_us.max(1e-9)
    }
}

fn median_of(runs: &[&RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter_map(|r| f(r)).collect())
}

/// Every (scenario, variant) of the fixed-rate runs with a breakdown, in
/// report order.
pub fn rows(raw: &Raw) -> Vec<Row> {
    let mut rows = Vec::new();
    for (scenario, _) in raw.profile.scenarios() {
        for variant in raw.variants.iter().map(|v| v.name.as_str()) {
            let runs: Vec<&RunRecord> = raw
                .runs
                .iter()
                .filter(|r| {
                    r.variant == variant
                        && r.scenario == scenario
                        && !r.curve
                        && r.breakdown.is_some()
                })
                .collect();
            let part = |f: fn(&Breakdown) -> f64| median_of(&runs, |r| r.breakdown.as_ref().map(f));
            let (
                Some(outside),
                Some(edge),
                Some(hops_us),
                Some(handlers),
                Some(hops),
                Some(hop_us),
                Some(p50),
                Some(lag),
            ) = (
                part(|b| b.outside_us),
                part(|b| b.edge_us),
                part(|b| b.hops_us),
                part(|b| b.handlers_us),
                part(|b| b.hops),
                part(|b| b.hop_us),
                median_of(&runs, |r| Some(r.p50_us)),
                median_of(&runs, |r| Some(r.send_lag_p50_us)),
            )
            else {
                continue;
            };
            let samples = runs
                .iter()
                .filter_map(|r| r.breakdown.as_ref())
                .map(|b| b.samples)
                .sum();
            let band = runs
                .iter()
                .filter_map(|r| r.breakdown.as_ref())
                .map(|b| b.band)
                .sum();
            rows.push(Row {
                variant: variant.to_owned(),
                scenario,
                parts: Breakdown {
                    samples,
                    band,
                    outside_us: outside,
                    edge_us: edge,
                    hops_us,
                    handlers_us: handlers,
                    hops,
                    hop_us,
                },
                send_lag_us: lag,
                p50_us: p50,
                budget_us: outside + lag + hops * hop_us,
            });
        }
    }
    rows
}

/// The summary's line: a transfer's parts in each variant, and each
/// against its hop budget (nothing without a breakdown of transfers).
pub fn summary(raw: &Raw) -> Option<String> {
    let rows: Vec<Row> = rows(raw)
        .into_iter()
        .filter(|r| r.scenario == Scenario::Transfer)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let each: Vec<String> = rows
        .iter()
        .map(|r| {
            let b = &r.parts;
            format!(
                "{} outside the edge {:.0}, edge {:.0}, hops {:.0} ({:.1} of {:.0} µs each), handlers {:.0} µs; p50 {:.2}x its hop budget of {:.0} µs",
                r.variant,
                b.outside_us,
                b.edge_us,
                b.hops_us,
                b.hops,
                b.hop_us,
                b.handlers_us,
                r.p50_us / r.budget_us.max(1e-9),
                r.budget_us
            )
        })
        .collect();
    Some(format!(
        "Where a typical transfer's time goes (sampled requests around the median): {}.",
        each.join("; ")
    ))
}

/// The "Where the time goes" section of REPORT.md (nothing when no run
/// has a breakdown).
pub fn render(raw: &Raw, md: &mut String) {
    let rows = rows(raw);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Where the time goes\n");
    let _ = writeln!(
        md,
        "About {STRIDE} requests of each fixed-rate run, evenly spread, asked for their timing (a sampled `traceparent`; both variants run with `--server-timing`) \
         and was answered with the tree of its hops in `Server-Timing`, each duration read in the process it describes. Parts are the means over the sampled \
         requests between the 40th and 60th percentile of the sample, the median over the repeats; chart `time-breakdown`. \
         **outside**: the generator, kernel and HTTP/1 around the edge's router; **edge**: the edge's own time; **hops**: each call or actor call minus what its callee \
         reports of itself (network stack, HTTP/2 and protobuf, or mailbox and wake-ups); **handlers**: the callees' own time (rules, locks, store); \
         **lag**: the generator's median send lag. The sum is checked against the run's p50 (flagged past {:.0} %).\n",
        TOLERANCE * 100.0
    );
    let _ = writeln!(
        md,
        "| scenario | variant | outside µs | edge µs | hops µs | handlers µs | lag µs | sum µs | p50 µs | sum/p50 | samples |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let b = &r.parts;
        let ratio = r.sum_over_p50();
        let flag = if (ratio - 1.0).abs() > TOLERANCE {
            " ⚠"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {ratio:.2}{flag} | {} |",
            r.scenario.name(),
            r.variant,
            b.outside_us,
            b.edge_us,
            b.hops_us,
            b.handlers_us,
            r.send_lag_us,
            b.total_us() + r.send_lag_us,
            r.p50_us,
            b.samples
        );
    }
    let _ = writeln!(md, "\n### The hop budget\n");
    let _ = writeln!(
        md,
        "Each variant against its own floor: what its typical request would take if its own code (edge and handlers) were free: the round trip \
         into the edge as the same requests measured it (outside and lag above, at the scenario's rate) plus the hops on its critical path times \
         one hop's median cost in this run and placement. p50/budget is what the variant's own code adds on top.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | variant | round trip to the edge µs | hops | one hop µs | budget µs | p50 µs | p50/budget | edge + handlers µs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2}x | {:.0} |",
            r.scenario.name(),
            r.variant,
            r.parts.outside_us + r.send_lag_us,
            r.parts.hops,
            r.parts.hop_us,
            r.budget_us,
            r.p50_us,
            r.p50_us / r.budget_us.max(1e-9),
            r.parts.edge_us + r.parts.handlers_us,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(depth: u8, name: &str, us: u64) -> Span {
        Span {
            depth,
            name: name.into(),
            duration: Duration::from_micros(us),
        }
    }

    /// A microservices-shaped transfer: gateway → transfers → accounts.
    fn networked(latency_us: u64) -> Sample {
        Sample {
            latency: Duration::from_micros(latency_us),
            spans: vec![
                span(0, "edge", 300),
                span(1, "call.transfers", 280),
                span(2, "serve.bank.v1.Transfers.Transfer", 200),
                span(3, "call.accounts", 120),
                span(4, "serve.bank.v1.Accounts.ApplyTransfer", 40),
            ],
        }
    }

    #[test]
    fn a_request_splits_into_parts_that_add_up_to_its_time() {
        let p = parts(&networked(400)).expect("rooted at the edge");
        assert_eq!(p.outside, 100.0);
        assert_eq!(p.edge, 20.0);
        // (280 - 200) + (120 - 40)
        assert_eq!(p.hops, 160.0);
        assert_eq!(p.hop_costs, [80.0, 80.0]);
        // (200 - 120) + 40
        assert_eq!(p.handlers, 120.0);
        assert_eq!(p.outside + p.edge + p.hops + p.handlers, 400.0);
        // An actor-shaped one: asks with their handlers.
        let actors = Sample {
            latency: Duration::from_micros(100),
            spans: vec![
                span(0, "edge", 60),
                span(1, "ask.journal-0", 10),
                span(2, "handle.journal-0", 4),
                span(1, "ask.account-1", 6),
                span(2, "handle.account-1", 5),
            ],
        };
        let p = parts(&actors).expect("rooted");
        assert_eq!(
            (p.outside, p.edge, p.hops, p.handlers),
            (40.0, 44.0, 7.0, 9.0)
        );
        assert!(
            parts(&Sample {
                latency: Duration::from_micros(5),
                spans: vec![span(0, "serve.x", 1)]
            })
            .is_none(),
            "not the edge's tree"
        );
    }

    #[test]
    fn the_parts_are_the_band_around_the_median() {
        // Ten samples, 400..1300 µs: the band is the 5th and 6th (800, 900).
        let samples: Vec<Sample> = (1..=10).map(|k| networked(300 + 100 * k)).collect();
        let b = of(&samples).expect("breakdown");
        assert_eq!((b.samples, b.band), (10, 2));
        assert_eq!(b.outside_us, 550.0, "(500 + 600) / 2");
        assert_eq!(
            (b.edge_us, b.hops_us, b.handlers_us, b.hops, b.hop_us),
            (20.0, 160.0, 120.0, 2.0, 80.0)
        );
        assert_eq!(b.total_us(), 850.0, "the band's mean time");
        assert!(of(&[]).is_none());
        let one = of(&samples[..1]).expect("one sample is its own band");
        assert_eq!(one.band, 1);
    }

    #[test]
    fn about_one_in_stride_is_sampled_and_each_has_its_own_trace() {
        let total = STRIDE * 40;
        assert_eq!(
            (0..total).filter(|i| sampled(*i, total)).count() as u64,
            STRIDE
        );
        assert!(
            (0..10).all(|i| sampled(i, 10)),
            "a short run samples every request"
        );
        let (a, b) = (traceparent(0), traceparent(1));
        assert_ne!(a, b);
        assert!(edge::timing::traceparent(&a).is_some_and(|(_, _, sampled)| sampled));
    }
}
