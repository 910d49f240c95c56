//! `microservices`: the bank and chat as separate services.
//!
//! - `microservices up --listen 127.0.0.1:8081` starts every service as a
//!   child process on loopback and supervises them.
//! - `microservices serve <service> --listen ADDR` runs one service (for
//!   containers and Kubernetes).

use std::net::SocketAddr;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use microservices::launcher::UpArgs;
use microservices::layout::Group;
use microservices::process::{ServiceArgs, ServiceKind};

/// The same allocator in both variants (mimalloc): the C library's malloc
/// was a tenth of the microservices' CPU under load, and musl's (the
/// container images) is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve API.md from a set of networked services.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start every service on loopback, wait until healthy, restart any
    /// that dies; Ctrl-C stops them all.
    Up(UpArgs),
    /// Make a private CA and a certificate per service for --mtls, and a
    /// service-token signing key for --service-tokens (`up` does this by
    /// itself at every start; Kubernetes mounts them from Secrets).
    Certs {
        /// Where to write ca.pem, <service>.pem, <service>.key and token.key.
        #[arg(long, default_value = "data/microservices/pki")]
        out: std::path::PathBuf,
    },
    /// GET a URL, exit 0 on a 2xx and 1 otherwise (the container health
    /// check; the images have no shell or curl). An https:// URL is asked
    /// over mutual TLS with `--as`'s certificate from `--pki-dir`, as the
    /// services require under --mtls.
    Probe {
        /// For example http://127.0.0.1:7001/healthz.
        url: String,
        /// The private CA and certificates, for an https:// URL.
        #[arg(long, requires = "as_name")]
        pki_dir: Option<std::path::PathBuf>,
        /// Whose certificate to present, for an https:// URL.
        #[arg(long = "as", id = "as_name", requires = "pki_dir")]
        as_name: Option<String>,
    },
    /// Run one service, or a group of them in one process
    /// (`accounts+transfers`: they call each other in-process).
    Serve {
        /// Which service, or services joined by `+`.
        service: Group,
        /// Where it listens: `ADDR` for one service, `service=ADDR` for
        /// each of a group (repeat `--listen`).
        #[arg(long, env = "MICROSERVICES_SERVICE_LISTEN", required = true)]
        listen: Vec<String>,
        /// Every service's knobs.
        #[command(flatten)]
        args: ServiceArgs,
    },
}

/// Each component of `group` and the address `--listen` gave it.
fn listen_addrs(
    group: &Group,
    listen: &[String],
) -> anyhow::Result<Vec<(ServiceKind, SocketAddr)>> {
    if let ([kind], [addr]) = (group.kinds(), listen)
        && !addr.contains('=')
    {
        return Ok(vec![(*kind, addr.parse()?)]);
    }
    let mut addrs = Vec::new();
    for item in listen {
        let (name, addr) = item
            .split_once('=')
            .ok_or_else(|| anyhow::format_err!("--listen {item}: a group needs service=ADDR"))?;
        let kind = group
            .kinds()
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| anyhow::format_err!("--listen {item}: {name} is not in {group}"))?;
        anyhow::ensure!(
            !addrs.iter().any(|(k, _)| *k == kind),
            "--listen {item}: {name} given twice"
        );
        addrs.push((kind, addr.parse()?));
    }
    for kind in group.kinds() {
        anyhow::ensure!(
            addrs.iter().any(|(k, _)| k == kind),
            "no --listen {}=ADDR",
            kind.name()
        );
    }
    Ok(addrs)
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Cmd::Up(up), Some(("up", given))) = (&mut cli.command, matches.subcommand()) {
        up.forwarded = microservices::launcher::forwarded_env(given);
    }
    if let Cmd::Probe {
        url,
        pki_dir,
        as_name,
    } = &cli.command
    {
        let timeout = std::time::Duration::from_secs(2);
        match (pki_dir, as_name) {
            (Some(dir), Some(name)) => microservices::pki::probe_tls(url, dir, name, timeout)?,
            _ => edge::probe::probe(url, timeout).map_err(|e| anyhow::format_err!("{url}: {e}"))?,
        }
        return Ok(());
    }
    microservices::pki::install_crypto_provider();
    // MICROSERVICES_LOG_SPANS=1 logs every request span as it closes, with
    // its trace_id, span_id and parent_span_id: one request's hops join up.
    let span_events = if std::env::var_os("MICROSERVICES_LOG_SPANS").is_some() {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_span_events(span_events)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("microservices=info,edge=info,warn")),
        )
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    match &cli.command {
        Cmd::Serve { args, .. } => {
            if let Some(workers) = args.workers {
                runtime.worker_threads(workers.max(1));
            }
        }
        // The launcher only starts, watches and restarts its children.
        Cmd::Up(_) | Cmd::Certs { .. } | Cmd::Probe { .. } => {
            runtime.worker_threads(1);
        }
    }
    let runtime = runtime.enable_all().build()?;
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Up(args) => microservices::launcher::up(args, shutdown_signal()).await,
            Cmd::Certs { out } => {
                let names = microservices::launcher::generate_deployment(&out)?;
                println!(
                    "wrote a private CA, certificates for {} and a service-token key to {}",
                    names.join(", "),
                    out.display()
                );
                Ok(())
            }
            Cmd::Probe { .. } => Ok(()),
            Cmd::Serve {
                service,
                listen,
                args,
            } => {
                let mut listeners = Vec::new();
                for (kind, addr) in listen_addrs(&service, &listen)? {
                    let listener = edge::listen::bind(addr)
                        .map_err(|e| anyhow::format_err!("binding {addr}: {e}"))?;
                    listeners.push((kind, listener));
                }
                let shutdown = CancellationToken::new();
                let on_signal = shutdown.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    on_signal.cancel();
                });
                microservices::process::serve(&service, args, listeners, shutdown).await
            }
        }
    });
    // Don't wait for a blocking read of stdin (--exit-on-stdin-eof) that
    // may never end: everything that mattered has stopped.
    runtime.shutdown_background();
    result
}

async fn shutdown_signal() {
    edge::interrupted().await;
    tracing::info!("shutting down");
}
