//! The fairness ledger of REPORT.md: every difference between the variants
//! that the numbers depend on, why it exists, the switch that turns it,
//! and its measured effect in this run (from the cost part, which runs
//! each switch's other position under the same transfer load).

use std::fmt::Write as _;

use crate::output::mib;
use crate::record::{Cost, FINE_PATH, FeatureCost, Raw, TOKIO_DEFAULT};

/// One row: what differs, why, its switch, and what it did in this run.
struct Row {
    what: String,
    why: &'static str,
    switch: &'static str,
    effect: String,
}

fn feature<'a>(cost: Option<&'a Cost>, variant: &str, config: &str) -> Option<&'a FeatureCost> {
    cost?
        .features
        .iter()
        .find(|f| f.variant == variant && f.config == config)
}

/// "p50 A → B µs (r×), CPU A → B µs per transfer (r×)" from the baseline
/// to the switch's other position.
fn change(base: Option<&FeatureCost>, other: Option<&FeatureCost>, other_name: &str) -> String {
    let (Some(base), Some(other)) = (base, other) else {
        return format!("{other_name}: not measured in this run");
    };
    let cpu = match (base.cpu_us_per_request, other.cpu_us_per_request) {
        (Some(b), Some(o)) => format!(
            ", CPU {b:.0} → {o:.0} µs per transfer ({:.2}x)",
            o / b.max(1e-9)
        ),
        _ => String::new(),
    };
    format!(
        "{other_name}: p50 {:.0} → {:.0} µs ({:.2}x), p99 {:.0} → {:.0} µs{cpu}, at {:.0} transfers/s",
        base.p50_us,
        other.p50_us,
        other.p50_us / base.p50_us.max(1e-9),
        base.p99_us,
        other.p99_us,
        base.rate
    )
}

