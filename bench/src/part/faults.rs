//! Failure recovery under steady load: the same kind of fault made to
//! each variant, each against a fresh durable instance, with a 100 ms
//! timeline around it and the invariant checks after it.
//!
//! | kind | load | monolith | microlith | microservices |
//! |---|---|---|---|---|
//! | `crash` | transfers | SIGKILL of the process, started again at once (as a process supervisor would) | every bank actor panics (supervisors restart them from storage) | SIGKILL of the accounts process (the launcher restarts it) |
//! | `chat-crash` | posts | a panic in a chat handler (tokio contains it to that request; nothing restarts) | every room actor and the directory panic | SIGKILL of the chat process |
//! | `pause` | transfers | SIGSTOP of the process for a while (it is the whole system) | the same | SIGSTOP of the accounts process for a while (a gray failure: alive, silent) |
//! | `dependency-down` | transfers | none: its read model is in-process | none | the HTTP/JSON ledger paused (SIGSTOP) for a while |
//! | `upgrade` | transfers | SIGTERM: it drains and exits, and is started again (no successor: the port refuses meanwhile) | a successor process takes the socket and the state over (zero-downtime upgrade) | SIGTERM of accounts: it drains and exits, the launcher starts it again (a rolling restart of one service) |
//!
//! A one-process variant's `pause` is the honest counterpart of pausing
//! one service: a stopped OS process. There that process is the whole
//! system, which is the trade-off the report must show. A panic does not
//! take a plain monolith down (tokio contains it to the request's task),
//! so its `crash` is the fault that does: the process dies.
//!
//! Under `--deploy compose` the faults are the containers' instead
//! ([`container_plans`]), each against a fresh compose project:
//!
//! | kind | load | monolith, microlith | microservices |
//! |---|---|---|---|
//! | `container-crash` | transfers | SIGKILL of the container's process (the engine restarts it) | the same, of the accounts container |
//! | `container-pause` | transfers | `docker pause` (frozen: alive, silent) for a while | the same, of accounts |
//! | `partition` | transfers | the container cut from its networks for a while | accounts cut from the backend network |
//! | `rolling-restart` | transfers | `docker restart` (SIGTERM, drain, start) | the same, of accounts |
//! | `upgrade` | transfers | the microlith only: SIGHUP to the container's init, a successor in the same container takes the socket and the state over | – (its rolling restart above) |
//!
//! `docker kill` is not the crash: the engine counts it as a manual stop
//! and its restart policy does not bring the container back; a process
//! killed from outside, as by a crash or the OOM killer, is restarted.

use std::path::Path;
pub mod chaos;
pub mod run;

use run::{Back, Injection};

use std::time::Duration;

use anyhow::Context;

use crate::generator::Runtimes;
use crate::record::{FaultRecord, Profile, Scenario};
use crate::target::local::Variant;

