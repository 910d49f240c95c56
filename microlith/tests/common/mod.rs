#![allow(clippy::mod_module_files)]
//! Shared test helpers: a microlith on 127.0.0.1:0 in its own runtime.

#![allow(dead_code)]

use std::time::Duration;

use store::StorageMode;

/// A test configuration: small buffers so overload paths are reachable.
pub(crate) fn config(storage: StorageMode, fault_injection: bool) -> microlith::Config {
    microlith::Config {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        storage,
        account_shards: 4,
        journal_shards: 2,
        mailbox: 1024,
        call_timeout: Duration::from_secs(2),
        subscriber_buffer: 64,
        // Small, so durable runs read settled transfers back from disk.
        keep_settled: 64,
        keep_messages: 16,
        session_buffer: 64,
        max_restarts: 1000,
        restart_window: Duration::from_secs(1),
        fault_injection,
        edge: edge::EdgeConfig {
            request_timeout: Duration::from_secs(3),
            max_in_flight: 1024,
            latency_target: edge::latency_target(edge::LATENCY_TARGET_MS),
            ws_send_timeout: Duration::from_secs(1),
            server_timing: true,
        },
    }
}

/// A running server: its base URL and a handle that stops it when dropped.
pub(crate) struct Server {
    pub(crate) base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a microlith in a thread with its own 2-worker runtime.
    pub(crate) fn start(config: microlith::Config) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                if let Err(e) = microlith::run(config, listener, async {
                    let _ = stop_rx.await;
                })
                .await
                {
                    // Panics are logged through tracing in these tests; say it plainly.
                    eprintln!("microlith failed: {e}");
                }
            });
        });
        let addr = addr_rx.recv().expect("server started");
        Server {
            base: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server and waits for it (graceful shutdown).
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
