//! The load-driven parts of a comparison against systems already
//! running: fixed-rate latency and fan-out (repeats interleaved across
//! the variants), the throughput–latency curve, the generator's own
//! ceiling, the cross-check against oha, and the audit after it all.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use shared_domain::workload::Workload;

mod curve;

use super::{Part, progress};
use crate::cpu::CpuMeter;
use crate::generator::Runtimes;
use crate::generator::client::Client;
use crate::generator::load::Plan;
use crate::part::latency::Target;
use crate::part::{cross_check, fanout, lag, latency};
use crate::record::{
    CrossCheckRecord, FanoutRecord, HopRecord, Profile, ReplicaRecord, RunRecord, Scenario,
    SoakFill, SoakRecord, SoakSample, VariantRecord, WrkRecord,
};
use crate::target::local::Variant;

/// What the load-driven parts recorded.
pub(super) struct Runs {
    /// Fixed-rate runs and curve steps, the floor's included.
    pub(super) runs: Vec<RunRecord>,
    /// Fan-out runs.
    pub(super) fanout: Vec<FanoutRecord>,
    /// wrk against the echo endpoint, when installed.
    pub(super) wrk: Option<WrkRecord>,
    /// The generator against oha.
    pub(super) cross_check: Option<CrossCheckRecord>,
    /// One hop alone, per protocol and repeat.
    pub(super) hops: Vec<HopRecord>,
    /// The overload part's runs.
    pub(super) overload: Vec<crate::record::OverloadRecord>,
    /// The slow-clients part's runs.
    pub(super) slow: Vec<crate::record::SlowRecord>,
}

/// One system under test and what the parts keep for it.
struct Subject<'a> {
    variant: &'a Variant,
    /// Its workload, continued from run to run (fresh ids each time).
    workload: Workload,
    /// The CPU of its processes (none for a deployment not started here).
    meter: Option<CpuMeter>,
    /// The ledger's metrics, for the read model's lag.
    ledger_metrics: Option<String>,
    lag_before: Option<lag::Sample>,
    record: VariantRecord,
}

impl Subject<'_> {
    /// Whether it is one of the microservices' placements besides split
    /// (`microservices@<preset>`), measured on transfers only.
    pub(super) fn placed(&self) -> bool {
        crate::budget::preset_of(&self.variant.name).is_some()
    }

    /// Where its runs go, and the workload they continue.
    fn target(&mut self) -> (Target<'_>, &mut Workload) {
        let target = Target {
            name: &self.variant.name,
            base: &self.variant.base,
            meter: self.meter.as_ref(),
        };
        (target, &mut self.workload)
    }
}

/// What every step needs: the profile, the runtimes, the client, the
/// echo endpoint (the floor) and the progress bar.
struct Session<'a> {
    profile: &'a Profile,
    runtimes: &'a Runtimes,
    http: Client,
    echo: String,
    bar: ProgressBar,
    lag_http: reqwest::Client,
    /// Where the disk probe keeps its file, when the systems are durable:
    /// every run against a system is watched by a [`crate::disk::Probe`].
    disk: Option<PathBuf>,
}

impl Session<'_> {
    /// One run of `scenario` at `plan` against `target`.
    fn run(
        &self,
        plan: Plan,
        target: Target<'_>,
        scenario: Scenario,
        repeat: u32,
        workload: &mut Workload,
    ) -> RunRecord {
        let probe = self
            .disk
            .as_deref()
            .filter(|_| scenario != Scenario::Floor)
            .and_then(|dir| {
                crate::disk::Probe::start(dir)
                    .inspect_err(|e| eprintln!("no disk probe in {}: {e}", dir.display()))
                    .ok()
            });
        let mut record = latency::run_one(
            self.runtimes.client.handle(),
            &self.http,
            plan,
            target,
            scenario,
            repeat,
            workload,
        );
        record.disk = probe.and_then(crate::disk::Probe::stop);
        record
    }

    fn floor(&self) -> Target<'_> {
        Target {
            name: "floor",
            base: &self.echo,
            meter: None,
        }
    }
}

