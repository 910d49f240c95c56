//! `microservices up`: every process of a layout (`--layout`; by default
//! each service alone) as a child process on loopback, like a small
//! orchestrator. Processes start in dependency order, each service on a
//! port of its own; the launcher waits until each answers `/healthz`,
//! prints the table (and writes it as JSON with `--ports-file`), restarts a
//! child that dies on the same addresses, and on Ctrl-C or SIGTERM stops
//! the gateway's process first, then the rest, each by closing its stdin (a
//! graceful, draining shutdown), killing what has not exited after a grace
//! period.
//! Children also stop by themselves if the launcher dies (their stdin
//! closes), so none is left holding a port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::layout::{Group, Layout};
use crate::process::{ServiceArgs, ServiceKind};

mod child;

use child::{Running, free_port, spawn_child, stop_child, wait_healthy};

/// `up`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Address of the gateway (API.md).
    #[arg(long, env = "MICROSERVICES_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Write the table of services, addresses and PIDs here as JSON (kept
    /// current across restarts).
    #[arg(long)]
    pub ports_file: Option<PathBuf>,
    /// Restarts of one service tolerated within a minute before the
    /// launcher gives up and stops everything.
    #[arg(long, default_value_t = 20)]
    pub max_restarts: u32,
    /// Which services share a process: a preset (`split`, `edge+saga`,
    /// `bank`, `one`) or groups such as `gateway+transfers | accounts |
    /// ledger | chat`. Inside a process they call each other in-process.
    #[arg(long, env = "MICROSERVICES_LAYOUT", default_value = "split")]
    pub layout: Layout,

    /// Every service's knobs.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The knobs as the children's environment ([`forwarded_env`] of the
    /// command line `up` was parsed from).
    #[arg(skip)]
    pub forwarded: Vec<(String, String)>,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    /// Service name.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process it runs in: its group (`accounts`, `accounts+transfers`).
    pub process: String,
    /// Its process id (the group's).
    pub pid: u32,
    /// How often the launcher restarted its process.
    pub restarts: u32,
}

/// What `--ports-file` holds.
#[derive(Debug, Serialize)]
struct PortsFile<'a> {
    gateway: String,
    launcher_pid: u32,
    layout: String,
    services: Vec<&'a ServiceRow>,
}

type Table = Arc<Mutex<BTreeMap<usize, ServiceRow>>>;

/// Every service knob the launcher was started with, as the environment
/// of its children: for each argument of [`ServiceArgs`] that has an
/// environment variable, the value the launcher's command line, its own
/// environment or the default gave it, exactly as clap read it. Nothing
/// is listed by hand, so a new knob reaches the children by itself.
pub fn forwarded_env(matches: &clap::ArgMatches) -> Vec<(String, String)> {
    let service = ServiceArgs::augment_args(clap::Command::new("serve"));
    service
        .get_arguments()
        .filter_map(|arg| {
            let var = arg.get_env()?.to_str()?.to_owned();
            let raw = matches.try_get_raw(arg.get_id().as_str()).ok()??;
            let values: Vec<&str> = raw.filter_map(|v| v.to_str()).collect();
            Some((var, values.join(",")))
        })
        .collect()
}

/// A child's environment: the forwarded knobs, then the addresses of the
/// services it calls (chosen by the launcher).
fn child_env(
    forwarded: &[(String, String)],
    urls: &BTreeMap<ServiceKind, String>,
) -> Vec<(String, String)> {
    let mut env = forwarded.to_vec();
    for (kind, var) in [
        (ServiceKind::Accounts, "MICROSERVICES_ACCOUNTS_URL"),
        (ServiceKind::Transfers, "MICROSERVICES_TRANSFERS_URL"),
        (ServiceKind::Ledger, "MICROSERVICES_LEDGER_URL"),
        (ServiceKind::Chat, "MICROSERVICES_CHAT_URL"),
    ] {
        if let Some(url) = urls.get(&kind) {
            env.push((var.to_owned(), url.clone()));
        }
    }
    env
}

/// Who gets a certificate: every service, and the launcher (which
/// probes them).
pub fn certified() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
    names.push("launcher");
    names
}

