//! A whole microservices system for tests: `microservices up` as a child
//! process on loopback, read back through its ports file. The launcher's
//! stdin is a pipe held here; when the test process ends, the pipe closes
//! and the launcher stops every service (no orphans, even on a panic).

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) pid: u32,
    pub(crate) restarts: u32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Ports {
    pub(crate) gateway: String,
    pub(crate) services: Vec<Row>,
}

pub(crate) struct Cluster {
    pub(crate) base: String,
    child: Child,
    stdin: Option<ChildStdin>,
    ports_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts every service; `durable` keeps state in redb under a
    /// temporary directory inside the target dir.
    pub(crate) fn start(durable: bool, extra: &[&str]) -> Cluster {
        microservices::pki::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("microservices-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir");
        let ports_file = dir.path().join("ports.json");
        let mut command = Command::new(env!("CARGO_BIN_EXE_microservices"));
        command
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--exit-on-stdin-eof",
                "--ports-file",
            ])
            .arg(&ports_file)
            .args([
                "--storage",
                if durable { "durable" } else { "memory" },
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .args(extra)
            // Small, so durable runs read settled transfers back from disk.
            .env("MICROSERVICES_KEEP_SETTLED", "64")
            .env("MICROSERVICES_KEEP_MESSAGES", "16")
            .env(
                "RUST_LOG",
                std::env::var("CLUSTER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("starting microservices up");
        let stdin = child.stdin.take().expect("stdin");
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            if let Ok(text) = std::fs::read_to_string(&ports_file)
                && let Ok(ports) = serde_json::from_str::<Ports>(&text)
            {
                break ports.gateway;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("microservices up exited: {status} {err}");
            }
            assert!(
                Instant::now() < deadline,
                "microservices up did not become ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Cluster {
            base,
            child,
            stdin: Some(stdin),
            ports_file,
            _dir: dir,
        }
    }

    /// The data directory passed to `up`.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// The launcher's current table.
    pub(crate) fn ports(&self) -> Ports {
        let text = std::fs::read_to_string(&self.ports_file).expect("ports file");
        serde_json::from_str(&text).expect("ports json")
    }

    /// One service's row.
    pub(crate) fn service(&self, name: &str) -> Row {
        self.ports()
            .services
            .into_iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Sends a signal to one service's process (`KILL`, `STOP`, `CONT`).
    pub(crate) fn signal(&self, name: &str, signal: &str) {
        let pid = self.service(name).pid;
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing stdin asks for a graceful stop; make sure the launcher is
        // gone before the temp dir is removed.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
