//! A variant's real binary over a durable store, for the crash tests:
//! started on a free loopback port, ready once `/readyz` answers 200,
//! killed with SIGKILL, restarted on the same store, and stopped by
//! closing its stdin (`--exit-on-stdin-eof`), so a failed test leaves no
//! process behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Api;

/// How long a start may take before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// One variant's binary, durable over `dir`, always on the same port.
pub struct Binary {
    exe: PathBuf,
    dir: PathBuf,
    port: u16,
    args: Vec<String>,
    running: Option<Child>,
}

impl Binary {
    /// The binary at `exe` (`env!("CARGO_BIN_EXE_…")`) over the store in
    /// `dir`, with `args` added to its listen, storage and stdin flags.
    pub fn new(exe: &str, dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Self {
            exe: exe.into(),
            dir: dir.to_path_buf(),
            port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            running: None,
        })
    }

    /// A client of its edge.
    pub fn api(&self) -> anyhow::Result<Api> {
        Api::new(&format!("http://127.0.0.1:{}", self.port))
    }

    /// Starts it and waits until it is ready.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.running.is_some() {
            bail!("already running");
        }
        let mut child = Command::new(&self.exe)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--storage", "durable", "--data-dir"])
            .arg(&self.dir)
            .arg("--exit-on-stdin-eof")
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let api = self.api()?;
        let since = Instant::now();
        while since.elapsed() < READY_WITHIN {
            if api.get("/readyz").await.is_ok_and(|a| a.status == 200) {
                self.running = Some(child);
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                bail!("{} exited while starting: {status}", self.exe.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "{} was not ready within {READY_WITHIN:?}",
            self.exe.display()
        )
    }

    /// SIGKILL: nothing of the process runs after this.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.running.take().context("not running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Closes its stdin, so it shuts down on its own, and waits for it.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let mut child = self.running.take().context("not running")?;
        drop(child.stdin.take());
        child.wait()?;
        Ok(())
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.running.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
