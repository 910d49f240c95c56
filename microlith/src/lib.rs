//! The microlith: the bank and the chat as supervised actors in one
//! process, behind the shared axum edge.
//!
//! # Layout
//! - [`runtime`]: the actor runtime: actors, mailboxes, supervisors.
//! - [`component`]: the components as actors (account and journal shards,
//!   rooms, directory, sessions).
//! - [`system`]: the supervision tree and the service traits bound to it.
//! - [`config`]: the knobs.

pub mod component;
pub mod config;
pub mod init;
pub mod runtime;
pub mod system;
pub mod upgrade;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::TcpListener;

pub use config::Config;
pub use system::Microlith;

/// Why the microlith could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not be opened.
    #[error("opening storage: {0}")]
    Storage(#[from] store::StoreError),
    /// The listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

struct Probe(Arc<Microlith>);

#[async_trait]
impl edge::Probe for Probe {
    async fn ready(&self) -> Result<(), String> {
        self.0.ready().await
    }
}

struct Admin(Arc<Microlith>);

impl edge::Admin for Admin {
    fn crash(&self, target: &str) -> Result<(), String> {
        self.0.crash(target)
    }
    fn targets(&self) -> Vec<String> {
        self.0.actor_names()
    }
}

struct Gauges(Arc<Microlith>);

impl edge::MetricsSource for Gauges {
    fn refresh(&self) {
        for (actor, depth) in self.0.mailbox_depths() {
            metrics::gauge!("microlith_mailbox_depth", "actor" => actor).set(depth as f64);
        }
        for (i, records) in self
            .0
            .accounts
            .inner()
            .step_records()
            .into_iter()
            .enumerate()
        {
            metrics::gauge!("microlith_step_records", "actor" => format!("account-{i}"))
                .set(records as f64);
        }
    }
}

/// Logs panics as one tracing line instead of a backtrace on stderr: a
/// panic inside an actor is contained and restarted by its supervisor.
pub fn log_panics() {
    edge::log_panics();
}

/// The edge's services bound to a running microlith.
pub fn services(system: &Arc<Microlith>, fault_injection: bool) -> edge::Services {
    edge::Services {
        accounts: system.accounts.clone(),
        transfers: system.transfers.clone(),
        ledger: system.ledger.clone(),
        rooms: system.rooms.clone(),
        sessions: system.sessions.clone(),
        probe: Arc::new(Probe(system.clone())),
        admin: fault_injection.then(|| Arc::new(Admin(system.clone())) as Arc<dyn edge::Admin>),
        metrics: Some(Arc::new(Gauges(system.clone()))),
    }
}

/// Starts the actors and serves the edge on `listener` until `shutdown`,
/// then drains requests and stops every actor.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let storage = store::Storage::open(&config.storage, "microlith")?;
    run_with_storage(config, storage, listener, shutdown, Drain::none()).await
}

/// A gentler stop, for an upgrade: once `started`, every answer carries
/// `connection: close` for `grace`, so clients leave their keep-alive
/// connections by themselves (an idle connection the server closes can
/// race a request the client is just sending on it); then the edge stops
/// as on `shutdown`.
#[derive(Clone, Debug)]
pub struct Drain {
    /// Cancelled when the drain begins.
    pub started: tokio_util::sync::CancellationToken,
    /// How long answers say `connection: close` before the edge stops.
    pub grace: std::time::Duration,
}

impl Drain {
    /// No drain: only `shutdown` stops the edge.
    pub fn none() -> Self {
        Self {
            started: tokio_util::sync::CancellationToken::new(),
            grace: std::time::Duration::ZERO,
        }
    }
}

/// [`run`] on a store opened by the caller (a successor taking over
/// opens it once its predecessor has let go).
pub async fn run_with_storage(
    config: Config,
    storage: store::Storage,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Drain,
) -> Result<(), RunError> {
    edge::ops::prometheus();
    let system = Arc::new(Microlith::start(&config, storage));
    let draining = drain.started.clone();
    let router = edge::router(
        services(&system, config.fault_injection),
        config.edge.clone(),
    )
    .layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let draining = draining.is_cancelled();
            async move {
                if draining {
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                response
            }
        },
    ));
    let shutdown = async move {
        let drained = async {
            drain.started.cancelled().await;
            tokio::time::sleep(drain.grace).await;
        };
        tokio::select! {
            () = shutdown => {}
            () = drained => {}
        }
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, storage = ?config.storage, "microlith serving");
    // One line on stdout once the state is recovered and the socket bound,
    // as each microservice prints: how a container's start is timed.
    println!("listening microlith {addr}");
    let served = edge::serve(listener, router, shutdown).await;
    system.stop().await;
    tracing::info!("microlith stopped");
    Ok(served?)
}
