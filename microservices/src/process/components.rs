//! The components of one process, and what they offer each other: a
//! component of the same group is called in-process through the shared
//! traits, any other over the network (gRPC clients with deadlines,
//! retry budgets and breakers; HTTP/JSON for the ledger), as when split.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use edge::unfit::{Fatal, Unfit};
use shared_domain::known::KnownAccounts;
use shared_domain::local::{LocalAccounts, LocalJournal, LocalRooms};
use shared_domain::service::{
    AccountsService, LedgerService, Pause, RoomsService, TransferJournal, TransfersService,
};
use store::{AccountStore, ChatStore, JournalStore};

use crate::clients::{Downstream, GrpcAccounts, GrpcRooms, GrpcTransfers};
use crate::layout::Group;
use crate::ledger::{Feed, HttpLedger, HttpSink, JournalPending, Ledger, Pending, Sink, Snapshot};
use crate::resilience::Breaker;
use crate::servers::{AccountsServer, ChatServer, TransfersServer};
use crate::settlement::Settlement;
use crate::wire::pb;

use super::{Credentials, MAX_REQUEST_BYTES, ServiceArgs, ServiceKind, serving};

/// The accounts component over its store.
type Accounts = LocalAccounts<Option<Fatal<AccountStore>>>;
/// The transfer journal over its store.
type Journal = LocalJournal<Option<Fatal<JournalStore>>>;

/// A component as a caller reaches it, and the breaker in front of it
/// when it is remote.
type Reached<T> = (Arc<T>, Option<Arc<Breaker>>);

/// The components this process has built so far, for the ones built after
/// them (start order: accounts, chat, ledger, transfers, gateway).
pub(super) struct InProcess {
    group: Group,
    unfit: Unfit,
    accounts: Option<Arc<Accounts>>,
    journal: Option<Arc<Journal>>,
    /// Every journal record, for a read model to start from: the store's
    /// when durable (the journal keeps only some settled ones in memory).
    journal_committed: Option<Snapshot>,
    rooms: Option<Arc<dyn RoomsService>>,
    ledger: Option<Arc<Ledger>>,
    transfers: Option<Arc<dyn TransfersService>>,
}

impl InProcess {
    pub(super) fn new(group: &Group, unfit: &Unfit) -> Self {
        Self {
            group: group.clone(),
            unfit: unfit.clone(),
            accounts: None,
            journal: None,
            journal_committed: None,
            rooms: None,
            ledger: None,
            transfers: None,
        }
    }

    /// The accounts for a caller in this process, and the breaker in
    /// front of them when they are remote.
    pub(super) fn accounts(
        &self,
        args: &ServiceArgs,
        tokens: &Credentials,
    ) -> anyhow::Result<Reached<dyn AccountsService>> {
        if let Some(local) = &self.accounts {
            return Ok((local.clone(), None));
        }
        let remote = GrpcAccounts::new(
            Downstream::new(&args.client("accounts", &args.accounts_url, tokens)?)?,
            args.transfer_path,
        );
        let breaker = remote.downstream().breaker().clone();
        Ok((Arc::new(remote), Some(breaker)))
    }

    /// The transfers for the gateway.
    pub(super) fn transfers(
        &self,
        args: &ServiceArgs,
        tokens: &Credentials,
    ) -> anyhow::Result<Arc<dyn TransfersService>> {
        match &self.transfers {
            Some(local) => Ok(local.clone()),
            None => Ok(Arc::new(GrpcTransfers(Downstream::new(&args.client(
                "transfers",
                &args.transfers_url,
                tokens,
            )?)?))),
        }
    }

    /// Whether the rooms are served by another process.
    pub(super) fn rooms_remote(&self) -> bool {
        self.rooms.is_none()
    }

    /// The rooms for the gateway.
    pub(super) fn rooms(
        &self,
        args: &ServiceArgs,
        tokens: &Credentials,
    ) -> anyhow::Result<Arc<dyn RoomsService>> {
        match &self.rooms {
            Some(local) => Ok(local.clone()),
            None => Ok(Arc::new(GrpcRooms(Downstream::new(&args.client(
                "chat",
                &args.chat_url,
                tokens,
            )?)?))),
        }
    }

    /// The audit for the gateway.
    pub(super) fn audit(
        &self,
        args: &ServiceArgs,
        tokens: &Credentials,
    ) -> anyhow::Result<Arc<dyn LedgerService>> {
        match &self.ledger {
            Some(local) => Ok(local.clone()),
            None => Ok(Arc::new(HttpLedger::new(
                args.http(ServiceKind::Gateway)?,
                &args.ledger_url,
                Duration::from_millis(args.call_timeout_ms),
                Breaker::new("ledger", args.breaker()),
                tokens.minter.clone(),
            )?)),
        }
    }

    /// Which components the gateway reaches over the network (its
    /// readiness asks them).
    pub(super) fn remote(&self) -> Vec<ServiceKind> {
        [
            ServiceKind::Accounts,
            ServiceKind::Transfers,
            ServiceKind::Chat,
            ServiceKind::Ledger,
        ]
        .into_iter()
        .filter(|k| !self.group.has(*k))
        .collect()
    }

