//! The generator's floor alone, at one rate, for profiling the generator
//! (`perf record ./target/release/examples/floor 24000`): the harness's
//! echo server and open-loop generator in this process, as in `bench
//! compare`'s floor, with the process's CPU per request and the loopback's
//! TCP segments per request (from /proc/net/snmp).
//!
//! `cargo run --release -p bench --example floor -- [RATE] [SECONDS]
//! [IN_FLIGHT] [wrk]` (IN_FLIGHT: the most requests in flight, so
//! connections, 32 by default like `bench compare`'s ceiling and wrk's
//! `-c32`; `wrk` last: then wrk, when installed, against the same echo
//! server for as long, for comparison).

use std::time::Duration;

use anyhow::Context;
use bench::generator::load::Plan;
use bench::record::Outcome;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args
        .next()
        .map(|r| r.parse())
        .transpose()
        .context("RATE: requests per second")?
        .unwrap_or(24_000.0);
    let secs: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("SECONDS: recorded duration")?
        .unwrap_or(5);
    let mut rest: Vec<String> = args.collect();
    let wrk = rest.last().is_some_and(|a| a == "wrk");
    if wrk {
        rest.pop();
    }
    let in_flight: usize = rest
        .first()
        .map(|s| s.parse())
        .transpose()
        .context("IN_FLIGHT: the most requests in flight")?
        .unwrap_or(bench::generator::wrk::CONNECTIONS);
    let (base, _echo) = bench::generator::echo::start()?;
    let echo_url = format!("{base}/echo");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let http = bench::generator::client::Client::new(Duration::from_secs(5));
    let plan = Plan {
        rate,
        duration: Duration::from_secs(secs),
        warmup: Duration::from_secs(1),
        max_in_flight: in_flight,
        drain: Duration::from_secs(3),
        timeline: None,
        surge: None,
    };
    let (cpu0, segs0, threads0) = (
        process_cpu_seconds()?,
        tcp_out_segments()?,
        bench::generator::echo::cpu_by_thread_name().unwrap_or_default(),
    );
    let stats = bench::generator::load::run(client_rt.handle(), plan, move |_| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            match http.request(&base, false, "/echo", None).await {
                Some((200, _)) => Outcome::Ok,
                _ => Outcome::Error,
            }
        }
    });
    let (cpu, segs) = (process_cpu_seconds()? - cpu0, tcp_out_segments()? - segs0);
    let made = plan.total().max(1) as f64;
    println!(
        "{rate}/s for {secs} s, at most {in_flight} in flight: achieved {:.0}/s, saturated: {}, p50 {} µs, p99 {} µs; CPU {:.1} µs and {:.2} TCP segments per request",
        stats.achieved_rate,
        stats.saturated,
        stats.latency.value_at_quantile(0.5) / 1000,
        stats.latency.value_at_quantile(0.99) / 1000,
        cpu * 1e6 / made,
        segs as f64 / made,
    );
    let threads = bench::generator::echo::cpu_by_thread_name().unwrap_or_default();
    let by_thread: Vec<String> = threads
        .iter()
        .map(|(name, ns)| {
            let before = threads0
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| *b);
            format!("{name} {:.1}", (ns - before) as f64 / 1e3 / made)
        })
        .collect();
    println!("  µs per request by thread: {}", by_thread.join(", "));
    if wrk {
        let (cpu0, segs0, children0) = (
            process_cpu_seconds()?,
            tcp_out_segments()?,
            children_cpu_seconds()?,
        );
        let wrk = bench::generator::wrk::run(&echo_url, secs as f64)
            .context("wrk is not installed or its output did not parse")?;
        let (cpu, segs, wrk_cpu) = (
            process_cpu_seconds()? - cpu0,
            tcp_out_segments()? - segs0,
            children_cpu_seconds()? - children0,
        );
        let made = (wrk.requests_per_s * secs as f64).max(1.0);
        println!(
            "{}: {:.0}/s, p50 {:?} µs; CPU {:.1} µs (wrk {:.1}, the echo server {:.1}) and {:.2} TCP segments per request",
            wrk.command,
            wrk.requests_per_s,
            wrk.p50_us,
            (cpu + wrk_cpu) * 1e6 / made,
            wrk_cpu * 1e6 / made,
            cpu * 1e6 / made,
            segs as f64 / made
        );
    }
    Ok(())
}

/// User and system CPU of this process so far, in seconds.
fn process_cpu_seconds() -> anyhow::Result<f64> {
    // utime and stime.
    stat_seconds(11, 12)
}

/// User and system CPU of this process's waited-for children (wrk), in
/// seconds.
fn children_cpu_seconds() -> anyhow::Result<f64> {
    // cutime and cstime.
    stat_seconds(13, 14)
}

/// The sum of two clock-tick fields (1/100 s) of /proc/self/stat, counted
/// after the command name, in seconds.
fn stat_seconds(a: usize, b: usize) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .context("stat")?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("stat field")?.parse::<f64>()?)
    };
    Ok((ticks(a)? + ticks(b)?) / 100.0)
}

/// The host's TCP segments sent so far (both ends of a loopback connection
/// count theirs).
fn tcp_out_segments() -> anyhow::Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().context("Tcp header")?,
        tcp.next().context("Tcp values")?,
    );
    let index = names
        .split_whitespace()
        .position(|n| n == "OutSegs")
        .context("OutSegs")?;
    Ok(values
        .split_whitespace()
        .nth(index)
        .context("OutSegs value")?
        .parse()?)
}
