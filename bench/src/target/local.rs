//! Starting and stopping the systems under test: the monolith, the
//! microlith and the microservices, each as child processes on loopback (their release
//! binaries, built first if missing), as compose projects of their images
//! (`--deploy compose`), or a deployment already running
//! (`--target name=URL`). Children hold a pipe to stdin from us and exit
//! when it closes, so none outlives the harness; dropping a variant stops
//! it gracefully and kills it after a grace period.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, ChildStdin, Command};

use crate::budget::Budget;

type Successors = std::sync::Arc<parking_lot::Mutex<Vec<(Child, Option<ChildStdin>)>>>;

/// A system under test.
pub struct Variant {
    /// `microlith` or `microservices` (or the name given to a target).
    pub name: String,
    /// Base URL of its edge.
    pub base: String,
    /// Processes we started, and the stdin pipe each exits on.
    children: Vec<(Child, Option<ChildStdin>)>,
    /// Successors started by [`Variant::upgrade`], stopped with the rest.
    successors: Successors,
    /// How a one-process variant was started, for a successor or a
    /// restart.
    launch: Option<Launch>,
    /// Start-to-ready, when we started it.
    pub start_to_ready: Option<Duration>,
    /// Every process of the variant (for RSS and CPU): what it is (a
    /// service's name, `launcher`, `microlith`) and its PID.
    pub processes: Vec<(String, u32)>,
    /// The launcher's ports file (microservices only).
    pub ports_file: Option<PathBuf>,
    /// Its compose project, under `--deploy compose` (torn down on drop).
    pub compose: Option<crate::target::compose::Project>,
    /// Under compose: each container's service and its start to listening.
    pub replicas: Vec<(String, Option<Duration>)>,
    /// The microservices' placement of components in processes, read off
    /// the launcher's ports file.
    pub placement: Option<crate::record::Placement>,
}

/// How a one-process variant was started.
#[derive(Clone, Debug)]
struct Launch {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// Starts it again, with `more` arguments.
    fn spawn(&self, more: &[String]) -> anyhow::Result<(Child, ChildStdin)> {
        let mut args = self.args.clone();
        args.extend_from_slice(more);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        spawn_with(&self.binary, &args, &env, None)
    }
}

/// Resident memory of a set of processes, bytes; None when it is empty
/// or one of them is gone.
fn rss_sum(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| crate::procfs::rss_bytes(*pid)).sum()
}

async fn free_port() -> anyhow::Result<u16> {
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port())
}

/// The client that polls `/readyz`. Built before the clock of
/// start-to-ready starts: building it is the harness's cost, not the
/// variant's.
fn ready_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?)
}