/// Runs the load-driven `parts` against `systems` and audits them after;
/// with `disk` (durable systems), the disk probe's file goes there.
pub(super) fn measure(
    profile: &Profile,
    parts: &[Part],
    systems: &[Variant],
    oha: Option<&Path>,
    decoy: Option<Decoy<'_>>,
    runtimes: &Runtimes,
    disk: Option<&Path>,
) -> anyhow::Result<(Runs, Vec<VariantRecord>)> {
    let (echo, _echo_guard) = crate::generator::echo::start()?;
    let mut subjects = Vec::new();
    let lag_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for v in systems {
        subjects.push(subject(profile, v, runtimes, &lag_http)?);
    }
    // The overload part needs the knee: it steps the curve first.
    let overload_on = parts.contains(&Part::Overload) && profile.overload_s > 0.0;
    let slow_on = parts.contains(&Part::SlowClients) && profile.slow_clients_s > 0.0;
    let (latency_on, fanout_on, curve_on) = (
        parts.contains(&Part::Latency),
        parts.contains(&Part::Fanout),
        parts.contains(&Part::Curve) || overload_on,
    );
    let placed = subjects.iter().filter(|s| s.placed()).count() as u64;
    let n = systems.len() as u64 - placed;
    let per_repeat = if latency_on {
        profile.scenarios().len() as u64 * n + placed + 1
    } else {
        0
    } + if fanout_on { n } else { 0 };
    let stepped = if profile.placements_curve {
        n + placed
    } else {
        n
    };
    let runs_total = profile.repeats as u64 * per_repeat
        + if curve_on {
            profile.curve_rates.len() as u64 * (stepped + 1)
        } else {
            0
        }
        + if overload_on { n } else { 0 }
        + if slow_on {
            n * if decoy.is_some() { 3 } else { 2 }
        } else {
            0
        };
    let session = Session {
        profile,
        runtimes,
        http: Client::new(Duration::from_secs(10)),
        echo,
        bar: progress(runs_total, "runs"),
        lag_http,
        disk: disk.map(Path::to_path_buf),
    };
    let mut out = Runs {
        runs: Vec::new(),
        fanout: Vec::new(),
        wrk: None,
        cross_check: None,
        hops: Vec::new(),
        overload: Vec::new(),
        slow: Vec::new(),
    };
    for repeat in 0..profile.repeats {
        if latency_on {
            fixed_rates(&session, &mut subjects, repeat, &mut out.runs)?;
            out.hops.extend(hops(&session, &subjects, repeat));
        }
        if fanout_on {
            fanouts(&session, &subjects, repeat, &mut out.fanout)?;
        }
    }
    if curve_on {
        let floor = curve::curve(&session, &mut subjects, &mut out.runs)?;
        out.wrk = curve::ceiling(&session, floor, &mut out.runs)?;
    }
    if overload_on {
        out.overload = overloads(&session, &subjects, &out.runs);
    }
    if slow_on {
        out.slow = slow_clients(&session, &mut subjects, decoy)?;
    }
    if let Some(oha) = oha
        && latency_on
    {
        out.cross_check = Some(cross_check(&session, oha, &mut subjects)?);
    }
    session
        .bar
        .finish_with_message("load done; checking invariants");
    let started = Instant::now();
    for s in &mut subjects {
        audit(&session, s)?;
    }
    if started.elapsed() > Duration::from_secs(60) {
        bail!("invariant checks took over a minute");
    }
    Ok((out, subjects.into_iter().map(|s| s.record).collect()))
}

/// Each variant (not the placements) at twice its knee between stretches
/// at half of it; none for a variant whose curve sustained no step.
fn overloads(
    session: &Session<'_>,
    subjects: &[Subject<'_>],
    runs: &[RunRecord],
) -> Vec<crate::record::OverloadRecord> {
    let profile = session.profile;
    let mut out = Vec::new();
    for s in subjects.iter().filter(|s| !s.placed()) {
        let name = &s.variant.name;
        session.bar.inc(1);
        // A curve that never saturated did not find the knee: twice its
        // top step would measure the generator (the report says so).
        let Some((knee, false)) = crate::analysis::sustained(runs, name) else {
            continue;
        };
        if knee <= 0.0 {
            continue;
        }
        session
            .bar
            .set_message(format!("overload: {name} at {:.0}/s", knee * 2.0));
        let settle = Duration::from_secs_f64(profile.overload_settle_s);
        let shape = crate::part::overload::OverloadPlan {
            knee,
            before: settle,
            surge: Duration::from_secs_f64(profile.overload_s),
            after: settle,
        };
        out.push(crate::part::overload::run(
            session.runtimes.client.handle(),
            &s.variant.base,
            name,
            &s.workload,
            shape,
            s.variant.rss_reader(),
        ));
    }
    out
}

/// Where the slow-clients part can start its decoy: the monolith's
/// binary and the runtime budget the variants were given.
#[derive(Clone, Copy)]
pub(super) struct Decoy<'a> {
    pub(super) bin: &'a Path,
    pub(super) budget: &'a crate::budget::Budget,
}

