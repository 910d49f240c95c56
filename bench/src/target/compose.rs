//! Both variants under Docker Compose (`--deploy compose`): each variant's
//! compose file (`microlith/compose.yml`, `microservices/compose.yml`) is
//! brought up as its own project on a fresh loopback port, measured like
//! the local processes (its containers' main processes are host
//! processes, so RSS and CPU are read the same way), and torn down with
//! its volumes afterwards, on error and on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, bail};

/// Projects up right now, for the Ctrl-C handler to tear down.
static LIVE: Mutex<Vec<(Vec<String>, PathBuf, String)>> = Mutex::new(Vec::new());

/// One variant's compose project.
#[derive(Debug)]
pub struct Project {
    program: Vec<String>,
    file: PathBuf,
    name: String,
    /// Torn down already (by `down`, so dropping it does nothing more).
    gone: std::sync::atomic::AtomicBool,
}

/// `docker compose` (the plugin) if it answers, else `docker-compose`.
fn program() -> anyhow::Result<Vec<String>> {
    use crate::target::build::ok;
    if ok(Command::new("docker").args(["compose", "version"])) {
        Ok(vec!["docker".into(), "compose".into()])
    } else if ok(Command::new("docker-compose").arg("version")) {
        Ok(vec!["docker-compose".into()])
    } else {
        bail!(
            "neither `docker compose` nor `docker-compose` answers: --deploy compose needs Docker Compose"
        )
    }
}

fn command(program: &[String], file: &Path, name: &str) -> Command {
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..])
        .arg("-p")
        .arg(name)
        .arg("-f")
        .arg(file);
    cmd
}

fn down(program: &[String], file: &Path, name: &str) {
    let _ = command(program, file, name)
        .args(["down", "-v", "--remove-orphans", "-t", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Project {
    /// The project of `variant` (its `<variant>/compose.yml`), named
    /// uniquely for this run.
    pub fn new(workspace: &Path, variant: &str) -> anyhow::Result<Self> {
        let file = workspace.join(variant).join("compose.yml");
        if !file.exists() {
            bail!("no compose file at {}", file.display());
        }
        Ok(Self {
            program: program()?,
            file,
            name: format!("mvm-{variant}-{}", std::process::id()),
            gone: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// `up -d` with the edge published on `127.0.0.1:port` and `storage`
    /// (`memory` or `durable`) in every container; registered for
    /// tear-down before it starts, so a failed start is cleaned up too.
    pub fn up(&self, port: u16, storage: &str) -> anyhow::Result<()> {
        if let Ok(mut live) = LIVE.lock() {
            live.push((self.program.clone(), self.file.clone(), self.name.clone()));
        }
        let out = command(&self.program, &self.file, &self.name)
            .env("MVM_PORT", port.to_string())
            .env("MVM_STORAGE", storage)
            // As when the harness starts them itself: sampled requests are
            // answered with their timing (`breakdown`).
            .env("MVM_SERVER_TIMING", "true")
            .args(["up", "-d"])
            .output()
            .context("running compose up")?;
        if !out.status.success() {
            bail!(
                "compose up of {} failed:\n{}",
                self.file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Container id of each service (running or not).
    pub fn containers(&self) -> Vec<(String, String)> {
        let services = command(&self.program, &self.file, &self.name)
            .args(["config", "--services"])
            .output();
        let Ok(services) = services else {
            return Vec::new();
        };
        String::from_utf8_lossy(&services.stdout)
            .lines()
            .filter_map(|service| {
                let id = command(&self.program, &self.file, &self.name)
                    .args(["ps", "-q", service])
                    .output()
                    .ok()?;
                let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
                (!id.is_empty()).then(|| (service.to_owned(), id))
            })
            .collect()
    }

    /// The host PIDs of every process in every running container.
    pub fn pids(&self) -> Vec<u32> {
        self.pids_by_service()
            .into_iter()
            .flat_map(|(_, pids)| pids)
            .collect()
    }

    /// Each running container's service and the host PIDs of its processes.
    pub fn pids_by_service(&self) -> Vec<(String, Vec<u32>)> {
        self.containers()
            .into_iter()
            .map(|(service, id)| (service, container_pids(&id)))
            .collect()
    }

    /// Every process in every running container, named by its service.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.pids_by_service()
            .into_iter()
            .flat_map(|(service, pids)| pids.into_iter().map(move |pid| (service.clone(), pid)))
            .collect()
    }

    /// Tears the project down with its volumes (once).
    pub fn down(&self) {
        if self.gone.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        down(&self.program, &self.file, &self.name);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|(_, _, name)| *name != self.name);
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.down();
    }
}

/// The host PID of a running container's main process.
pub fn container_pid(id: &str) -> Option<u32> {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", id])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// The host PIDs of a running container's processes: its main process
/// and its descendants (the microlith's init has the microlith as its
/// child, and a successor beside it during an upgrade).
pub fn container_pids(id: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = container_pid(id).into_iter().collect();
    let mut i = 0;
    while i < pids.len() {
        let pid = pids[i];
        pids.extend(crate::procfs::children(pid));
        i += 1;
    }
    pids
}

/// How long a container took from the engine starting its process to the
/// process announcing that it serves (its first `listening <name> <addr>`
/// line on stdout, printed once its state is loaded and its socket bound);
/// both instants are the Docker engine's own (`State.StartedAt` and the
/// log line's timestamp), so no polling interval is added. Meant right
/// after the start: a restarted container has a later StartedAt.
pub fn start_to_listening(id: &str) -> Option<std::time::Duration> {
    let started = Command::new("docker")
        .args(["inspect", "-f", "{{.State.StartedAt}}", id])
        .output()
        .ok()?;
    let started =
        chrono::DateTime::parse_from_rfc3339(String::from_utf8_lossy(&started.stdout).trim())
            .ok()?;
    let logs = Command::new("docker")
        .args(["logs", "--timestamps", id])
        .output()
        .ok()?;
    let logs = String::from_utf8_lossy(&logs.stdout);
    let line = logs
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("listening"))?;
    let listening = chrono::DateTime::parse_from_rfc3339(line.split_whitespace().next()?).ok()?;
    (listening - started).to_std().ok()
}

/// Runs `docker args`; says so when it fails (a fault that was not
/// injected must not pass for one that was).
pub fn docker(args: &[&str]) -> bool {
    match Command::new("docker").args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "docker {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("docker {} could not run: {e}", args.join(" "));
            false
        }
    }
}

/// The networks a container is attached to.
pub fn networks(id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            id,
        ])
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// On Ctrl-C or SIGTERM: tear down every project still up, remove the
/// run's scratch directory `unfinished`, then exit (130). Child processes
/// started here exit by themselves when this process ends (their stdin
/// closes).
pub fn tear_down_on_interrupt(runtime: &tokio::runtime::Handle, unfinished: PathBuf) {
    runtime.spawn(async move {
        edge::interrupted().await;
        let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
        if !live.is_empty() {
            eprintln!(
                "\ninterrupted: tearing down {} compose project(s)...",
                live.len()
            );
        }
        for (program, file, name) in live {
            down(&program, &file, &name);
        }
        // The run's directory holds only the systems' scratch data until
        // the results are written at the end: an interrupted run leaves
        // nothing behind (and a finished one only its results).
        if unfinished.join("raw.json").exists() {
            let _ = std::fs::remove_dir_all(unfinished.join("tmp"));
        } else if unfinished.exists() {
            eprintln!("removing the unfinished run {}", unfinished.display());
            let _ = std::fs::remove_dir_all(&unfinished);
        }
        std::process::exit(130);
    });
}