/// Polls `/readyz` every 2 ms until it answers 200.
async fn wait_ready(http: &reqwest::Client, base: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{base} not ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts `binary` with `RUST_LOG=warn` unless `env` says otherwise, its
/// stderr inherited or into `log`.
fn spawn_with(
    binary: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> anyhow::Result<(Child, ChildStdin)> {
    let stderr = match log {
        Some(path) => Stdio::from(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Stdio::inherit(),
    };
    let mut child = Command::new(binary)
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdin = child.stdin.take().context("child stdin")?;
    Ok((child, stdin))
}

/// Every variant answers sampled requests with their timing
/// (`breakdown`); only the generator's sampled share asks.
const TIMING_MICROLITH: (&str, &str) = ("MICROLITH_SERVER_TIMING", "true");
/// See [`TIMING_MICROLITH`].
const TIMING_MONOLITH: (&str, &str) = ("MONOLITH_SERVER_TIMING", "true");
/// See [`TIMING_MICROLITH`].
const TIMING_MICROSERVICES: (&str, &str) = ("MICROSERVICES_SERVER_TIMING", "true");

impl Variant {
    /// Starts the microlith (memory storage, default knobs), its runtime
    /// sized by `budget`.
    pub async fn microlith(
        bin: &Path,
        extra: &[String],
        budget: &Budget,
    ) -> anyhow::Result<Variant> {
        let env = budget.microlith_env();
        Self::one_process("microlith", bin, extra, &env, TIMING_MICROLITH).await
    }

    /// Starts the plain monolith (memory storage, default knobs), its
    /// runtime sized by `budget`.
    pub async fn monolith(
        bin: &Path,
        extra: &[String],
        budget: &Budget,
    ) -> anyhow::Result<Variant> {
        let env = budget.monolith_env();
        Self::one_process("monolith", bin, extra, &env, TIMING_MONOLITH).await
    }

    /// Starts a one-process variant: the binary `name` in `bin`.
    async fn one_process(
        name: &str,
        bin: &Path,
        extra: &[String],
        sizing: &[(&'static str, String)],
        timing: (&str, &str),
    ) -> anyhow::Result<Variant> {
        let port = free_port().await?;
        let base = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--exit-on-stdin-eof".to_owned(),
        ];
        args.extend_from_slice(extra);
        let http = ready_client()?;
        let started = Instant::now();
        let env: Vec<(&str, &str)> = sizing
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain([timing])
            .collect();
        let binary = bin.join(name);
        let (child, stdin) = spawn_with(&binary, &args, &env, None)?;
        let pid = child.id().unwrap_or(0);
        let mut variant = Variant {
            name: name.into(),
            base: base.clone(),
            children: vec![(child, Some(stdin))],
            start_to_ready: None,
            processes: vec![(name.to_owned(), pid)],
            ports_file: None,
            compose: None,
            successors: Successors::default(),
            replicas: Vec::new(),
            placement: None,
            launch: Some(Launch {
                binary,
                args,
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            }),
        };
        wait_ready(&http, &base, Duration::from_secs(30)).await?;
        variant.start_to_ready = Some(started.elapsed());
        Ok(variant)
    }

    /// Starts the microservices with `up` (memory storage, default knobs),
    /// their runtimes sized by `budget`.
    pub async fn microservices(
        bin: &Path,
        scratch: &Path,
        extra: &[String],
        budget: &Budget,
    ) -> anyhow::Result<Variant> {
        Self::microservices_with(bin, scratch, extra, &[], None, budget).await
    }

    /// Starts the microservices with `up`, extra environment, and every
    /// process's stderr into `log` if given.
    pub async fn microservices_with(
        bin: &Path,
        scratch: &Path,
        extra: &[String],
        env: &[(&str, &str)],
        log: Option<&Path>,
        budget: &Budget,
    ) -> anyhow::Result<Variant> {
        let sizing = budget.microservices_env();
        let env: Vec<(&str, &str)> = sizing
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain([TIMING_MICROSERVICES])
            .chain(env.iter().copied())
            .collect();
        let env = env.as_slice();
        let port = free_port().await?;
        let base = format!("http://127.0.0.1:{port}");
        std::fs::create_dir_all(scratch)?;
        let ports_file = scratch.join("ports.json");
        let _ = std::fs::remove_file(&ports_file);
        let mut args = vec![
            "up".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--exit-on-stdin-eof".to_owned(),
            "--ports-file".to_owned(),
            ports_file.display().to_string(),
            "--data-dir".to_owned(),
            scratch.join("data").display().to_string(),
        ];
        args.extend_from_slice(extra);
        let http = ready_client()?;
        let started = Instant::now();
        let (child, stdin) = spawn_with(&bin.join("microservices"), &args, env, log)?;
        let mut variant = Variant {
            name: "microservices".into(),
            base: base.clone(),
            children: vec![(child, Some(stdin))],
            start_to_ready: None,
            processes: Vec::new(),
            ports_file: Some(ports_file.clone()),
            compose: None,
            successors: Successors::default(),
            replicas: Vec::new(),
            placement: None,
            launch: None,
        };
        wait_ready(&http, &base, Duration::from_secs(60)).await?;
        variant.start_to_ready = Some(started.elapsed());
        // A gateway that calls nothing over the network (every service in
        // its process) is ready before the launcher has written the table.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ports_file.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ports: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&ports_file)
                .with_context(|| format!("reading {}", ports_file.display()))?,
        )?;
        let rows = ports["services"].as_array().cloned().unwrap_or_default();
        for row in &rows {
            // One process per group of the layout (named by its group).
            let name = row["process"].as_str().or(row["name"].as_str());
            if let (Some(pid), Some(name)) = (row["pid"].as_u64(), name)
                && !variant.processes.iter().any(|(_, p)| *p == pid as u32)
            {
                variant.processes.push((name.to_owned(), pid as u32));
            }
        }
        variant.placement = crate::record::Placement::of_ports(&ports);
        if let Some(launcher) = ports["launcher_pid"].as_u64() {
            variant
                .processes
                .push(("launcher".to_owned(), launcher as u32));
        }
        Ok(variant)
    }

    /// Starts the microservices placed by the layout `preset` (`up
    /// --layout`), named `microservices@<preset>`, each process's runtime
    /// sized by `budget` for that many processes.
    pub async fn microservices_placed(
        bin: &Path,
        scratch: &Path,
        preset: &crate::budget::Preset,
        extra: &[String],
        budget: &Budget,
    ) -> anyhow::Result<Variant> {
        let mut extra = extra.to_vec();
        extra.extend(["--layout".to_owned(), preset.name.to_owned()]);
        let workers = budget.placed_env(preset);
        let env: Vec<(&str, &str)> = workers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut variant =
            Self::microservices_with(bin, scratch, &extra, &env, None, budget).await?;
        variant.name = preset.variant.to_owned();
        Ok(variant)
    }

    /// A deployment someone else runs, at `base`.
    pub async fn external(name: &str, base: &str) -> anyhow::Result<Variant> {
        wait_ready(&ready_client()?, base, Duration::from_secs(10)).await?;
        Ok(Variant {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            children: Vec::new(),
            start_to_ready: None,
            processes: Vec::new(),
            ports_file: None,
            compose: None,
            successors: Successors::default(),
            replicas: Vec::new(),
            placement: None,
            launch: None,
        })
    }

    /// Brings `name`'s compose project up (its images built already) with
    /// the edge on a fresh loopback port; start-to-ready runs from `up` to
    /// the first ready answer: the cold start of the whole variant.
    /// `storage` (`memory` or `durable`) goes to every container.
    pub async fn compose(workspace: &Path, name: &str, storage: &str) -> anyhow::Result<Variant> {
        let project = crate::target::compose::Project::new(workspace, name)?;
        let port = free_port().await?;
        let base = format!("http://127.0.0.1:{port}");
        let http = ready_client()?;
        let started = Instant::now();
        project.up(port, storage)?;
        wait_ready(&http, &base, Duration::from_secs(120))
            .await
            .with_context(|| format!("{name} under compose"))?;
        let start_to_ready = started.elapsed();
        let replicas = project
            .containers()
            .into_iter()
            .map(|(service, id)| (service, crate::target::compose::start_to_listening(&id)))
            .collect();
        Ok(Variant {
            name: name.to_owned(),
            base,
            children: Vec::new(),
            start_to_ready: Some(start_to_ready),
            processes: project.processes(),
            ports_file: None,
            compose: Some(project),
            successors: Successors::default(),
            replicas,
            placement: None,
            launch: None,
        })
    }

    /// The PIDs of its processes now (containers restart with new ones).
    fn live_pids(&self) -> Vec<u32> {
        match &self.compose {
            Some(project) => project.pids(),
            None => self.pids(),
        }
    }

    /// The PIDs of its processes now: [`Variant::processes`], except that
    /// a one-process variant the harness restarted or upgraded is its
    /// newest successor still running. A fault drawn after a restart must
    /// reach the process serving, not the one that exited (chaos rounds
    /// signalled the first PID again, and their restart's new process
    /// found the port taken, until session 18).
    pub fn pids(&self) -> Vec<u32> {
        if let [_] = self.processes.as_slice()
            && let Some(pid) = self
                .successors
                .lock()
                .iter()
                .rev()
                .filter_map(|(child, _)| child.id())
                .find(|pid| !crate::procfs::exited(*pid))
        {
            return vec![pid];
        }
        self.processes.iter().map(|(_, pid)| *pid).collect()
    }

    /// Ports it listens on: one per service from the ports file or the
    /// compose project, else one.
    pub fn ports(&self) -> u64 {
        if let Some(project) = &self.compose {
            return project.containers().len() as u64;
        }
        self.ports_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["services"].as_array().map(|rows| rows.len() as u64))
            .unwrap_or(1)
    }

    /// Where one microservice listens, from the launcher's ports file
    /// (local processes only: under compose the services are on a private
    /// network).
    pub fn service_addr(&self, service: &str) -> Option<String> {
        service_entry(self.ports_file.as_ref()?, service).map(|(_, addr)| addr)
    }

    /// The current PID of one microservice (it changes when the launcher
    /// restarts it).
    pub fn service_pid(&self, service: &str) -> Option<u32> {
        service_entry(self.ports_file.as_ref()?, service).map(|(pid, _)| pid)
    }

    /// A reader of [`Variant::rss_bytes`] that owns what it needs, for a
    /// sampling thread (the processes as they are now).
    pub fn rss_reader(&self) -> impl Fn() -> Option<u64> + Send + 'static {
        let pids = self.live_pids();
        move || rss_sum(&pids)
    }

    /// Resident memory of every process of the variant, bytes (Linux).
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_sum(&self.live_pids())
    }

    /// Under compose: resident memory of each container's processes, by
    /// service (None for a container not running).
    pub fn replica_rss(&self) -> Vec<(String, Option<u64>)> {
        let Some(project) = &self.compose else {
            return Vec::new();
        };
        project
            .containers()
            .into_iter()
            .map(|(service, id)| {
                (
                    service,
                    rss_sum(&crate::target::compose::container_pids(&id)),
                )
            })
            .collect()
    }

    /// A meter of the CPU of every process of the variant (as they are
    /// now: a process restarted later is not followed), by process where
    /// the variant has several: a local process each,
    /// or a container each under compose.
    pub fn cpu_meter(&self) -> crate::cpu::CpuMeter {
        use crate::cpu::CpuMeter;
        match &self.compose {
            // The published port's userland proxy carries every request
            // into the containers from outside them: its CPU is the
            // deployment's too, named apart.
            Some(project) => {
                let mut groups = project.pids_by_service();
                if let Some(port) = self.base.rsplit(':').next() {
                    let proxy = crate::procfs::with_args("docker-proxy", &["-host-port", port]);
                    if !proxy.is_empty() {
                        groups.push((crate::record::PUBLISHED_PORT_PROXY.to_owned(), proxy));
                    }
                }
                CpuMeter::of_groups(groups)
            }
            None => CpuMeter::of_groups(
                self.processes
                    .iter()
                    .map(|(name, pid)| (name.clone(), vec![*pid]))
                    .collect(),
            ),
        }
    }

    /// CPU time used so far by every process of the variant, seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.cpu_meter().seconds()
    }

    /// A zero-downtime upgrade of a microlith started with
    /// `--upgrade-socket PATH`: starts a successor with the same arguments
    /// and `--take-over PATH`, which takes the listening socket and then
    /// the state while the running process drains and exits. `None` for
    /// anything else.
    pub fn upgrade(
        &self,
        runtime: tokio::runtime::Handle,
    ) -> Option<impl FnOnce() + Send + 'static> {
        let launch = self.launch.clone()?;
        let socket = launch
            .args
            .iter()
            .position(|a| a == "--upgrade-socket")
            .and_then(|i| launch.args.get(i + 1))
            .cloned()?;
        let successors = self.successors.clone();
        Some(move || {
            let _inside = runtime.enter();
            match launch.spawn(&["--take-over".to_owned(), socket]) {
                Ok((child, stdin)) => successors.lock().push((child, Some(stdin))),
                Err(e) => eprintln!("could not start the successor: {e:#}"),
            }
        })
    }

    /// A restart of a one-process variant, as a process supervisor
    /// (systemd, a container engine) does it: `end` is given the process's
    /// PID (to signal it); once the process has exited, it is started
    /// again with the same arguments, listening on the same port. `None`
    /// for a variant of several processes.
    pub fn restart(
        &self,
        runtime: tokio::runtime::Handle,
        end: impl FnOnce(u32) + Send + 'static,
    ) -> Option<impl FnOnce() + Send + 'static> {
        let launch = self.launch.clone()?;
        let [_] = self.processes.as_slice() else {
            return None;
        };
        let pid = *self.pids().first()?;
        let successors = self.successors.clone();
        Some(move || {
            end(pid);
            // A graceful stop drains for up to the edge's deadline.
            let deadline = Instant::now() + Duration::from_secs(15);
            while !crate::procfs::exited(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !crate::procfs::exited(pid) {
                // A second process could not take the port: say so rather
                // than start one that fails to bind.
                eprintln!("process {pid} did not exit within 15 s: not restarted");
                return;
            }
            let _inside = runtime.enter();
            match launch.spawn(&[]) {
                Ok((child, stdin)) => successors.lock().push((child, Some(stdin))),
                Err(e) => eprintln!("could not restart {}: {e:#}", launch.binary.display()),
            }
        })
    }

    /// Stops what we started: close stdin (a graceful drain), then kill
    /// whatever has not exited after 10 s.
    pub async fn stop(mut self) {
        let successors: Vec<_> = self.successors.lock().drain(..).collect();
        self.children.extend(successors);
        if let Some(project) = self.compose.take() {
            tokio::task::spawn_blocking(move || project.down())
                .await
                .ok();
        }
        for (mut child, stdin) in self.children.drain(..) {
            drop(stdin);
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// One microservice's current PID and address in a launcher's ports
/// file (the launcher rewrites it when it restarts a service).
pub fn service_entry(ports_file: &Path, service: &str) -> Option<(u32, String)> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let row = ports["services"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == service)?;
    Some((
        u32::try_from(row["pid"].as_u64()?).ok()?,
        row["addr"].as_str()?.to_owned(),
    ))
}