/// A chat room made fresh at `base`, for the non-readers.
fn fresh_room(session: &Session<'_>, base: &str, name: &str) -> anyhow::Result<String> {
    let room = format!(
        "slow-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000_000)
    );
    let made = session
        .runtimes
        .client
        .handle()
        .block_on(session.http.request(
            base,
            true,
            "/v1/rooms",
            Some(format!(r#"{{"room":"{room}"}}"#).into()),
        ));
    anyhow::ensure!(
        made.as_ref().is_some_and(|(status, _)| *status == 201),
        "{name}: the slow clients' room was not made: {:?}",
        made.map(|(status, _)| status)
    );
    Ok(room)
}

/// Each variant (not the placements): the fixed-rate transfers alone;
/// then, when a decoy can be started, beside the same slow clients aimed
/// at a decoy (a monolith started for it, in memory, with a poster of its
/// own): what the slow clients cost the machine without touching the
/// measured edge; then beside slow and abandoned clients at its own edge.
fn slow_clients(
    session: &Session<'_>,
    subjects: &mut [Subject<'_>],
    decoy: Option<Decoy<'_>>,
) -> anyhow::Result<Vec<crate::record::SlowRecord>> {
    let profile = session.profile;
    let plan = Plan {
        duration: Duration::from_secs_f64(profile.slow_clients_s),
        ..Plan::fixed(profile, profile.transfer_rate)
    };
    let runtime = session.runtimes.client.handle();
    let mut out = Vec::new();
    for s in subjects.iter_mut().filter(|s| !s.placed()) {
        let name = s.variant.name.clone();
        let base = s.variant.base.clone();
        let room = fresh_room(session, &base, &name)?;
        let sample = |v: &Variant| {
            crate::part::rss::Sampler::start(
                Instant::now(),
                Duration::from_millis(250),
                v.rss_reader(),
            )
        };
        session.bar.set_message(format!(
            "slow clients: {name} at {:.0}/s alone",
            profile.transfer_rate
        ));
        let poster = crate::part::slow::Poster::start(runtime, &base, &room);
        let sampler = sample(s.variant);
        let (target, workload) = s.target();
        let without = session.run(plan, target, Scenario::Transfer, 0, workload);
        let rss_without = sampler.peak();
        session.bar.inc(1);
        let decoyed = match decoy {
            Some(decoy) => {
                session.bar.set_message(format!(
                    "slow clients: {name} beside {} slow clients of each kind at a decoy",
                    profile.slow_clients
                ));
                let run = beside_a_decoy(session, decoy, || {
                    let (target, workload) = s.target();
                    session.run(plan, target, Scenario::Transfer, 0, workload)
                })?;
                session.bar.inc(1);
                Some(run)
            }
            None => None,
        };
        session.bar.set_message(format!(
            "slow clients: {name} beside {} slow clients of each kind",
            profile.slow_clients
        ));
        let attack = crate::part::slow::Attack::start(runtime, &base, &room, profile.slow_clients)?;
        // Let them connect and start before the measured run.
        std::thread::sleep(Duration::from_secs(1));
        let sampler = sample(s.variant);
        let (target, workload) = s.target();
        let with = session.run(plan, target, Scenario::Transfer, 0, workload);
        let rss_with = sampler.peak();
        // The poster first: a non-reader still open is drained to see
        // whether the edge cut it, which needs the room quiet.
        poster.stop();
        let attacks = attack.stop();
        session.bar.inc(1);
        out.push(crate::record::SlowRecord {
            variant: name,
            without,
            decoy: decoyed,
            with,
            rss_without,
            rss_with,
            attacks,
        });
    }
    Ok(out)
}

/// `measured` while the slow clients (and a poster into their room) are
/// at a decoy monolith started for it, stopped after.
fn beside_a_decoy(
    session: &Session<'_>,
    decoy: Decoy<'_>,
    measured: impl FnOnce() -> RunRecord,
) -> anyhow::Result<RunRecord> {
    let runtime = session.runtimes.client.handle();
    let started = session
        .runtimes
        .control
        .block_on(Variant::monolith(decoy.bin, &[], decoy.budget))
        .context("starting the slow clients' decoy")?;
    let run = fresh_room(session, &started.base, "the decoy").and_then(|room| {
        let poster = crate::part::slow::Poster::start(runtime, &started.base, &room);
        let attack = match crate::part::slow::Attack::start(
            runtime,
            &started.base,
            &room,
            session.profile.slow_clients,
        ) {
            Ok(attack) => attack,
            Err(e) => {
                poster.stop();
                return Err(e);
            }
        };
        // As beside the measured edge: let them connect first.
        std::thread::sleep(Duration::from_secs(1));
        let run = measured();
        poster.stop();
        let _ = attack.stop();
        Ok(run)
    });
    session.runtimes.control.block_on(started.stop());
    run
}

/// The transfer curve of `systems` alone (no floor, no ceiling: the
/// first pass measured those), audited after: the second pass, on
/// durable storage, the disk probe's file in `disk`.
pub(super) fn durable_curve(
    profile: &Profile,
    systems: &[Variant],
    runtimes: &Runtimes,
    disk: &Path,
    overload: bool,
) -> anyhow::Result<(Vec<RunRecord>, Vec<crate::record::OverloadRecord>)> {
    let lag_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut subjects = Vec::new();
    for v in systems {
        subjects.push(subject(profile, v, runtimes, &lag_http)?);
    }
    let n = subjects.len() as u64;
    let session = Session {
        profile,
        runtimes,
        http: Client::new(Duration::from_secs(10)),
        echo: String::new(),
        bar: progress(
            profile.curve_rates.len() as u64 * n + if overload { n } else { 0 },
            if overload {
                "durable curve, overload"
            } else {
                "durable curve"
            },
        ),
        lag_http,
        disk: Some(disk.to_path_buf()),
    };
    let mut runs = Vec::new();
    curve::subjects_only(&session, &mut subjects, &mut runs);
    let mut overloaded = Vec::new();
    if overload {
        overloaded = overloads(&session, &subjects, &runs);
        for o in &mut overloaded {
            o.storage = Some("durable".to_owned());
        }
    }
    session
        .bar
        .finish_with_message("durable curve done; checking invariants");
    for s in &mut subjects {
        audit(&session, s)?;
    }
    Ok((runs, overloaded))
}

/// A soak of `v` (durable, its store under `data`) at `rate`: after its
/// store is filled past its page caches at twice `rate` ([`fill_caches`])
/// and a warm-up (a window's length at least), windows of `soak_sample_s` back to back for
/// `soak_s`, its RSS and store size read after each; audited after.
pub(super) fn soak(
    profile: &Profile,
    v: &Variant,
    data: &Path,
    rate: f64,
    runtimes: &Runtimes,
) -> anyhow::Result<SoakRecord> {
    let lag_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut subject = subject(profile, v, runtimes, &lag_http)?;
    let sample_s = profile.soak_sample_s.max(0.1);
    let windows = (profile.soak_s / sample_s).ceil().max(1.0) as u64;
    let session = Session {
        profile,
        runtimes,
        http: Client::new(Duration::from_secs(10)),
        echo: String::new(),
        bar: progress(windows, &format!("soak: {} at {rate:.0}/s", v.name)),
        lag_http,
        disk: None,
    };
    let fill = fill_caches(&session, &mut subject, v, data, rate * 2.0, sample_s);
    session
        .bar
        .set_message(format!("soak: {} at {rate:.0}/s", v.name));
    // A warm-up at the rate, not sampled, as long as a window (or the
    // profile's warm-up if longer): the first window would otherwise time
    // a cold process (a 1 s warm-up left its p99 ten times the rest's).
    transfers_for(&session, &mut subject, profile.warmup_s.max(sample_s), rate);
    let started = Instant::now();
    let mut samples = Vec::with_capacity(windows as usize);
    for _ in 0..windows {
        let run = transfers_for(&session, &mut subject, sample_s, rate);
        samples.push(SoakSample {
            t_s: started.elapsed().as_secs_f64(),
            rss_bytes: v.rss_bytes().unwrap_or(0),
            store_bytes: dir_bytes(data),
            p50_us: run.p50_us,
            p99_us: run.p99_us,
            achieved_rate: run.achieved_rate,
            errors: run.errors(),
            error_kinds: run.error_kinds().map(|(o, n)| (o.to_owned(), n)).collect(),
        });
        session.bar.inc(1);
    }
    session
        .bar
        .finish_with_message(format!("soak of {} done", v.name));
    audit(&session, &mut subject)?;
    Ok(SoakRecord {
        variant: v.name.clone(),
        rate,
        samples,
        fill: Some(fill),
    })
}

/// Transfers at `rate` (the durable knee) in windows of `window_s` until
/// the store's files under `data` hold its page caches' bound (the
/// databases there times `store::kv::CACHE_BYTES`), for at most half the
/// soak: the soak then compares the RSS of a steady state. Begun on an
/// empty store at a low rate, the caches filled during the soak's first
/// minutes, and that growth (bounded, then flat) read as a leak.
fn fill_caches(
    session: &Session<'_>,
    subject: &mut Subject<'_>,
    v: &Variant,
    data: &Path,
    rate: f64,
    window_s: f64,
) -> SoakFill {
    let databases = redb_files(data).max(1);
    let cache_bytes = databases * store::kv::CACHE_BYTES as u64;
    let cap_s = session.profile.soak_s / 2.0;
    let started = Instant::now();
    session.bar.set_message(format!(
        "soak: {} filling its caches at {rate:.0}/s",
        v.name
    ));
    let mut store_bytes = dir_bytes(data);
    while store_bytes < cache_bytes && started.elapsed().as_secs_f64() < cap_s {
        transfers_for(session, subject, window_s, rate);
        store_bytes = dir_bytes(data);
    }
    SoakFill {
        rate,
        seconds: started.elapsed().as_secs_f64(),
        store_bytes,
        cache_bytes,
        reached: store_bytes >= cache_bytes,
    }
}

/// Transfers at `rate` for `seconds` (no warm-up of its own) against
/// `subject`, continuing its workload.
fn transfers_for(
    session: &Session<'_>,
    subject: &mut Subject<'_>,
    seconds: f64,
    rate: f64,
) -> RunRecord {
    let stretch = Profile {
        duration_s: seconds,
        warmup_s: 0.0,
        ..session.profile.clone()
    };
    let (target, workload) = subject.target();
    session.run(
        Plan::fixed(&stretch, rate),
        target,
        Scenario::Transfer,
        0,
        workload,
    )
}

/// How many redb databases are under `dir` (files ending `.redb`).
fn redb_files(dir: &Path) -> u64 {
    sum_files(dir, &|e| {
        u64::from(e.path().extension().is_some_and(|x| x == "redb"))
    })
}

/// The bytes of every file under `dir` (0 if it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    sum_files(dir, &|e| e.metadata().map_or(0, |m| m.len()))
}

/// `of` summed over every file under `dir`, its subdirectories included
/// (0 for what cannot be read).
fn sum_files(dir: &Path, of: &dyn Fn(&std::fs::DirEntry) -> u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => sum_files(&e.path(), of),
            Ok(_) => of(&e),
            Err(_) => 0,
        })
        .sum()
}

