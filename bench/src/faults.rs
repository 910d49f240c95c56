//! Failure recovery under steady load: the same kind of fault made to
//! each variant, each against a fresh durable instance, with a 100 ms
//! timeline around it and the invariant checks after it.
//!
//! | kind | load | microlith | microservices |
//! |---|---|---|---|
//! | `crash` | transfers | every bank actor panics (supervisors restart them from storage) | SIGKILL of the accounts process (the launcher restarts it) |
//! | `chat-crash` | posts | every room actor and the directory panic | SIGKILL of the chat process |
//! | `pause` | transfers | SIGSTOP of the process for a while (it is the whole system) | SIGSTOP of the accounts process for a while (a gray failure: alive, silent) |
//! | `dependency-down` | transfers | none: its read model is in-process | the HTTP/JSON ledger paused (SIGSTOP) for a while |
//!
//! The microlith's `pause` is the honest counterpart of pausing one
//! service: a stopped OS process. In the microlith that process is the
//! whole system, which is the trade-off the report must show.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::scenarios::{self, FaultRecord, Profile, Scenario};
use crate::variants::Variant;

/// What is done to the variant.
#[derive(Debug, Clone)]
enum Action {
    /// `POST /admin/crash/{target}` for each (microlith; the targets
    /// matching these prefixes, read from `/admin/targets`).
    Panic(Vec<&'static str>),
    /// SIGKILL of a service process.
    Kill(&'static str),
    /// SIGSTOP, then SIGCONT after the pause; `None`: the variant's only
    /// process.
    Stop(Option<&'static str>),
}

/// One fault of one variant.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The kind, shared by both variants' counterparts.
    pub kind: &'static str,
    /// `microlith` or `microservices`.
    pub variant: &'static str,
    /// The load during the run.
    pub scenario: Scenario,
    /// What is done, in words (goes into the report).
    pub describe: String,
    action: Action,
}

/// Every fault, in the order they run.
pub fn plans(profile: &Profile) -> Vec<FaultPlan> {
    let pause = profile.fault_pause_s;
    let plan = |kind, variant, scenario, describe: String, action| FaultPlan { kind, variant, scenario, describe, action };
    vec![
        plan("crash", "microlith", Scenario::Transfer, "panic in every bank actor (account and journal shards)".into(), Action::Panic(vec!["account-", "journal-"])),
        plan("crash", "microservices", Scenario::Transfer, "SIGKILL of the accounts process (the launcher restarts it)".into(), Action::Kill("accounts")),
        plan("chat-crash", "microlith", Scenario::Post, "panic in every room actor and the room directory".into(), Action::Panic(vec!["room:", "directory"])),
        plan("chat-crash", "microservices", Scenario::Post, "SIGKILL of the chat process (the launcher restarts it)".into(), Action::Kill("chat")),
        plan("pause", "microlith", Scenario::Transfer, format!("SIGSTOP of the microlith process for {pause} s (the whole system)"), Action::Stop(None)),
        plan("pause", "microservices", Scenario::Transfer, format!("SIGSTOP of the accounts process for {pause} s"), Action::Stop(Some("accounts"))),
        plan("dependency-down", "microservices", Scenario::Transfer, format!("the HTTP/JSON ledger stopped (SIGSTOP) for {pause} s"), Action::Stop(Some("ledger"))),
    ]
}

/// Sends `sig` to `pid` at once (no kill(1) process in between); a fault
/// that could not be injected is said, since the run would then measure
/// nothing.
fn signal(pid: u32, sig: rustix::process::Signal) {
    let sent = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .map(|p| rustix::process::kill_process(p, sig));
    if !matches!(sent, Some(Ok(()))) {
        eprintln!("could not send {sig:?} to process {pid}: {sent:?}");
    }
}

/// Builds the injection of `plan` against a started variant.
fn injection(plan: &FaultPlan, variant: &Variant, control: &tokio::runtime::Handle, pause: Duration) -> anyhow::Result<Box<dyn FnOnce() + Send>> {
    let pid_of = |service: Option<&str>| match service {
        Some(s) => variant.service_pid(s).with_context(|| format!("no pid of {s}")),
        None => variant.pids.first().copied().context("no pid"),
    };
    Ok(match &plan.action {
        Action::Panic(prefixes) => {
            let api = contract::Api::new(&variant.base)?;
            let listed = control.block_on(api.get("/admin/targets"))?;
            let targets: Vec<String> = listed.expect_status(200)?["targets"]
                .as_array()
                .context("targets")?
                .iter()
                .filter_map(|t| t.as_str())
                .filter(|t| prefixes.iter().any(|p| t.starts_with(p)))
                .map(str::to_owned)
                .collect();
            anyhow::ensure!(!targets.is_empty(), "no actor matches {prefixes:?}");
            let (handle, base) = (control.clone(), variant.base.clone());
            Box::new(move || {
                let http = reqwest::Client::new();
                handle.block_on(async {
                    for t in targets {
                        let _ = http.post(format!("{base}/admin/crash/{t}")).send().await;
                    }
                });
            })
        }
        Action::Kill(service) => {
            let pid = pid_of(Some(service))?;
            Box::new(move || signal(pid, rustix::process::Signal::KILL))
        }
        Action::Stop(service) => {
            let pid = pid_of(*service)?;
            Box::new(move || {
                signal(pid, rustix::process::Signal::STOP);
                std::thread::sleep(pause);
                signal(pid, rustix::process::Signal::CONT);
            })
        }
    })
}

/// Runs every fault of `plans`, each against a fresh durable instance
/// started from `bin`; stops at the first broken invariant.
pub fn run_all(
    profile: &Profile,
    plans: &[FaultPlan],
    bin: &Path,
    scratch: &Path,
    client_rt: &tokio::runtime::Runtime,
    control: &tokio::runtime::Runtime,
    mut progress: impl FnMut(&FaultPlan),
) -> anyhow::Result<Vec<FaultRecord>> {
    let http = crate::client::Client::new(Duration::from_secs(10));
    // Early enough to leave room for the recovery, late enough for a norm.
    let at = Duration::from_secs_f64(profile.fault_seconds * 0.3);
    let pause = Duration::from_secs_f64(profile.fault_pause_s);
    let mut records = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        progress(plan);
        let data = scratch.join(format!("fault-{n}-{}", plan.variant));
        let durable = ["--storage".to_owned(), "durable".to_owned()];
        let variant = control.block_on(async {
            if plan.variant == "microlith" {
                let mut args = durable.to_vec();
                args.extend(["--fault-injection".to_owned(), "--data-dir".to_owned(), data.display().to_string()]);
                Variant::microlith(bin, &args).await
            } else {
                Variant::microservices(bin, &data, &durable).await
            }
        })?;
        let outcome = (|| {
            let mut workload = profile.workload()?;
            let api = contract::Api::new(&variant.base)?;
            control.block_on(scenarios::prepare(&api, &workload))?;
            let inject = injection(plan, &variant, control.handle(), pause)?;
            let rate = if plan.scenario == Scenario::Post { profile.fault_rate.min(profile.post_rate * 2.0) } else { profile.fault_rate };
            let run = scenarios::run_fault(
                client_rt.handle(),
                &http,
                plan.variant,
                &variant.base,
                &plan.describe,
                plan.scenario,
                rate,
                profile.fault_seconds,
                at,
                &mut workload,
                inject,
            );
            // A violation fails the run loudly.
            let mut record = control.block_on(run.check(&api, &workload))?;
            record.kind = plan.kind.to_owned();
            anyhow::Ok(record)
        })();
        control.block_on(variant.stop());
        records.push(outcome.with_context(|| format!("{} {} failure recovery", plan.variant, plan.kind))?);
    }
    Ok(records)
}
