//! `monolith`: the bank and chat as plain calls in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The same allocator in every variant (mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve API.md from one process of plain in-process components.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address of the HTTP edge.
    #[arg(long, env = "MONOLITH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Storage engine.
    #[arg(long, env = "MONOLITH_STORAGE", value_enum, default_value = "memory")]
    storage: store::StorageKind,
    /// Directory of the durable store.
    #[arg(long, env = "MONOLITH_DATA_DIR", default_value = "data/monolith")]
    data_dir: PathBuf,
    /// Request deadline at the edge, milliseconds.
    #[arg(long, env = "MONOLITH_REQUEST_TIMEOUT_MS", default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Requests in flight at the edge before 429.
    #[arg(long, env = "MONOLITH_MAX_IN_FLIGHT", default_value_t = 4096)]
    max_in_flight: usize,
    /// Latency target, milliseconds: when even the fastest request of a
    /// 100 ms window takes longer (or the runtime's timers wake a tenth of
    /// it late), the edge limits requests in flight to what finishes
    /// within it and refuses the rest with 429 (0: only the in-flight
    /// bound applies).
    #[arg(long, env = "MONOLITH_LATENCY_TARGET_MS", default_value_t = edge::LATENCY_TARGET_MS)]
    latency_target_ms: u64,
    /// Messages a WebSocket reader may fall behind before it is disconnected.
    #[arg(long, env = "MONOLITH_SESSION_BUFFER", default_value_t = 1024)]
    session_buffer: usize,
    /// Settled transfers kept in memory with durable storage (the rest
    /// are read back from disk when asked for); memory storage keeps all.
    #[arg(long, env = "MONOLITH_KEEP_SETTLED", default_value_t = shared_domain::bank::KEEP_SETTLED)]
    keep_settled: usize,
    /// Messages each room keeps in memory with durable storage (older
    /// pages and repeated posts are read back from disk); memory storage
    /// keeps all.
    #[arg(long, env = "MONOLITH_KEEP_MESSAGES", default_value_t = shared_domain::chat::KEEP_MESSAGES)]
    keep_messages: usize,
    /// Answer requests sampled by their `traceparent` (flag 01) with their
    /// timing in `Server-Timing`. Off by default.
    #[arg(long, env = "MONOLITH_SERVER_TIMING")]
    server_timing: bool,
    /// Serve POST /admin/crash/{component} for fault injection. Off by
    /// default.
    #[arg(long, env = "MONOLITH_FAULT_INJECTION")]
    fault_injection: bool,
    /// Shut down gracefully when standard input closes (for a parent, such
    /// as the benchmark harness, that must not leave this process behind).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Tokio worker threads (default: one per core).
    #[arg(long, env = "MONOLITH_WORKERS")]
    workers: Option<usize>,
    /// Instead of serving: GET this URL, exit 0 on a 2xx and 1 otherwise
    /// (the container health check; the images have no shell or curl).
    #[arg(long, value_name = "URL")]
    probe: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(url) = &cli.probe {
        edge::probe::probe(url, Duration::from_secs(2))
            .map_err(|e| anyhow::format_err!("{url}: {e}"))?;
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(concat!(env!("CARGO_CRATE_NAME"), "=info,edge=info"))
        }))
        // Standard output carries only the line saying where it listens.
        .with_writer(std::io::stderr)
        .init();
    edge::log_panics();
    let config = monolith::Config {
        listen: cli.listen,
        storage: cli.storage.mode(&cli.data_dir),
        subscriber_buffer: 256,
        keep_settled: cli.keep_settled,
        keep_messages: cli.keep_messages,
        session_buffer: cli.session_buffer,
        fault_injection: cli.fault_injection,
        edge: edge::EdgeConfig {
            request_timeout: Duration::from_millis(cli.request_timeout_ms),
            max_in_flight: cli.max_in_flight,
            latency_target: edge::latency_target(cli.latency_target_ms),
            ws_send_timeout: Duration::from_secs(5),
            server_timing: cli.server_timing,
        },
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = cli.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build()?;
    let exit_on_eof = cli.exit_on_stdin_eof;
    let result = runtime.block_on(async move {
        let listener = edge::listen::bind(config.listen)
            .map_err(|e| anyhow::format_err!("binding {}: {e}", config.listen))?;
        monolith::run(config, listener, edge::stop_requested(exit_on_eof)).await?;
        anyhow::Ok(())
    });
    // Don't wait for a blocking read of stdin that may never end.
    runtime.shutdown_background();
    result
}