/// Opens `v`'s workload and notes what it is before any load.
fn subject<'a>(
    profile: &Profile,
    v: &'a Variant,
    runtimes: &Runtimes,
    lag_http: &reqwest::Client,
) -> anyhow::Result<Subject<'a>> {
    let workload = profile.workload()?;
    let api = contract::Api::new(&v.base)?;
    runtimes
        .control
        .block_on(crate::generator::requests::prepare(&api, &workload))
        .with_context(|| format!("preparing {}", v.name))?;
    // The CPU of each variant's own processes, read around each run's
    // recorded window.
    let meter = Some(v.cpu_meter()).filter(|m| !m.pids().is_empty());
    let record = VariantRecord {
        cpu_idle_cores: meter.as_ref().and_then(idle_cores),
        name: v.name.clone(),
        processes: v.processes.len().max(1),
        start_to_ready_ms: v.start_to_ready.map(|d| d.as_secs_f64() * 1000.0),
        rss_idle_bytes: v.rss_bytes(),
        rss_loaded_bytes: None,
        cpu_ms_per_request: None,
        audit: None,
        replicas: v
            .replica_rss()
            .into_iter()
            .map(|(service, rss)| ReplicaRecord {
                start_to_listening_ms: v
                    .replicas
                    .iter()
                    .find(|r| r.0 == service)
                    .and_then(|r| r.1)
                    .map(|d| d.as_secs_f64() * 1000.0),
                service,
                rss_idle_bytes: rss,
                rss_loaded_bytes: None,
            })
            .collect(),
        replication_lag: None,
        placement: v.placement.clone(),
    };
    // The microservices' read model: its lag histogram before and after.
    let ledger_metrics = v
        .service_addr("ledger")
        .map(|a| format!("http://{a}/metrics"));
    let lag_before = ledger_metrics
        .as_ref()
        .and_then(|u| runtimes.control.block_on(lag::sample(lag_http, u)));
    Ok(Subject {
        variant: v,
        workload,
        meter,
        ledger_metrics,
        lag_before,
        record,
    })
}

