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

use std::time::Duration;

use crate::analysis::median;
use crate::generator::requests::Sample;
use crate::record::{Breakdown, STRIDE};

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

#[cfg(test)]
mod tests {
    use super::*;
    use edge::timing::Span;

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