/// What `microservices certs` writes to `dir` for a deployment (the
/// kind overlay's Secrets): a fresh CA, a certificate per service and
/// for the launcher, and a service-token key (`token.key`). Returns
/// the names certified.
pub fn generate_deployment(dir: &std::path::Path) -> anyhow::Result<Vec<&'static str>> {
    let names = certified();
    crate::pki::Pki::generate(dir, &names)?;
    write_token_key(&dir.join("token.key"))?;
    Ok(names)
}

/// Makes a fresh signing key for this run, readable by this user only.
pub fn write_token_key(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::pki::write_private(path, &crate::auth::TokenKey::generate().to_hex())
}

/// One process's place in the launch: its services' rows and addresses
/// and its environment, kept for restarts.
struct Slot {
    group: Group,
    addrs: Vec<(ServiceKind, SocketAddr)>,
    env: Vec<(String, String)>,
}

impl Slot {
    /// The table's rows of this process's services.
    fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        // A service's row in the table: its place in start order.
        self.addrs.iter().map(|(kind, _)| kind.start_rank())
    }
}

/// Runs one process for the launcher's lifetime, restarting it when it
/// dies.
async fn supervise(slot: Slot, mut running: Running, up: Arc<UpState>) -> Option<Running> {
    let name = slot.group.name();
    let max_restarts = up.max_restarts;
    let mut recent: Vec<Instant> = Vec::new();
    loop {
        tokio::select! {
            status = running.child.wait() => {
                if up.stopping.is_cancelled() {
                    return None;
                }
                tracing::warn!(process = %name, ?status, "process died; restarting it");
                let now = Instant::now();
                recent.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                recent.push(now);
                if recent.len() as u32 > max_restarts {
                    tracing::error!(process = %name, "restarting too often; stopping everything");
                    up.failed.lock().get_or_insert_with(|| format!("{name} restarted more than {max_restarts} times in a minute"));
                    up.stopping.cancel();
                    return None;
                }
                let started = loop {
                    match spawn_child(&slot.group, &slot.addrs, &slot.env).await {
                        Ok((c, _)) => break Some(c),
                        Err(e) => {
                            tracing::warn!(process = %name, error = %e, "restart failed; trying again");
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_millis(200)) => {},
                                () = up.stopping.cancelled() => break None,
                            }
                        }
                    }
                };
                let c = started?;
                running = c;
                {
                    let mut table = up.table.lock();
                    for index in slot.rows() {
                        if let Some(row) = table.get_mut(&index) {
                            row.pid = running.child.id().unwrap_or(0);
                            row.restarts += 1;
                        }
                    }
                }
                metrics::counter!("launcher_restarts_total", "process" => name.clone()).increment(1);
                up.write_ports_file();
            }
            () = up.stopping.cancelled() => {
                // Handed back: the launcher stops the gateway first.
                return Some(running);
            }
        }
    }
}

/// What the supervising tasks share.
struct UpState {
    table: Table,
    max_restarts: u32,
    stopping: CancellationToken,
    failed: Mutex<Option<String>>,
    ports_file: Option<PathBuf>,
    gateway: String,
    layout: String,
}

impl UpState {
    fn write_ports_file(&self) {
        let Some(path) = &self.ports_file else { return };
        let table = self.table.lock();
        let file = PortsFile {
            gateway: self.gateway.clone(),
            launcher_pid: std::process::id(),
            layout: self.layout.clone(),
            services: table.values().collect(),
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, path)?;
                Ok(())
            });
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "could not write the ports file");
        }
    }
}

