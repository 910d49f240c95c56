//! The launcher's children: started with their environment, awaited until
//! they announce and answer `/healthz`, stopped by closing their stdin.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::layout::Group;
use crate::process::ServiceKind;

/// A running child and the write end of its stdin (held apart, because
/// tokio's `Child::wait` closes a stdin it still owns, which the child
/// would read as "the launcher is gone").
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) stdin: Option<tokio::process::ChildStdin>,
}

/// Starts one process of `group`, its services on `addrs`, and waits for
/// each service's "listening" line; returns where each listens (a port 0
/// asked for is the one the system chose).
pub(super) async fn spawn_child(
    group: &Group,
    addrs: &[(ServiceKind, SocketAddr)],
    env: &[(String, String)],
) -> anyhow::Result<(Running, Vec<(ServiceKind, SocketAddr)>)> {
    let exe = std::env::current_exe().context("locating the microservices binary")?;
    let name = group.name();
    let mut command = Command::new(exe);
    command.args(["serve", &name, "--exit-on-stdin-eof"]);
    for (kind, addr) in addrs {
        command
            .arg("--listen")
            .arg(format!("{}={addr}", kind.name()));
    }
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut listening: Vec<(ServiceKind, SocketAddr)> = Vec::new();
    let announced = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut words = rest.split_whitespace();
                let (Some(service), Some(addr)) = (words.next(), words.next()) else {
                    bail!("{name} said {line:?}");
                };
                let kind = group
                    .kinds()
                    .iter()
                    .copied()
                    .find(|k| k.name() == service)
                    .with_context(|| format!("{name} announced {service}"))?;
                listening.push((kind, addr.parse::<SocketAddr>()?));
                if listening.len() == addrs.len() {
                    return Ok::<_, anyhow::Error>(true);
                }
                continue;
            }
            eprintln!("[{name}] {line}");
        }
        Ok(false)
    })
    .await;
    match announced {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => bail!(
            "{name} exited before listening (status {:?})",
            child.wait().await.ok()
        ),
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("{name} did not start listening within 30 s"),
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
    Ok((Running { child, stdin }, listening))
}

/// A loopback port free at the moment of asking.
pub(super) async fn free_port() -> anyhow::Result<SocketAddr> {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(probe.local_addr()?)
}

/// Waits until `/healthz` answers 200.
pub(super) async fn wait_healthy(
    http: &reqwest::Client,
    kind: ServiceKind,
    base: &str,
) -> anyhow::Result<()> {
    let url = format!("{base}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} at {base} not healthy within 30 s", kind.name());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops a child gracefully: close its stdin, wait, then kill.
pub(super) async fn stop_child(group: &Group, running: Running) {
    let Running { mut child, stdin } = running;
    drop(stdin);
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(process = %group, "did not drain within 5 s; killing");
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}
