//! The container's first process (`microlith --init`): the zero-downtime
//! upgrade inside one container.
//!
//! In a container the first process is the container: when it exits, the
//! kernel kills everything else in it. So the microlith cannot hand over
//! to a successor and exit (see [`crate::upgrade`]) while it is process 1.
//! `--init` makes process 1 a small supervisor instead, in the manner of
//! tini or Docker's `--init`, that
//!
//! - starts the microlith as its child, with the same arguments and an
//!   upgrade socket (`--upgrade-socket`, by default `<data-dir>/upgrade.sock`);
//! - on SIGHUP (`docker kill -s HUP`, or `microlith --signal-upgrade` run
//!   inside the container) starts a successor from the binary on disk now
//!   (`--take-over`), which takes the listening socket and the state over
//!   while the old child drains and exits;
//! - forwards SIGTERM and SIGINT to every child and exits once they have;
//! - exits with the serving child's status when it dies, so the engine's
//!   restart policy applies as it would to the microlith alone; a
//!   successor that dies before taking over leaves the old child serving.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// The environment variable that turns `--init` on; removed for the
/// children, which must serve.
pub const ENV: &str = "MICROLITH_INIT";

/// The child's arguments: this process's own without `--init`, with an
/// upgrade socket if none was given.
pub fn child_args(
    own: impl IntoIterator<Item = OsString>,
    upgrade_socket: Option<&Path>,
    data_dir: &Path,
) -> (Vec<OsString>, PathBuf) {
    let mut args: Vec<OsString> = own.into_iter().filter(|a| a != "--init").collect();
    let socket = match upgrade_socket {
        Some(path) => path.to_path_buf(),
        None => {
            let path = data_dir.join("upgrade.sock");
            args.extend(["--upgrade-socket".into(), path.clone().into_os_string()]);
            path
        }
    };
    (args, socket)
}

fn spawn(binary: &Path, args: &[OsString], extra: &[OsString]) -> std::io::Result<Child> {
    Command::new(binary)
        .args(args)
        .args(extra)
        .env_remove(ENV)
        .spawn()
}

fn forward(child: &Child, sig: rustix::process::Signal) {
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// The exit code a child's status stands for (128 + signal when killed).
fn code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Supervises the microlith as described above; returns the exit code.
pub async fn run(binary: PathBuf, args: Vec<OsString>, socket: PathBuf) -> anyhow::Result<i32> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut serving = spawn(&binary, &args, &[])?;
    // Children handed over from, draining; the newest last.
    let mut retiring: Vec<Child> = Vec::new();
    let mut reap = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let take_over = ["--take-over".into(), socket.clone().into_os_string()];
                match spawn(&binary, &args, &take_over) {
                    Ok(successor) => {
                        tracing::info!(pid = successor.id(), "upgrade: a successor is taking over");
                        retiring.push(std::mem::replace(&mut serving, successor));
                    }
                    Err(e) => tracing::error!(error = %e, "upgrade: could not start a successor; the running microlith keeps serving"),
                }
            }
            status = serving.wait() => {
                let status = status?;
                // A successor that died before its predecessor finished
                // handing over: the predecessor is still the one serving.
                let mut still_running = None;
                while let Some(mut old) = retiring.pop() {
                    if old.try_wait()?.is_none() {
                        still_running = Some(old);
                        break;
                    }
                }
                match still_running {
                    Some(old) => {
                        tracing::error!(%status, "upgrade: the successor exited before taking over; the running microlith keeps serving");
                        serving = old;
                    }
                    None => {
                        tracing::warn!(%status, "the microlith exited");
                        return Ok(code(status));
                    }
                }
            }
            _ = reap.tick() => {
                // Reap the children that finished draining.
                let mut i = 0;
                while i < retiring.len() {
                    if let Some(status) = retiring[i].try_wait()? {
                        tracing::info!(%status, "upgrade: the predecessor drained and exited");
                        retiring.swap_remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            _ = async { tokio::select! { _ = terminate.recv() => {}, _ = interrupt.recv() => {} } } => {
                for child in retiring.iter().chain(std::iter::once(&serving)) {
                    forward(child, rustix::process::Signal::TERM);
                }
                let status = serving.wait().await?;
                for mut old in retiring {
                    let _ = old.wait().await;
                }
                return Ok(code(status));
            }
        }
    }
}

/// `microlith --signal-upgrade`: asks the supervisor, process 1 of this
/// container, to start a successor.
pub fn signal_upgrade() -> anyhow::Result<()> {
    let init =
        rustix::process::Pid::from_raw(1).ok_or_else(|| anyhow::format_err!("no process 1"))?;
    rustix::process::kill_process(init, rustix::process::Signal::HUP)
        .map_err(|e| anyhow::format_err!("signalling process 1: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_serves_with_the_same_arguments_and_an_upgrade_socket() {
        let own = ["--init", "--storage", "durable"].map(OsString::from);
        let (args, socket) = child_args(own.clone(), None, Path::new("/data"));
        assert_eq!(
            args,
            [
                "--storage",
                "durable",
                "--upgrade-socket",
                "/data/upgrade.sock"
            ]
            .map(OsString::from)
        );
        assert_eq!(socket, Path::new("/data/upgrade.sock"));
        let own = ["--upgrade-socket", "/run/u.sock", "--init"].map(OsString::from);
        let (args, socket) = child_args(own, Some(Path::new("/run/u.sock")), Path::new("/data"));
        assert_eq!(
            args,
            ["--upgrade-socket", "/run/u.sock"].map(OsString::from)
        );
        assert_eq!(socket, Path::new("/run/u.sock"));
    }
}