/// One hop alone, per protocol, against the split microservices (the cost
/// model's micro-measurement, [`crate::part::hop`]); nothing when they do
/// not run here as local processes. A probe that fails is reported on
/// the terminal and left out (the report's hop-alone columns then stay
/// empty, `–`).
fn hops(session: &Session<'_>, subjects: &[Subject<'_>], repeat: u32) -> Vec<HopRecord> {
    use crate::part::hop::{Call, Plan as HopPlan, probe};
    let Some(split) = subjects
        .iter()
        .find(|s| s.variant.name == "microservices" && !s.placed())
    else {
        return Vec::new();
    };
    let v = split.variant;
    let pid_of = |process: &str| {
        v.processes
            .iter()
            .find(|(name, _)| name == process)
            .map(|(_, pid)| *pid)
    };
    let plan = HopPlan {
        rate: session.profile.transfer_rate,
        idle: Duration::from_millis(500),
        warmup: Duration::from_millis(300),
        window: Duration::from_secs_f64((session.profile.duration_s / 3.0).clamp(0.25, 5.0)),
        repeat,
    };
    let account = split
        .workload
        .accounts()
        .into_iter()
        .next()
        .map(|(id, _)| id);
    let calls = [
        v.service_addr("accounts")
            .zip(account)
            .map(|(addr, account)| Call::Grpc {
                url: format!("http://{addr}"),
                account,
            })
            .zip(pid_of("accounts")),
        v.service_addr("ledger")
            .map(|addr| Call::Http {
                url: format!("http://{addr}"),
            })
            .zip(pid_of("ledger")),
    ];
    let mut out = Vec::new();
    for (call, pid) in calls.into_iter().flatten() {
        session.bar.set_message(format!("one hop alone: {call:?}"));
        match probe(&call, pid, plan) {
            Ok(record) => {
                if let Some(e) = &record.first_error {
                    session.bar.println(format!(
                        "warning: {} of {} hop probe calls failed: {e}",
                        record.failed,
                        record.calls + record.failed
                    ));
                }
                out.push(record);
            }
            Err(e) => session.bar.println(format!(
                "warning: the hop probe {call:?} failed, left out: {e:#}"
            )),
        }
    }
    out
}