/// Starts everything, serves until `shutdown`, stops everything.
pub async fn up(
    args: UpArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut urls = BTreeMap::new();
    let table: Table = Arc::default();
    if args.service.service_tokens {
        write_token_key(&args.service.token_key_path())?;
    }
    // A fresh private CA per run, never reused or committed.
    let health_client = if args.service.mtls {
        let pki = crate::pki::Pki::generate(&args.service.pki_path(), &certified())?;
        pki.http_client("launcher", reqwest::Client::builder())?
    } else {
        reqwest::Client::builder()
    }
    .timeout(Duration::from_secs(1))
    .build()?;
    let scheme = |kind: ServiceKind| {
        if args.service.mtls && kind != ServiceKind::Gateway {
            "https"
        } else {
            "http"
        }
    };
    let mut started = Vec::new();
    let mut tasks = Vec::new();
    // Every address is chosen before anything starts: the ledger and the
    // transfers service each call the other, so neither can wait for the
    // other's announcement. A port free when chosen can be taken before the
    // child binds it (another process starting at the same moment): then
    // everything started is stopped and the boot is tried again on fresh
    // ports, a bounded number of times.
    const BOOT_ATTEMPTS: u32 = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut addrs = BTreeMap::new();
        for kind in ServiceKind::ALL {
            let addr = if kind == ServiceKind::Gateway {
                args.listen
            } else {
                free_port().await?
            };
            addrs.insert(kind, addr);
            urls.insert(kind, format!("{}://{addr}", scheme(kind)));
        }
        let boot = async {
            for group in args.layout.groups() {
                let env = child_env(&args.forwarded, &urls);
                let group_addrs: Vec<(ServiceKind, SocketAddr)> =
                    group.kinds().iter().map(|k| (*k, addrs[k])).collect();
                let (child, group_addrs) = spawn_child(group, &group_addrs, &env).await?;
                let pid = child.child.id().unwrap_or(0);
                let slot = Slot {
                    group: group.clone(),
                    addrs: group_addrs.clone(),
                    env,
                };
                started.push((slot, child));
                for (kind, addr) in &group_addrs {
                    wait_healthy(
                        &health_client,
                        *kind,
                        &format!("{}://{addr}", scheme(*kind)),
                    )
                    .await?;
                    table.lock().insert(
                        kind.start_rank(),
                        ServiceRow {
                            name: kind.name(),
                            addr: *addr,
                            process: group.name(),
                            pid,
                            restarts: 0,
                        },
                    );
                }
            }
            anyhow::Ok(())
        };
        match boot.await {
            Ok(()) => break,
            Err(e) => {
                for (slot, child) in std::mem::take(&mut started).into_iter().rev() {
                    stop_child(&slot.group, child).await;
                }
                table.lock().clear();
                if attempt >= BOOT_ATTEMPTS {
                    return Err(e);
                }
                tracing::warn!(error = %e, attempt, "boot failed; trying again on fresh ports");
            }
        }
    }
    let gateway = table
        .lock()
        .values()
        .find(|r| r.name == "gateway")
        .map(|r| format!("http://{}", r.addr))
        .unwrap_or_default();
    let state = Arc::new(UpState {
        table: table.clone(),
        max_restarts: args.max_restarts,
        stopping: CancellationToken::new(),
        failed: Mutex::new(None),
        ports_file: args.ports_file.clone(),
        gateway: gateway.clone(),
        layout: args.layout.to_string(),
    });
    state.write_ports_file();
    print_table(&table, &gateway, &args.layout);
    let mut groups = Vec::new();
    for (slot, child) in started {
        groups.push(slot.group.clone());
        tasks.push(tokio::spawn(supervise(slot, child, state.clone())));
    }
    let stopping = state.stopping.clone();
    let parent_gone = async {
        if args.service.exit_on_stdin_eof {
            edge::stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = parent_gone => {}
        () = stopping.cancelled() => {}
    }
    eprintln!("stopping every service (gateway first)...");
    state.stopping.cancel();
    let mut children = Vec::new();
    for (group, task) in groups.into_iter().zip(tasks) {
        if let Ok(Some(child)) = task.await {
            children.push((group, child));
        }
    }
    for (group, child) in children.into_iter().rev() {
        stop_child(&group, child).await;
    }
    if let Some(path) = &args.ports_file {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("all services stopped");
    match state.failed.lock().take() {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}

fn print_table(table: &Table, gateway: &str, layout: &Layout) {
    let table = table.lock();
    println!("layout: {layout}");
    println!("{:<10} {:<22} {:>8}  PROCESS", "SERVICE", "ADDRESS", "PID");
    for row in table.values() {
        println!(
            "{:<10} {:<22} {:>8}  {}",
            row.name,
            row.addr.to_string(),
            row.pid,
            row.process
        );
    }
    println!("API.md is served at {gateway}; Ctrl-C stops everything.");
}

#[cfg(test)]
mod tests;
