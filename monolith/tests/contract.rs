//! The black-box contract suite of API.md against the plain monolith, over
//! a real socket on 127.0.0.1:0.

use std::sync::OnceLock;
use std::time::Duration;

/// A monolith on 127.0.0.1:0 in a thread with its own 2-worker runtime,
/// for the whole test binary.
fn base() -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let config = monolith::Config {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            storage: store::StorageMode::Memory,
            subscriber_buffer: 64,
            // Small, so durable runs read settled transfers back from disk.
            keep_settled: 64,
            keep_messages: 16,
            session_buffer: 64,
            fault_injection: false,
            edge: edge::EdgeConfig {
                request_timeout: Duration::from_secs(3),
                max_in_flight: 1024,
                latency_target: edge::latency_target(edge::LATENCY_TARGET_MS),
                ws_send_timeout: Duration::from_secs(1),
                server_timing: true,
            },
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
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
                if let Err(e) = monolith::run(config, listener, std::future::pending()).await {
                    eprintln!("monolith failed: {e}");
                }
            });
        });
        format!("http://{}", addr_rx.recv().expect("server started"))
    })
    .clone()
}

contract::contract_tests!(base());

/// Fault injection is off unless asked for.
#[tokio::test]
async fn admin_routes_are_off_by_default() -> anyhow::Result<()> {
    let api = contract::Api::new(&base())?.resending_overload(contract::OVERLOAD_RESENDS);
    api.post_text("/admin/crash/transfers", "{}")
        .await?
        .expect_error(404, "not_found")?;
    api.get("/admin/targets")
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}