/// What a system's processes use with nothing to do: after a quarter of a
/// second for the workload's preparation to settle, the CPU of
/// [`IDLE_WINDOW`] without requests, in cores.
fn idle_cores(meter: &crate::cpu::CpuMeter) -> Option<f64> {
    std::thread::sleep(Duration::from_millis(250));
    meter.cores_over(IDLE_WINDOW)
}

/// How long a system is watched idle.
const IDLE_WINDOW: Duration = Duration::from_secs(1);

/// One repeat of the fixed-rate runs: the floor, then each scenario
/// against each variant in turn.
fn fixed_rates(
    session: &Session<'_>,
    subjects: &mut [Subject<'_>],
    repeat: u32,
    runs: &mut Vec<RunRecord>,
) -> anyhow::Result<()> {
    let profile = session.profile;
    let scenarios = profile.scenarios();
    let floor_rate = scenarios.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    let mut floor_workload = profile.workload()?;
    session
        .bar
        .set_message(format!("repeat {} floor", repeat + 1));
    runs.push(session.run(
        Plan::fixed(profile, floor_rate),
        session.floor(),
        Scenario::Floor,
        repeat,
        &mut floor_workload,
    ));
    session.bar.inc(1);
    for (scenario, rate) in scenarios {
        for s in subjects.iter_mut() {
            // A placement is measured where it differs: transfers.
            if s.placed() && scenario != Scenario::Transfer {
                continue;
            }
            session.bar.set_message(format!(
                "repeat {} {} {} at {rate:.0}/s",
                repeat + 1,
                s.variant.name,
                scenario.name()
            ));
            let (target, workload) = s.target();
            let record = session.run(
                Plan::fixed(profile, rate),
                target,
                scenario,
                repeat,
                workload,
            );
            runs.push(record);
            session.bar.inc(1);
        }
    }
    Ok(())
}

/// One repeat of the fan-out run against each variant.
fn fanouts(
    session: &Session<'_>,
    subjects: &[Subject<'_>],
    repeat: u32,
    out: &mut Vec<FanoutRecord>,
) -> anyhow::Result<()> {
    let profile = session.profile;
    for s in subjects.iter().filter(|s| !s.placed()) {
        let v = s.variant;
        session.bar.set_message(format!(
            "repeat {} {} fan-out to {} sockets at {:.0} posts/s",
            repeat + 1,
            v.name,
            profile.fanout_subscribers,
            profile.fanout_rate
        ));
        let room = fanout::Room {
            variant: &v.name,
            base: &v.base,
            room: &format!("fanout-r{repeat}"),
            subscribers: profile.fanout_subscribers,
        };
        let record = fanout::run(
            session.runtimes,
            &session.http,
            room,
            Plan::fixed(profile, profile.fanout_rate),
            repeat,
        )
        .with_context(|| format!("{} fan-out", v.name))?;
        out.push(record);
        session.bar.inc(1);
    }
    Ok(())
}

/// The generator against oha, at the floor and against the microlith
/// (balance reads), at the fixed read rate and four times it.
fn cross_check(
    session: &Session<'_>,
    oha: &Path,
    subjects: &mut [Subject<'_>],
) -> anyhow::Result<CrossCheckRecord> {
    let profile = session.profile;
    let rates = [profile.read_rate, 4.0 * profile.read_rate];
    let mut floor_workload = profile.workload()?;
    let mut endpoints = vec![cross_check::Endpoint {
        name: "floor",
        base: &session.echo,
        scenario: Scenario::Floor,
        workload: &mut floor_workload,
    }];
    if let Some(s) = subjects.iter_mut().find(|s| s.variant.name == "microlith") {
        endpoints.push(cross_check::Endpoint {
            name: "microlith",
            base: &s.variant.base,
            scenario: Scenario::Balance,
            workload: &mut s.workload,
        });
    }
    session
        .bar
        .inc_length((rates.len() * endpoints.len()) as u64);
    cross_check::cross_check(
        oha,
        session.runtimes.client.handle(),
        &session.http,
        profile,
        &rates,
        &mut endpoints,
        |name, rate| {
            session.bar.inc(1);
            session.bar.set_message(format!(
                "cross-check: ours and oha against {name} at {rate:.0}/s"
            ));
        },
    )
}

/// The invariants after the load (a violation fails the run loudly), and
/// what the variant holds now: memory, the read model's lag.
fn audit(session: &Session<'_>, s: &mut Subject<'_>) -> anyhow::Result<()> {
    let control = &session.runtimes.control;
    let v = s.variant;
    let api = contract::Api::new(&v.base)?;
    let audit = control
        .block_on(latency::check_invariants(&api, &s.workload))
        .with_context(|| format!("{} after the runs", v.name))?;
    s.record.audit = Some(audit);
    s.record.rss_loaded_bytes = v.rss_bytes();
    if let Some(url) = &s.ledger_metrics
        && let Some(after) = control.block_on(lag::sample(&session.lag_http, url))
    {
        s.record.replication_lag = lag::between(s.lag_before.as_ref(), &after);
    }
    for (service, rss) in v.replica_rss() {
        if let Some(r) = s.record.replicas.iter_mut().find(|r| r.service == service) {
            r.rss_loaded_bytes = rss;
        }
    }
    Ok(())
}
