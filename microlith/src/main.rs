//! `microlith`: the bank and chat as supervised actors in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The same allocator in both variants (mimalloc): the C library's malloc
/// was a tenth of the microservices' CPU under load, and musl's (the
/// container images) is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve API.md from one process of supervised actors.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address of the HTTP edge.
    #[arg(long, env = "MICROLITH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Storage engine.
    #[arg(long, env = "MICROLITH_STORAGE", value_enum, default_value = "memory")]
    storage: store::StorageKind,
    /// Directory of the durable store.
    #[arg(long, env = "MICROLITH_DATA_DIR", default_value = "data/microlith")]
    data_dir: PathBuf,
    /// Account shards (actors).
    #[arg(long, env = "MICROLITH_ACCOUNT_SHARDS", default_value_t = 8)]
    account_shards: usize,
    /// Transfer journal shards (actors).
    #[arg(long, env = "MICROLITH_JOURNAL_SHARDS", default_value_t = 8)]
    journal_shards: usize,
    /// Mailbox capacity per actor.
    #[arg(long, env = "MICROLITH_MAILBOX", default_value_t = 1024)]
    mailbox: usize,
    /// Actor call timeout, milliseconds.
    #[arg(long, env = "MICROLITH_CALL_TIMEOUT_MS", default_value_t = 1000)]
    call_timeout_ms: u64,
    /// Request deadline at the edge, milliseconds.
    #[arg(long, env = "MICROLITH_REQUEST_TIMEOUT_MS", default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Requests in flight at the edge before 429.
    #[arg(long, env = "MICROLITH_MAX_IN_FLIGHT", default_value_t = 4096)]
    max_in_flight: usize,
    /// Latency target, milliseconds: when even the fastest request of a
    /// 100 ms window takes longer (or the runtime's timers wake a tenth of
    /// it late), the edge limits requests in flight to what finishes
    /// within it and refuses the rest with 429 (0: only the in-flight
    /// bound applies).
    #[arg(long, env = "MICROLITH_LATENCY_TARGET_MS", default_value_t = edge::LATENCY_TARGET_MS)]
    latency_target_ms: u64,
    /// Messages a WebSocket reader may fall behind before it is disconnected.
    #[arg(long, env = "MICROLITH_SESSION_BUFFER", default_value_t = 1024)]
    session_buffer: usize,
    /// Settled transfers kept in memory with durable storage, over all
    /// journal shards (the rest are read back from disk when asked for);
    /// memory storage keeps all.
    #[arg(long, env = "MICROLITH_KEEP_SETTLED", default_value_t = shared_domain::bank::KEEP_SETTLED)]
    keep_settled: usize,
    /// Messages each room keeps in memory with durable storage (older
    /// pages and repeated posts are read back from disk); memory storage
    /// keeps all.
    #[arg(long, env = "MICROLITH_KEEP_MESSAGES", default_value_t = shared_domain::chat::KEEP_MESSAGES)]
    keep_messages: usize,
    /// Restarts tolerated per supervisor within --restart-window-ms.
    #[arg(long, env = "MICROLITH_MAX_RESTARTS", default_value_t = 100)]
    max_restarts: u32,
    /// Restart intensity window, milliseconds.
    #[arg(long, env = "MICROLITH_RESTART_WINDOW_MS", default_value_t = 1000)]
    restart_window_ms: u64,
    /// Answer requests sampled by their `traceparent` (flag 01) with their
    /// timing, actor call by actor call, in `Server-Timing`. Off by default.
    #[arg(long, env = "MICROLITH_SERVER_TIMING")]
    server_timing: bool,
    /// Serve POST /admin/crash/{actor} for fault injection. Off by default.
    #[arg(long, env = "MICROLITH_FAULT_INJECTION")]
    fault_injection: bool,
    /// Shut down gracefully when standard input closes (for a parent, such
    /// as the benchmark harness, that must not leave this process behind).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Tokio worker threads (default: one per core).
    #[arg(long, env = "MICROLITH_WORKERS")]
    workers: Option<usize>,
    /// Wait on this Unix socket for a successor (`--take-over`): hand it
    /// the listening socket and, once drained and stopped, the state.
    #[arg(long, env = "MICROLITH_UPGRADE_SOCKET", value_name = "PATH")]
    upgrade_socket: Option<PathBuf>,
    /// Take the listening socket and the state over from the microlith
    /// waiting on this Unix socket (a zero-downtime upgrade: no connection
    /// is refused; `--listen` is then ignored). Use the same storage.
    #[arg(long, value_name = "PATH")]
    take_over: Option<PathBuf>,
    /// Run as the container's first process: supervise the microlith as a
    /// child and start a successor that takes over on SIGHUP (the
    /// zero-downtime upgrade inside one container); see `init` in the docs.
    #[arg(long, env = microlith::init::ENV)]
    init: bool,
    /// Instead of serving: ask the supervisor (`--init`, process 1 of this
    /// container) to upgrade, by sending it SIGHUP.
    #[arg(long)]
    signal_upgrade: bool,
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
    if cli.signal_upgrade {
        return microlith::init::signal_upgrade();
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(concat!(env!("CARGO_CRATE_NAME"), "=info,edge=info"))
        }))
        .init();
    microlith::log_panics();
    if cli.init {
        let mut own = std::env::args_os();
        // The binary on disk under the name it was started by, so a
        // successor runs whatever is there now.
        let binary = match own.next().map(PathBuf::from) {
            Some(path) if path.components().count() > 1 => path,
            _ => std::env::current_exe()?,
        };
        let (args, socket) =
            microlith::init::child_args(own, cli.upgrade_socket.as_deref(), &cli.data_dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let code = runtime.block_on(microlith::init::run(binary, args, socket))?;
        std::process::exit(code);
    }
    let config = microlith::Config {
        listen: cli.listen,
        storage: cli.storage.mode(&cli.data_dir),
        account_shards: cli.account_shards,
        journal_shards: cli.journal_shards,
        mailbox: cli.mailbox,
        call_timeout: Duration::from_millis(cli.call_timeout_ms),
        subscriber_buffer: 256,
        keep_settled: cli.keep_settled,
        keep_messages: cli.keep_messages,
        session_buffer: cli.session_buffer,
        max_restarts: cli.max_restarts,
        restart_window: Duration::from_millis(cli.restart_window_ms),
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
    let result = runtime.block_on(async move {
        let listener = match cli.take_over.clone() {
            Some(path) => {
                let taken = tokio::task::spawn_blocking(move || {
                    let taken = microlith::upgrade::TakeOver::connect(&path).map_err(|e| anyhow::format_err!("taking over from {}: {e}", path.display()))?;
                    tracing::info!(addr = ?taken.listener.local_addr().ok(), "took the listening socket over; waiting for the state");
                    anyhow::Ok(taken.released()?)
                })
                .await??;
                tokio::net::TcpListener::from_std(taken)?
            }
            None => edge::listen::bind(config.listen)
                .map_err(|e| anyhow::format_err!("binding {}: {e}", config.listen))?,
        };
        // A successor, when one connects: it gets a duplicate of the
        // listening socket at once, and the state after the drain.
        let upgrading = tokio_util::sync::CancellationToken::new();
        let successor = std::sync::Arc::new(parking_lot::Mutex::new(None));
        if let Some(path) = &cli.upgrade_socket {
            let handover = microlith::upgrade::Handover::bind(path).map_err(|e| anyhow::format_err!("{}: {e}", path.display()))?;
            let spare = std::os::fd::AsFd::as_fd(&listener).try_clone_to_owned()?;
            let (slot, token) = (successor.clone(), upgrading.clone());
            tokio::task::spawn_blocking(move || match handover.wait(&spare) {
                Ok(s) => {
                    tracing::info!("a successor took the listening socket; draining and releasing the state");
                    *slot.lock() = Some(s);
                    token.cancel();
                }
                Err(e) => tracing::warn!(error = %e, "upgrade socket failed; no upgrade possible"),
            });
        }
        let exit_on_eof = cli.exit_on_stdin_eof;
        let shutdown = edge::stop_requested(exit_on_eof);
        // An upgrade drains gently: half a second of answers that close
        // their connections, then the stop.
        let drain = microlith::Drain {
            started: upgrading.clone(),
            grace: Duration::from_millis(500),
        };
        // A successor may find the store still closing: a little patience.
        let mut attempts = 0;
        let storage = loop {
            match store::Storage::open(&config.storage, "microlith") {
                Ok(s) => break s,
                Err(e) if cli.take_over.is_some() && attempts < 100 => {
                    attempts += 1;
                    tracing::warn!(error = %e, "store not free yet; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(anyhow::format_err!("opening storage: {e}")),
            }
        };
        microlith::run_with_storage(config, storage, listener, shutdown, drain).await?;
        let successor = successor.lock().take();
        if let Some(s) = successor {
            s.released()?;
            tracing::info!("state released to the successor");
        }
        anyhow::Ok(())
    });
    // Don't wait for a blocking read of stdin that may never end.
    runtime.shutdown_background();
    result
}