/// What is done to the variant.
#[derive(Debug, Clone)]
enum Action {
    /// `POST /admin/crash/{target}` for each (monolith, microlith; the targets
    /// matching these prefixes, read from `/admin/targets`).
    Panic(Vec<&'static str>),
    /// SIGKILL of a service process.
    Kill(&'static str),
    /// SIGSTOP, then SIGCONT after the pause; `None`: the variant's only
    /// process.
    Stop(Option<&'static str>),
    /// The microlith's zero-downtime upgrade: a successor takes over.
    Upgrade,
    /// SIGTERM of a service process (a graceful restart by its launcher).
    Term(&'static str),
    /// The signal to a one-process variant, and once it has exited, the
    /// same process started again on the same port (as a process
    /// supervisor does).
    Relaunch(rustix::process::Signal),
    /// SIGKILL of a compose service's container process.
    ContainerKill(&'static str),
    /// `docker pause`, then `docker unpause` after the pause.
    ContainerPause(&'static str),
    /// Disconnected from every network, reconnected after the pause.
    Partition(&'static str),
    /// `docker restart` (graceful stop, then start).
    Restart(&'static str),
    /// `docker kill -s HUP`: the microlith's init starts a successor.
    ContainerUpgrade(&'static str),
}

/// One fault of one variant.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The kind, shared by both variants' counterparts.
    pub kind: &'static str,
    /// `monolith`, `microlith` or `microservices`.
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
    let plan = |kind, variant, scenario, describe: String, action| FaultPlan {
        kind,
        variant,
        scenario,
        describe,
        action,
    };
    let mut plans = vec![
        plan(
            "crash",
            "monolith",
            Scenario::Transfer,
            "SIGKILL of the monolith process (the whole system), started again at once as a process supervisor would"
                .into(),
            Action::Relaunch(rustix::process::Signal::KILL),
        ),
        plan(
            "crash",
            "microlith",
            Scenario::Transfer,
            "panic in every bank actor (account and journal shards)".into(),
            Action::Panic(vec!["account-", "journal-"]),
        ),
        plan(
            "crash",
            "microservices",
            Scenario::Transfer,
            "SIGKILL of the accounts process (the launcher restarts it)".into(),
            Action::Kill("accounts"),
        ),
        plan(
            "chat-crash",
            "monolith",
            Scenario::Post,
            "a panic in a chat handler (tokio contains it to that request; nothing restarts)".into(),
            Action::Panic(vec!["chat"]),
        ),
        plan(
            "chat-crash",
            "microlith",
            Scenario::Post,
            "panic in every room actor and the room directory".into(),
            Action::Panic(vec!["room:", "directory"]),
        ),
        plan(
            "chat-crash",
            "microservices",
            Scenario::Post,
            "SIGKILL of the chat process (the launcher restarts it)".into(),
            Action::Kill("chat"),
        ),
        plan(
            "pause",
            "monolith",
            Scenario::Transfer,
            format!("SIGSTOP of the monolith process for {pause} s (the whole system)"),
            Action::Stop(None),
        ),
        plan(
            "pause",
            "microlith",
            Scenario::Transfer,
            format!("SIGSTOP of the microlith process for {pause} s (the whole system)"),
            Action::Stop(None),
        ),
        plan(
            "pause",
            "microservices",
            Scenario::Transfer,
            format!("SIGSTOP of the accounts process for {pause} s"),
            Action::Stop(Some("accounts")),
        ),
        plan(
            "dependency-down",
            "microservices",
            Scenario::Transfer,
            format!("the HTTP/JSON ledger stopped (SIGSTOP) for {pause} s"),
            Action::Stop(Some("ledger")),
        ),
        plan(
            "upgrade",
            "monolith",
            Scenario::Transfer,
            "SIGTERM of the monolith process: it drains and exits and is started again (no successor takes the socket over)"
                .into(),
            Action::Relaunch(rustix::process::Signal::TERM),
        ),
        plan(
            "upgrade",
            "microlith",
            Scenario::Transfer,
            "a new process takes the listening socket and the state over while the old one drains"
                .into(),
            Action::Upgrade,
        ),
        plan(
            "upgrade",
            "microservices",
            Scenario::Transfer,
            "SIGTERM of the accounts process: it drains, exits and is started again".into(),
            Action::Term("accounts"),
        ),
    ];
    // The placements between one process and split: the standard fault
    // each (in `--full`, which steps them up the curve too).
    if profile.placements_curve {
        for preset in crate::budget::PRESETS {
            plans.push(plan(
                "crash",
                preset.variant,
                Scenario::Transfer,
                format!(
                    "SIGKILL of {} (the launcher restarts it)",
                    preset.accounts_process
                ),
                Action::Kill("accounts"),
            ));
        }
    }
    plans
}

/// The container faults, for `--deploy compose`.
pub fn container_plans(profile: &Profile) -> Vec<FaultPlan> {
    let pause = profile.fault_pause_s;
    let plan = |kind, variant, describe: String, action| FaultPlan {
        kind,
        variant,
        scenario: Scenario::Transfer,
        describe,
        action,
    };
    vec![
        plan("container-crash", "monolith", "SIGKILL of the monolith container's process (the engine restarts it)".into(), Action::ContainerKill("monolith")),
        plan("container-crash", "microlith", "SIGKILL of the microlith container's process (the engine restarts it)".into(), Action::ContainerKill("microlith")),
        plan("container-crash", "microservices", "SIGKILL of the accounts container's process (the engine restarts it)".into(), Action::ContainerKill("accounts")),
        plan("container-pause", "monolith", format!("docker pause of the monolith container for {pause} s"), Action::ContainerPause("monolith")),
        plan("container-pause", "microlith", format!("docker pause of the microlith container for {pause} s"), Action::ContainerPause("microlith")),
        plan("container-pause", "microservices", format!("docker pause of the accounts container for {pause} s"), Action::ContainerPause("accounts")),
        plan("partition", "monolith", format!("the monolith container disconnected from its network for {pause} s"), Action::Partition("monolith")),
        plan("partition", "microlith", format!("the microlith container disconnected from its network for {pause} s"), Action::Partition("microlith")),
        plan("partition", "microservices", format!("the accounts container disconnected from the backend network for {pause} s"), Action::Partition("accounts")),
        plan("rolling-restart", "monolith", "docker restart of the monolith container (graceful stop, then start)".into(), Action::Restart("monolith")),
        plan("rolling-restart", "microlith", "docker restart of the microlith container (graceful stop, then start)".into(), Action::Restart("microlith")),
        plan("rolling-restart", "microservices", "docker restart of the accounts container (graceful stop, then start)".into(), Action::Restart("accounts")),
        plan(
            "upgrade",
            "microlith",
            "SIGHUP to the microlith container's init: a new process in the container takes the listening socket and the state over while the old one drains".into(),
            Action::ContainerUpgrade("microlith"),
        ),
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

/// Whether `url` answers 200 within half a second.
fn answers(control: &tokio::runtime::Handle, http: &reqwest::Client, url: &str) -> bool {
    control.block_on(async {
        http.get(url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
}

/// Back once a process other than `old` runs `service` (the launcher
/// restarted it) and answers its health check.
fn service_back(
    variant: &Variant,
    service: &'static str,
    old: u32,
    control: &tokio::runtime::Handle,
) -> anyhow::Result<Back> {
    let ports = variant
        .ports_file
        .clone()
        .context("a service's restart is seen in the launcher's ports file")?;
    let (control, http) = (control.clone(), reqwest::Client::new());
    Ok(Back::Probe(Box::new(move || {
        let Some((pid, addr)) = crate::target::local::service_entry(&ports, service) else {
            return false;
        };
        pid != old && answers(&control, &http, &format!("http://{addr}/healthz"))
    })))
}

/// Builds the injection of `plan` against a started variant, with how to
/// tell when what it hit is back.
fn injection(
    plan: &FaultPlan,
    variant: &Variant,
    control: &tokio::runtime::Handle,
    pause: Duration,
) -> anyhow::Result<Injection> {
    let (inject, back) = inject_and_back(plan, variant, control, pause)?;
    Ok(Injection { inject, back })
}

fn inject_and_back(
    plan: &FaultPlan,
    variant: &Variant,
    control: &tokio::runtime::Handle,
    pause: Duration,
) -> anyhow::Result<(Box<dyn FnOnce() + Send>, Back)> {
    let pid_of = |service: Option<&str>| match service {
        Some(s) => variant
            .service_pid(s)
            .with_context(|| format!("no pid of {s}")),
        None => variant.pids().first().copied().context("no pid"),
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
            let inject: Box<dyn FnOnce() + Send> = Box::new(move || {
                let http = reqwest::Client::new();
                handle.block_on(async {
                    for t in targets {
                        let _ = http.post(format!("{base}/admin/crash/{t}")).send().await;
                    }
                });
            });
            (inject, Back::Unknown)
        }
        Action::Kill(service) => {
            let pid = pid_of(Some(service))?;
            (
                Box::new(move || signal(pid, rustix::process::Signal::KILL)),
                service_back(variant, service, pid, control)?,
            )
        }
        Action::Stop(service) => {
            let pid = pid_of(*service)?;
            (
                Box::new(move || {
                    signal(pid, rustix::process::Signal::STOP);
                    std::thread::sleep(pause);
                    signal(pid, rustix::process::Signal::CONT);
                }),
                Back::Lifted,
            )
        }
        Action::Upgrade => (
            Box::new(
                variant
                    .upgrade(control.clone())
                    .context("an upgrade needs a microlith started with --upgrade-socket")?,
            ),
            Back::Unknown,
        ),
        Action::Term(service) => {
            let pid = pid_of(Some(service))?;
            (
                Box::new(move || signal(pid, rustix::process::Signal::TERM)),
                service_back(variant, service, pid, control)?,
            )
        }
        Action::Relaunch(sig) => {
            let sig = *sig;
            // The injection returns once the old process exited and the
            // new one was started: back once the new one is ready.
            let (control, http) = (control.clone(), reqwest::Client::new());
            let ready = format!("{}/readyz", variant.base);
            (
                Box::new(
                    variant
                        .restart(control.clone(), move |pid| signal(pid, sig))
                        .context("a restart needs a one-process variant")?,
                ),
                Back::Probe(Box::new(move || answers(&control, &http, &ready))),
            )
        }
        Action::ContainerKill(service) => {
            let id = container_of(variant, service)?;
            (
                Box::new(move || match crate::target::compose::container_pid(&id) {
                    Some(pid) => signal(pid, rustix::process::Signal::KILL),
                    None => eprintln!("no process of container {id} to kill"),
                }),
                // The container's services are on a private network.
                Back::Unknown,
            )
        }
        Action::ContainerPause(service) => {
            let id = container_of(variant, service)?;
            (
                Box::new(move || {
                    crate::target::compose::docker(&["pause", &id]);
                    std::thread::sleep(pause);
                    crate::target::compose::docker(&["unpause", &id]);
                }),
                Back::Lifted,
            )
        }
        Action::Partition(service) => {
            let id = container_of(variant, service)?;
            let networks = crate::target::compose::networks(&id);
            anyhow::ensure!(
                !networks.is_empty(),
                "container {id} of {service} is on no network"
            );
            let service = service.to_string();
            (
                Box::new(move || {
                    for n in &networks {
                        crate::target::compose::docker(&["network", "disconnect", n, &id]);
                    }
                    std::thread::sleep(pause);
                    // Back under its service name, which its callers resolve.
                    for n in &networks {
                        crate::target::compose::docker(&[
                            "network", "connect", "--alias", &service, n, &id,
                        ]);
                    }
                }),
                Back::Lifted,
            )
        }
        Action::Restart(service) => {
            let id = container_of(variant, service)?;
            (
                Box::new(move || {
                    crate::target::compose::docker(&["restart", "-t", "10", &id]);
                }),
                // `docker restart` returns once the container runs again.
                Back::Lifted,
            )
        }
        Action::ContainerUpgrade(service) => {
            let id = container_of(variant, service)?;
            (
                Box::new(move || {
                    crate::target::compose::docker(&["kill", "-s", "HUP", &id]);
                }),
                Back::Unknown,
            )
        }
    })
}

fn container_of(variant: &Variant, service: &str) -> anyhow::Result<String> {
    let project = variant
        .compose
        .as_ref()
        .context("a container fault needs --deploy compose")?;
    project
        .containers()
        .into_iter()
        .find(|(s, _)| s == service)
        .map(|(_, id)| id)
        .with_context(|| format!("no container of {service}"))
}

/// Where the fault runs start their fresh instances.
#[derive(Debug, Clone, Copy)]
pub enum Instances<'a> {
    /// Child processes from the release binaries in `bin`, their data
    /// under `scratch`.
    Local {
        /// The variants' binaries.
        bin: &'a Path,
        /// Data directories.
        scratch: &'a Path,
        /// The runtimes' sizing.
        budget: crate::budget::Budget,
    },
    /// Compose projects of the images (built already).
    Compose {
        /// The workspace (its `<variant>/compose.yml`).
        workspace: &'a Path,
    },
}

/// A fresh durable instance of `variant`, started for a fault run (its
/// data under `label` when local): fault injection on, and the
/// microlith's upgrade socket.
fn start(
    variant: &str,
    label: &str,
    instances: Instances<'_>,
    runtimes: &Runtimes,
) -> anyhow::Result<Variant> {
    let durable = ["--storage".to_owned(), "durable".to_owned()];
    runtimes.control.block_on(async {
        match instances {
            // Images run with durable storage on a fresh volume.
            Instances::Compose { workspace } => {
                Variant::compose(workspace, variant, "durable").await
            }
            Instances::Local {
                bin,
                scratch,
                budget,
            } => {
                let data = scratch.join(format!("{label}-{variant}"));
                let mut args = durable.to_vec();
                if variant == "monolith" || variant == "microlith" {
                    args.extend([
                        "--fault-injection".to_owned(),
                        "--data-dir".to_owned(),
                        data.display().to_string(),
                    ]);
                }
                if variant == "monolith" {
                    Variant::monolith(bin, &args, &budget).await
                } else if variant == "microlith" {
                    args.extend([
                        "--upgrade-socket".to_owned(),
                        data.join("upgrade.sock").display().to_string(),
                    ]);
                    Variant::microlith(bin, &args, &budget).await
                } else if let Some(preset) = crate::budget::preset_of(variant) {
                    Variant::microservices_placed(bin, &data, preset, &durable, &budget).await
                } else {
                    Variant::microservices(bin, &data, &durable, &budget).await
                }
            }
        }
    })
}

/// Runs every fault of `plans`, each against a fresh durable instance
/// started from `bin`; stops at the first broken invariant.
pub fn run_all(
    profile: &Profile,
    plans: &[FaultPlan],
    instances: Instances<'_>,
    runtimes: &Runtimes,
    mut progress: impl FnMut(&FaultPlan),
) -> anyhow::Result<Vec<FaultRecord>> {
    let http = crate::generator::client::Client::new(Duration::from_secs(10));
    // Early enough to leave room for the recovery, late enough for a norm.
    let at = Duration::from_secs_f64(profile.fault_seconds * 0.3);
    let pause = Duration::from_secs_f64(profile.fault_pause_s);
    let mut records = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        progress(plan);
        let variant = start(plan.variant, &format!("fault-{n}"), instances, runtimes)?;
        let outcome = (|| {
            let (mut workload, api) = runtimes.prepared(profile, &variant.base)?;
            let inject = injection(plan, &variant, runtimes.control.handle(), pause)?;
            let rate = if plan.scenario == Scenario::Post {
                profile.fault_rate.min(profile.post_rate * 2.0)
            } else {
                profile.fault_rate
            };
            let load = run::FaultLoad {
                variant: plan.variant,
                base: &variant.base,
                fault: &plan.describe,
                scenario: plan.scenario,
                rate,
                seconds: profile.fault_seconds,
                at,
            };
            let run = run::run_fault(runtimes.client.handle(), &http, load, &mut workload, inject);
            // A violation fails the run loudly.
            let mut record = runtimes.control.block_on(run.check(&api, &workload))?;
            record.kind = plan.kind.to_owned();
            anyhow::Ok(record)
        })();
        runtimes.control.block_on(variant.stop());
        records.push(
            outcome.with_context(|| format!("{} {} failure recovery", plan.variant, plan.kind))?,
        );
    }
    Ok(records)
}