/// Writes the ledger section.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let cost = raw.cost.as_ref();
    let base = feature(cost, "microservices", "baseline");
    let policy = raw.env.runtimes.as_ref().map_or(
        "not recorded (a run from before 2026-11-28: tokio's default in every process)",
        |r| r.policy.as_str(),
    );
    let timed = raw.runs.iter().any(|r| r.breakdown.is_some());
    let mut rows = vec![
        Row {
            what: "Transfer decomposition: the microservices' transfers service makes one `ApplyTransfer` call to the accounts service per transfer (payee check, debit and credit applied together under one lock, committed together); the microlith sends each step to the actor of its account (up to two of its eight account shards), in process".to_owned(),
            why: "One accounts process holds every account, so a latency-minded team makes one round trip, not three. The microlith's accounts are sharded actors; its steps are in-process calls",
            switch: "`microservices --transfer-path fine` (`MICROSERVICES_TRANSFER_PATH`): one call per step (the payee check until cached, the debit, the credit)",
            effect: change(base, feature(cost, "microservices", FINE_PATH), "fine"),
        },
        Row {
            what: "Runtime sizing".to_owned(),
            why: policy_why(),
            switch: "`bench … --runtimes tokio-default`; per process `--workers` (`MICROLITH_WORKERS`, `MICROSERVICES_WORKERS`)",
            effect: format!("{policy}. {}", change(base, feature(cost, "microservices", TOKIO_DEFAULT), "tokio-default")),
        },
        Row {
            what: "Payee cache: a transfer's payee check is answered from a cache of accounts seen to exist".to_owned(),
            why: "Accounts are never deleted, so the fact never goes stale; either fabric may cache it",
            switch: "none: the same code (`shared_domain::known::KnownAccounts`) in front of both variants' accounts",
            effect: "the same in both".to_owned(),
        },
        Row {
            what: "Bounded books: both variants drop a settled transfer's step records. The microlith tells its account actors once the journal has the resolution; the microservices' transfers service reports settled transfers to accounts in batches (`Settle`), and accounts keeps a tombstone per settled transfer for the call timeout plus the clock skew and refuses any step past the absolute deadline it carries".to_owned(),
            why: "In one process a FIFO mailbox rules out a stale copy of a step arriving after its transfer settled; a network does not, so the microservices need the fence (tombstones, deadlines) to forget safely",
            switch: "none: both bounded (`--max-clock-skew-ms` sets the tombstones' lifetime)",
            effect: "the fence's cost is in every microservices number (a lock per step, an absolute-deadline header on every internal gRPC call, a `Settle` call per batch of settled transfers)".to_owned(),
        },
        Row {
            what: "Audit and read model: the microservices' audit is served by a separate ledger process fed over HTTP/JSON in batches; the microlith's audit asks its actors and keeps no read model".to_owned(),
            why: "A read model in its own service is how the split is usually built; its lag is measured",
            switch: "none",
            effect: "the feed and the ledger process are in the microservices' CPU per transfer; the read model's lag is in the cost table (eventual consistency)".to_owned(),
        },
        Row {
            what: "The fabric's own features: the microservices propagate trace context on every hop, shed load per downstream, and run circuit breakers and retry budgets; mTLS and service tokens are off by default".to_owned(),
            why: "What a production deployment without a service mesh ships; each optional one is measured on",
            switch: "`--mtls`, `--service-tokens`, `MICROSERVICES_LOG_SPANS`",
            effect: "in the cost table (tracing, mTLS, tokens rows)".to_owned(),
        },
        Row {
            what: format!(
                "Page caches with durable storage: one redb database per process that keeps state, each caching at most {} of its pages (`store::kv::CACHE_BYTES`): the monolith and the microlith one each, the microservices three (accounts, transfers, chat)",
                mib(Some(CACHE_BYTES))
            ),
            why: "A database belongs to the process that writes it; the bound is the same per database, so a split into more stateful processes holds more cache",
            switch: "none (one constant for every database)",
            effect: page_caches(raw),
        },
        Row {
            what: "Everything else is the same code: the HTTP edge (`edge`), the business rules (`shared-domain`), the store (`store`), the same storage mode, machine and load".to_owned(),
            why: "One body of logic, two fabrics",
            switch: "–",
            effect: "–".to_owned(),
        },
    ];
    if raw.variants.iter().any(|v| v.name == "monolith") {
        // Before the last row ("everything else"): runs from before the
        // monolith had two variants.
        rows.insert(
            rows.len() - 1,
            if raw.env.shared_syncs {
                Row {
                    what: "The plain monolith against the microlith: each of its components is one lock over one book (accounts, journal, chat), where the microlith shards accounts and journal over eight actors each and gives every room its own actor; with durable storage every variant's commits go through the same store, where commits waiting for a sync share the next one, and a microlith actor also gathers a mailbox's worth of changes into one commit where a monolith component (like a microservice) commits each call's changes".to_owned(),
                    why: "A plain monolith has no mailboxes, so no natural batch and no shard boundary; the same in-process saga, payee cache, audit and edge as the microlith",
                    switch: "none (durable storage only: memory runs commit nothing in the monolith)",
                    effect: "in the durable curve and the fault runs; in memory runs the difference left is the actors themselves: mailboxes, supervision and sharding".to_owned(),
                }
            } else {
                Row {
                    what: "The plain monolith against the microlith: each of its components is one lock over one book (accounts, journal, chat), where the microlith shards accounts and journal over eight actors each and gives every room its own actor; with durable storage each monolith component commits (and syncs) every change on its own, as each microservice does, where a microlith actor commits a mailbox's worth of changes in one commit".to_owned(),
                    why: "A plain monolith has no mailboxes, so no natural batch and no shard boundary; the same in-process saga, payee cache, audit and edge as the microlith",
                    switch: "none (durable storage only: memory runs commit nothing in the monolith; issue 18 brings group commit to the shared store for every variant)",
                    effect: "in the monolith's durable numbers (the fault runs); in memory runs the difference left is the actors themselves: mailboxes, supervision and sharding".to_owned(),
                }
            },
        );
    }
    if raw.env.room_hubs {
        // Before the last row ("everything else"): runs from before the
        // gateway's room hubs had a stream per session, undisclosed.
        rows.insert(
            rows.len() - 1,
            Row {
                what: "Chat fan-out: the microservices' gateway follows each room with one stream from the chat service and hands each post to every WebSocket session of the room in its own process; the microlith's room actor sends each post to the actor of every session".to_owned(),
                why: "A gateway in front of a chat service multiplexes rooms rather than open a stream per reader; both send a post across their boundary (gRPC, a mailbox) once per room and copy it to each reader inside the process that holds the sockets",
                switch: "`microservices --room-streams per-subscriber` (`MICROSERVICES_ROOM_STREAMS`): one stream from the chat service per session",
                effect: "in the slow-client part (a hundred WebSocket readers of one room) and the fan-out; not run per switch position".to_owned(),
            },
        );
    }
    if timed {
        // Before the last row ("everything else"): runs from before the
        // breakdown had no timing on.
        rows.insert(
            rows.len() - 1,
            Row {
                what: "Timing of sampled requests (\"Where the time goes\"): both variants run with `--server-timing`; about 512 requests per run carry a sampled `traceparent` and are answered with their spans. With it on, the microlith reads the clock once per handled actor message, the microservices' servers look for the header on every call".to_owned(),
                why: "The breakdown needs each process's own account of a request; the unsampled requests pay a header or task-local lookup per hop and (microlith) a clock read per message",
                switch: "`--server-timing` (`MICROLITH_SERVER_TIMING`, `MICROSERVICES_SERVER_TIMING`); always on in the harness",
                effect: "in every number of both variants; the breakdown's sum/p50 column shows whether the sampled requests were typical".to_owned(),
            },
        );
    }
    let _ = writeln!(md, "\n## Fairness ledger\n");
    let _ = writeln!(
        md,
        "Every difference between the variants that the numbers above depend on, why it exists, how to turn it, and \
         what it did in this run. Each switch's other position ran under the same transfer load as the baselines \
         (the cost part, {:.0} transfers/s, a fresh instance each).\n",
        raw.profile.cost_rate
    );
    let _ = writeln!(
        md,
        "| difference | why | switch | measured effect in this run |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.what, row.why, row.switch, row.effect
        );
    }
}

/// One database's page cache, bytes.
const CACHE_BYTES: u64 = store::kv::CACHE_BYTES as u64;

/// The page caches each soaked variant filled in this run, else the bound.
fn page_caches(raw: &Raw) -> String {
    let filled: Vec<String> = raw
        .soak
        .iter()
        .filter_map(|soak| {
            let fill = soak.fill.as_ref()?;
            Some(format!("{} {}", soak.variant, mib(Some(fill.cache_bytes))))
        })
        .collect();
    if filled.is_empty() {
        format!(
            "in the RSS of durable runs only (memory runs open no database): up to {} more for the monolith and the microlith, {} for the microservices, once their stores outgrow the caches",
            mib(Some(CACHE_BYTES)),
            mib(Some(3 * CACHE_BYTES))
        )
    } else {
        format!(
            "in the RSS of durable runs only (memory runs open no database); the caches the soak filled in this run: {}",
            filled.join(", ")
        )
    }
}

fn policy_why() -> &'static str {
    "Both variants get the same cores; tokio's default starts one worker per core in each of the microservices' \
     processes, so on few cores idle workers are woken and steal on every hop"
}