    /// The journal, loaded from its store the first time it is asked for
    /// (by the ledger or the transfers service of this process).
    fn journal(&mut self, args: &ServiceArgs) -> anyhow::Result<Arc<Journal>> {
        if let Some(journal) = &self.journal {
            return Ok(journal.clone());
        }
        let storage = args.storage(ServiceKind::Transfers)?;
        let durable = storage.is_durable();
        let store = JournalStore::new(storage.namespace("journal"));
        let book = if durable {
            store.load_bounded(args.keep_settled)?
        } else {
            store.load()?
        };
        let on_disk = durable.then(|| store.clone());
        let store = durable.then(|| Fatal::new(store, &self.unfit));
        let journal = Arc::new(LocalJournal::restored(book, store));
        // What the ledger's read model starts from: one pass over the
        // store's records (a bounded book holds only the newest), or the
        // book, which holds every record in memory.
        self.journal_committed = Some(match on_disk {
            Some(store) => Arc::new(move || Ok(store.committed()?)),
            None => {
                let journal = journal.clone();
                Arc::new(move || Ok(journal.committed()))
            }
        });
        self.journal = Some(journal.clone());
        Ok(journal)
    }

    /// The accounts service.
    pub(super) async fn accounts_routes(
        &mut self,
        routes: tonic::service::Routes,
        reporter: &tonic_health::server::HealthReporter,
        args: &ServiceArgs,
    ) -> anyhow::Result<tonic::service::Routes> {
        let storage = args.storage(ServiceKind::Accounts)?;
        let durable = storage.is_durable();
        let store = AccountStore::new(storage.namespace("accounts"));
        let book = store.load()?;
        let tombstones = store.tombstones(edge::now_us())?;
        let store = durable.then(|| Fatal::new(store, &self.unfit));
        let accounts = Arc::new(LocalAccounts::restored(book, store));
        // Settled transfers' step records are dropped behind the fence,
        // which keeps the tombstones this book persisted.
        let settlement = {
            let (settle, count) = (accounts.clone(), accounts.clone());
            Settlement::new(
                Duration::from_millis(args.call_timeout_ms),
                Duration::from_millis(args.max_clock_skew_ms),
                tombstones,
                move |ids, until_us| {
                    let settle = settle.clone();
                    Box::pin(async move { settle.settle(&ids, until_us).await })
                },
                move || count.step_records(),
            )
        };
        self.accounts = Some(accounts.clone());
        let server = AccountsServer::settling(accounts, settlement);
        let service = pb::bank::accounts_server::AccountsServer::new(server)
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        Ok(serving(routes, reporter, service).await)
    }

    /// The chat service.
    pub(super) async fn chat_routes(
        &mut self,
        routes: tonic::service::Routes,
        reporter: &tonic_health::server::HealthReporter,
        args: &ServiceArgs,
    ) -> anyhow::Result<tonic::service::Routes> {
        let storage = args.storage(ServiceKind::Chat)?;
        let durable = storage.is_durable();
        let store = ChatStore::new(storage);
        let state = if durable {
            store.load_bounded(args.keep_messages)?
        } else {
            store.load()?
        };
        let rooms: Arc<dyn RoomsService> = Arc::new(LocalRooms::restored(
            state,
            durable.then(|| Fatal::new(store, &self.unfit)),
            args.subscriber_buffer,
            Arc::new(edge::now_us),
        ));
        self.rooms = Some(rooms.clone());
        let service = pb::chat::chat_server::ChatServer::new(ChatServer(rooms))
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        Ok(serving(routes, reporter, service).await)
    }

    /// The ledger: its read model, auditing the accounts and the journal.
    pub(super) fn ledger(
        &mut self,
        args: &ServiceArgs,
        tokens: &Credentials,
    ) -> anyhow::Result<Arc<Ledger>> {
        let (accounts, _) = self.accounts(args, tokens)?;
        let pending: Arc<dyn Pending> = if self.group.has(ServiceKind::Transfers) {
            Arc::new(JournalPending(self.journal(args)?))
        } else {
            Arc::new(GrpcTransfers(Downstream::new(&args.client(
                "transfers",
                &args.transfers_url,
                tokens,
            )?)?))
        };
        let ledger = Ledger::new(accounts, pending);
        self.ledger = Some(ledger.clone());
        Ok(ledger)
    }

    /// The transfers service: the saga over its journal and the accounts.
    pub(super) async fn transfers_routes(
        &mut self,
        routes: tonic::service::Routes,
        reporter: &tonic_health::server::HealthReporter,
        args: &ServiceArgs,
        tokens: &Credentials,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<tonic::service::Routes> {
        let journal = self.journal(args)?;
        // The ledger's read model follows the journal's commits: through
        // its feed, over HTTP/JSON or to the ledger in this process.
        let sink: Arc<dyn Sink> = match &self.ledger {
            Some(ledger) => ledger.clone(),
            None => Arc::new(HttpSink::new(
                args.http(ServiceKind::Transfers)?,
                &args.ledger_url,
                tokens.minter.clone(),
            )?),
        };
        let snapshot = self
            .journal_committed
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the journal was loaded"))?;
        let feed = Feed::start(sink, 65_536, snapshot, shutdown.clone());
        journal.observe_commits(Arc::new(move |seq, record| feed.committed(seq, record)));
        let (accounts, accounts_breaker) = self.accounts(args, tokens)?;
        // The payee cache every fabric puts in front of its accounts.
        let accounts = Arc::new(KnownAccounts::new(accounts));
        let pause: Arc<dyn Pause> = Arc::new(edge::backoff::Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(500),
            shutdown.clone(),
        ));
        let transfers = Arc::new(edge::transfers::SagaTransfers::new(
            journal.clone(),
            accounts,
            pause,
        ));
        transfers.resume_in_background();
        self.transfers = Some(transfers.clone());
        let journal: Arc<dyn TransferJournal> = journal;
        let service = pb::bank::transfers_server::TransfersServer::new(TransfersServer {
            transfers,
            journal,
            accounts: accounts_breaker,
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
        Ok(serving(routes, reporter, service).await)
    }
}
