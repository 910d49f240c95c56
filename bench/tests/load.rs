//! `bench load` against a microlith started here: one fixed-rate run
//! prints its line with every answer counted and the CPU of the given
//! process, and a second run against the same deployment opens accounts
//! of its own (no collision with the first run's).

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

#[test]
fn a_fixed_rate_run_against_a_running_deployment_prints_its_line() -> anyhow::Result<()> {
    let bin_dir = common::built(&["microlith"])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // Stdin piped: the microlith exits when this test drops it.
    let mut microlith = Command::new(bin_dir.join("microlith"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--exit-on-stdin-eof",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let pid = microlith.id().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let run = || -> anyhow::Result<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(["load", "--target", &base, "--rate", "100", "--seconds", "1"])
            .args(["--warmup", "0.2", "--pid", &pid])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "bench load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out.stdout.lines().next().transpose()?.unwrap_or_default())
    };
    let outcome = (|| -> anyhow::Result<()> {
        wait_ready(port)?;
        for _ in 0..2 {
            let line = run()?;
            anyhow::ensure!(line.starts_with("transfer at 100/s"), "{line}");
            // 100 recorded (after the warm-up's 20), every one answered (a
            // transfer the hot accounts cannot fund is refused with 409).
            let answered: u64 = line
                .split("answers ")
                .nth(1)
                .and_then(|rest| rest.split(" of ").next())
                .map(|answers| {
                    answers
                        .split(", ")
                        .filter_map(|a| a.split(' ').next()?.parse::<u64>().ok())
                        .sum()
                })
                .unwrap_or(0);
            anyhow::ensure!(line.contains("of 100 scheduled"), "{line}");
            anyhow::ensure!(answered == 100, "every request answered: {line}");
            anyhow::ensure!(!line.contains("error"), "{line}");
            let cpu = line
                .split("CPU per request ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|us| us.parse::<f64>().ok());
            anyhow::ensure!(cpu.is_some_and(|us| us > 0.0), "the pid's CPU: {line}");
        }
        Ok(())
    })();
    drop(microlith.stdin.take());
    let _ = microlith.kill();
    let _ = microlith.wait();
    outcome
}

fn wait_ready(port: u16) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            stream.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::bail!("the microlith did not become ready")
}
