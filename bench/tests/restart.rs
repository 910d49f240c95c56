//! A one-process variant restarted twice by the harness, as a chaos round
//! may draw: each restart must end the process serving at that moment
//! (not the first one, long gone) and start the next on the same port.

mod common;

use std::time::{Duration, Instant};

use bench::target::local::Variant;

#[test]
fn a_second_restart_reaches_the_process_the_first_one_started() -> anyhow::Result<()> {
    let bin = common::built(&["monolith"])?;
    // As the harness's main does: reqwest here brings no crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new()?;
    let budget = bench::budget::Budget::of_machine(bench::record::Sizing::Sized);
    let variant = rt.block_on(Variant::monolith(&bin, &[], &budget))?;
    let outcome = (|| {
        let mut seen = vec![*variant.pids().first().expect("a pid")];
        for round in 1..=3 {
            let restart = variant
                .restart(rt.handle().clone(), kill)
                .expect("a one-process variant restarts");
            restart();
            let now = *variant.pids().first().expect("a pid");
            anyhow::ensure!(
                !seen.contains(&now),
                "restart {round} left the variant at {now} (before: {seen:?})"
            );
            for old in &seen {
                anyhow::ensure!(
                    bench::procfs::exited(*old),
                    "restart {round}: {old} still runs"
                );
            }
            anyhow::ensure!(
                ready(&rt, &variant.base),
                "restart {round}: {now} does not answer on {}",
                variant.base
            );
            seen.push(now);
        }
        Ok(())
    })();
    rt.block_on(variant.stop());
    outcome
}

fn kill(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}

/// Whether `base` answers `/readyz` 200 within 10 s.
fn ready(rt: &tokio::runtime::Runtime, base: &str) -> bool {
    let http = reqwest::Client::new();
    let url = format!("{base}/readyz");
    let deadline = Instant::now() + Duration::from_secs(10);
    rt.block_on(async {
        while Instant::now() < deadline {
            if let Ok(answer) = http.get(&url).send().await
                && answer.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    })
}
