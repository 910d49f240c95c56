//! The harness's own trivial server, `GET /echo`: the floor of every
//! measurement (client, loopback, HTTP server, with no system behind it),
//! and the split of the harness's CPU between it and the generator.

use std::time::Duration;

/// CPU seconds used so far by this process's threads: the echo server's
/// thread (named `echo`) and all the others, from each thread's
/// `schedstat` (nanoseconds on the CPU). `None` off Linux.
pub fn harness_cpu_seconds() -> Option<(f64, f64)> {
    let threads = crate::procfs::threads(crate::procfs::Proc::This)?;
    let (rest, echo) = split_cpu(threads.iter().map(|t| (t.name.as_str(), t.run_ns)));
    Some((rest as f64 / 1e9, echo as f64 / 1e9))
}

/// CPU nanoseconds used so far by this process's threads, summed by thread
/// name, in the order the names are first met. `None` off Linux.
pub fn cpu_by_thread_name() -> Option<Vec<(String, u64)>> {
    let threads = crate::procfs::threads(crate::procfs::Proc::This)?;
    Some(cpu_by_name(
        threads.iter().map(|t| (t.name.as_str(), t.run_ns)),
    ))
}

/// Sums the threads' CPU nanoseconds by name.
fn cpu_by_name<'a>(threads: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<(String, u64)> {
    let mut by_name: Vec<(String, u64)> = Vec::new();
    for (name, ns) in threads {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 += ns,
            None => by_name.push((name.to_owned(), ns)),
        }
    }
    by_name
}

/// Sums the threads' CPU nanoseconds into the rest and the echo thread's.
fn split_cpu<'a>(threads: impl IntoIterator<Item = (&'a str, u64)>) -> (u64, u64) {
    let by_name = cpu_by_name(threads);
    let echo = by_name
        .iter()
        .filter(|(n, _)| n == ECHO_THREAD)
        .map(|(_, ns)| ns)
        .sum();
    let rest = by_name
        .iter()
        .filter(|(n, _)| n != ECHO_THREAD)
        .map(|(_, ns)| ns)
        .sum();
    (rest, echo)
}

const ECHO_THREAD: &str = "echo";

/// Serves `GET /echo` on a runtime of its own: the floor of the harness
/// (client, loopback, HTTP server) with no system behind it.
pub fn start() -> anyhow::Result<(String, tokio_util::sync::DropGuard)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(ECHO_THREAD)
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let Ok(addr) = listener.local_addr() else {
                return;
            };
            let _ = tx.send(addr);
            let app = axum::Router::new().route("/echo", axum::routing::get(|| async { "ok" }));
            // As the systems' edges: Nagle off.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10))?;
    Ok((format!("http://{addr}"), stop.drop_guard()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread named like the echo server's burns 50 ms of its own CPU;
    /// the accounting puts it on the echo's side, not the generator's.
    #[test]
    fn harness_cpu_is_split_between_the_echo_thread_and_the_rest() {
        let (_, e0) = harness_cpu_seconds().expect("schedstat");
        let (burnt_tx, burnt_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let burner = std::thread::Builder::new()
            .name(ECHO_THREAD.into())
            .spawn(move || {
                let goal = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000_000,
                };
                let mut x = 0u64;
                while rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime) < goal {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                let _ = burnt_tx.send(());
                // Alive until measured: a thread is counted while it lives.
                let _ = done_rx.recv();
            })
            .expect("spawn");
        burnt_rx.recv().expect("burnt");
        let (_, e1) = harness_cpu_seconds().expect("schedstat");
        drop(done_tx);
        let _ = burner.join();
        // At least what the echo thread burnt. (Not an equality, nor a
        // check of the rest: tests in parallel start and end threads of
        // their own, named echo or not, between the two readings.)
        assert!(e1 - e0 >= 0.05, "echo {:.3} s", e1 - e0);
    }

    #[test]
    fn cpu_is_summed_by_thread_name() {
        let threads = [
            ("echo", 100),
            ("tokio-runtime-w", 50),
            ("echo", 20),
            ("bench", 7),
        ];
        assert_eq!(split_cpu(threads), (57, 120));
    }
}
