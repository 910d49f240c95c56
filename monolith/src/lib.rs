//! The plain monolith: the shared edge over the shared in-process
//! components ([`shared_domain::local`]) and their stores, in one process,
//! with no actors and no supervision: a handler calls a component, which
//! takes its lock, runs the domain's transition, commits and answers.
//!
//! It is the third point of the comparison: what the microlith's actors
//! and supervisors cost over plain calls, and what they buy when a
//! component fails. A panic in a handler ends only that request's
//! connection (tokio contains it; there is nothing to restart); a
//! process that cannot persist stops, so whatever runs it restarts it and
//! it reloads its store.
//!
//! # Layout
//! - [`Config`]: the knobs.
//! - [`Monolith`]: the components wired to each other and to the edge.
//! - [`tripwire`]: fault injection (`POST /admin/crash/{component}`).

pub mod tripwire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use edge::unfit::{Fatal, Unfit};
use shared_domain::known::KnownAccounts;
use shared_domain::local::{LocalAccounts, LocalJournal, LocalLedger, LocalRooms};
use shared_domain::service::Pause;
use store::{AccountStore, ChatStore, JournalStore, Storage, StorageMode};

use crate::tripwire::{Tripwires, trip};

/// Every knob of the monolith.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the edge listens.
    pub listen: SocketAddr,
    /// Memory or durable (redb) storage.
    pub storage: StorageMode,
    /// How far a room subscriber may fall behind before it resubscribes.
    pub subscriber_buffer: usize,
    /// Settled transfers kept in memory with durable storage.
    pub keep_settled: usize,
    /// Messages each room keeps in memory with durable storage.
    pub keep_messages: usize,
    /// How far a WebSocket reader may fall behind before it is disconnected.
    pub session_buffer: usize,
    /// Serve `/admin/crash/{component}` (fault injection for the harness).
    pub fault_injection: bool,
    /// Edge limits.
    pub edge: edge::EdgeConfig,
}

/// Why the monolith could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not be opened or read.
    #[error("storage: {0}")]
    Storage(#[from] store::StoreError),
    /// The listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    /// A commit failed: the state is ahead of the store.
    #[error("a change could not be persisted; exiting so that the store is reloaded on restart")]
    Unfit,
}

/// The accounts as the saga and the edge see them: the payee cache every
/// fabric puts in front of its accounts, over the plain component.
type Accounts = KnownAccounts<LocalAccounts<Option<Fatal<AccountStore>>>>;
/// The journal over its store.
type Journal = LocalJournal<Option<Fatal<JournalStore>>>;

/// The components, wired.
pub struct Monolith {
    services: edge::Services,
    transfers: Arc<edge::transfers::SagaTransfers<Journal, Accounts>>,
    unfit: Unfit,
    stop: CancellationToken,
}

/// Ready while every commit has succeeded.
struct Probe(Unfit);

#[async_trait]
impl edge::Probe for Probe {
    async fn ready(&self) -> Result<(), String> {
        if self.0.is_raised() {
            Err("a change could not be persisted; stopping".into())
        } else {
            Ok(())
        }
    }
}

impl Monolith {
    /// Loads every component's state from `storage` and wires them.
    pub fn start(config: &Config, storage: &Storage) -> Result<Self, RunError> {
        let unfit = Unfit::default();
        let stop = CancellationToken::new();
        // Memory storage keeps nothing beyond the process (nothing
        // restarts inside it), so there is nothing to persist.
        fn keep<S>(storage: &Storage, store: S, unfit: &Unfit) -> Option<Fatal<S>> {
            storage.is_durable().then(|| Fatal::new(store, unfit))
        }
        let accounts_store = AccountStore::new(storage.namespace("accounts"));
        let book = accounts_store.load()?;
        let accounts = Arc::new(KnownAccounts::new(LocalAccounts::restored(
            book,
            keep(storage, accounts_store, &unfit),
        )));
        let journal_store = JournalStore::new(storage.namespace("journal"));
        let transfers_book = if storage.is_durable() {
            journal_store.load_bounded(config.keep_settled)?
        } else {
            journal_store.load()?
        };
        let journal = Arc::new(LocalJournal::restored(
            transfers_book,
            keep(storage, journal_store, &unfit),
        ));
        let chat_store = ChatStore::new(storage.clone());
        let chat = if storage.is_durable() {
            chat_store.load_bounded(config.keep_messages)?
        } else {
            chat_store.load()?
        };
        let rooms = Arc::new(LocalRooms::restored(
            chat,
            keep(storage, chat_store, &unfit),
            config.subscriber_buffer,
            Arc::new(edge::now_us),
        ));
        // The same pause as the microlith's in-process saga.
        let pause: Arc<dyn Pause> = Arc::new(edge::backoff::Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(200),
            stop.clone(),
        ));
        let transfers = Arc::new(edge::transfers::SagaTransfers::new(
            journal.clone(),
            accounts.clone(),
            pause.clone(),
        ));
        let sessions = Arc::new(edge::session::TaskSessions::new(
            rooms.clone(),
            pause,
            config.session_buffer,
            config.edge.ws_send_timeout,
        ));
        let services = edge::Services {
            accounts: accounts.clone(),
            transfers: transfers.clone(),
            ledger: Arc::new(LocalLedger::new(accounts, journal)),
            rooms,
            sessions,
            probe: Arc::new(Probe(unfit.clone())),
            admin: None,
            metrics: None,
        };
        Ok(Self {
            services,
            transfers,
            unfit,
            stop,
        })
    }

    /// The edge's services.
    pub fn services(&self) -> edge::Services {
        self.services.clone()
    }
}

/// Opens the store, serves the edge on `listener` until `shutdown` (or
/// until a commit fails), then drains requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let storage = Storage::open(&config.storage, "monolith")?;
    edge::ops::prometheus();
    let system = Monolith::start(&config, &storage)?;
    system.transfers.resume_in_background();
    let mut services = system.services();
    // Fault injection costs the request path nothing unless it is on.
    let wires = config.fault_injection.then(Tripwires::default);
    if let Some(wires) = &wires {
        services.admin = Some(Arc::new(wires.clone()));
    }
    let mut router = edge::router(services, config.edge.clone());
    if let Some(wires) = wires {
        router = router.layer(axum::middleware::from_fn_with_state(wires, trip));
    }
    let unfit = system.unfit.clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            () = unfit.raised() => {}
        }
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, storage = ?config.storage, "monolith serving");
    // One line on stdout once the state is loaded and the socket bound,
    // as the other variants print: how a container's start is timed.
    println!("listening monolith {addr}");
    let served = edge::serve(listener, router, shutdown).await;
    system.stop.cancel();
    tracing::info!("monolith stopped");
    served?;
    if system.unfit.is_raised() {
        return Err(RunError::Unfit);
    }
    Ok(())
}
