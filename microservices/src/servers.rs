//! The gRPC servers: each handler converts the request, calls the shared
//! service trait, and converts the answer. No business rule lives here.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use shared_domain::bank::Resolution;
use shared_domain::error::{BankResult, CallError};
use shared_domain::id::TransferId;
use shared_domain::service::{AccountsService, RoomsService, TransferJournal, TransfersService};

use crate::deadline::bounded;
use crate::settlement::{Settlement, deadline_of};
use crate::wire::pb::{bank as b, chat as c};
use crate::wire::{self, bank_call_status, chat_call_status};

/// `bank.v1.Accounts` over any accounts service.
pub struct AccountsServer {
    accounts: Arc<dyn AccountsService>,
    /// When the books forget settled transfers: every step goes through
    /// the fence ([`crate::settlement`]). Without it, `Settle` is refused
    /// and every step record is kept.
    settlement: Option<Arc<Settlement>>,
}

impl AccountsServer {
    /// Serves `accounts`, keeping every step record.
    pub fn new(accounts: Arc<dyn AccountsService>) -> Self {
        Self {
            accounts,
            settlement: None,
        }
    }

    /// Serves `accounts` whose settled transfers are forgotten behind
    /// `settlement`'s fence.
    pub fn settling(accounts: Arc<dyn AccountsService>, settlement: Arc<Settlement>) -> Self {
        Self {
            accounts,
            settlement: Some(settlement),
        }
    }

    /// Runs `apply` for `transfer_id` through the fence, if there is one.
    async fn fenced<T, R>(
        &self,
        transfer_id: &TransferId,
        request: &Request<R>,
        apply: impl Future<Output = BankResult<T>>,
    ) -> Result<T, Status> {
        match &self.settlement {
            Some(settlement) => {
                settlement
                    .guarded(transfer_id, deadline_of(request), apply)
                    .await?
            }
            None => apply.await,
        }
        .map_err(bank_call_status)
    }
}

#[tonic::async_trait]
impl b::accounts_server::Accounts for AccountsServer {
    async fn open(&self, request: Request<b::OpenRequest>) -> Result<Response<b::Account>, Status> {
        let (id, opening) = wire::open_request(request.get_ref())?;
        let view = self
            .accounts
            .open(id, opening)
            .await
            .map_err(bank_call_status)?;
        Ok(Response::new(wire::account_to_wire(&view)))
    }
    async fn balance(
        &self,
        request: Request<b::BalanceRequest>,
    ) -> Result<Response<b::Account>, Status> {
        let id = wire::balance_request(request.get_ref())?;
        let view = self.accounts.balance(&id).await.map_err(bank_call_status)?;
        Ok(Response::new(wire::account_to_wire(&view)))
    }
    async fn apply_step(
        &self,
        request: Request<b::ApplyStepRequest>,
    ) -> Result<Response<b::StepResult>, Status> {
        let step = wire::step_from_wire(request.get_ref())?;
        let transfer_id = step.transfer_id.clone();
        let result = self
            .fenced(&transfer_id, &request, self.accounts.apply_step(step))
            .await?;
        Ok(Response::new(wire::step_result_to_wire(result)))
    }
    async fn apply_transfer(
        &self,
        request: Request<b::TransferRequest>,
    ) -> Result<Response<b::TransferOutcome>, Status> {
        let transfer = wire::transfer_from_wire(request.get_ref())?;
        match self
            .fenced(
                &transfer.transfer_id,
                &request,
                self.accounts.apply_transfer(&transfer),
            )
            .await?
        {
            Some(Resolution::Resolved(status)) => {
                Ok(Response::new(wire::outcome_status_to_wire(status)))
            }
            // Refused before money moved: the domain error itself, so the
            // caller rebuilds the same `Abandon`.
            Some(Resolution::Abandon(e)) => Err(bank_call_status(CallError::Domain(e))),
            None => Err(Status::unimplemented(
                "these accounts apply transfers one step at a time",
            )),
        }
    }
    async fn totals(
        &self,
        _request: Request<b::TotalsRequest>,
    ) -> Result<Response<b::Totals>, Status> {
        let totals = self.accounts.totals().await.map_err(bank_call_status)?;
        Ok(Response::new(wire::totals_to_wire(totals)))
    }
    async fn settle(
        &self,
        request: Request<b::SettleRequest>,
    ) -> Result<Response<b::SettleResponse>, Status> {
        let Some(settlement) = &self.settlement else {
            return Err(Status::unimplemented(
                "these accounts keep every step record",
            ));
        };
        let ids = wire::settle_request(request.get_ref())?;
        settlement.settle(&ids).await.map_err(bank_call_status)?;
        Ok(Response::new(b::SettleResponse {}))
    }
}

/// `bank.v1.Transfers` over the saga host and its journal.
pub struct TransfersServer {
    /// Runs transfers.
    pub transfers: Arc<dyn TransfersService>,
    /// Answers the pending count.
    pub journal: Arc<dyn TransferJournal>,
    /// The breaker towards the accounts: while it is open, a new transfer
    /// is refused at once (`UNAVAILABLE`, nothing recorded) instead of
    /// being journaled and left pending until the accounts return.
    pub accounts: Option<Arc<crate::resilience::Breaker>>,
}

#[tonic::async_trait]
impl b::transfers_server::Transfers for TransfersServer {
    async fn transfer(
        &self,
        request: Request<b::TransferRequest>,
    ) -> Result<Response<b::TransferRecord>, Status> {
        let transfer = wire::transfer_from_wire(request.get_ref())?;
        if let Some(breaker) = &self.accounts
            && breaker.state() == crate::resilience::BreakerState::Open
        {
            return Err(bank_call_status(CallError::Unavailable(format!(
                "circuit open: {} is failing; transfer refused before it was recorded",
                breaker.name()
            ))));
        }
        // The saga's calls to the accounts get what remains of the caller's
        // deadline; when it expires, this future is dropped (the saga is
        // handed to a task of its own, never left between debit and
        // credit) and the caller is told in time.
        let record = bounded(&request, self.transfers.transfer(transfer))
            .await
            .map_err(bank_call_status)?;
        Ok(Response::new(wire::record_to_wire(&record)))
    }
    async fn get(
        &self,
        request: Request<b::GetTransferRequest>,
    ) -> Result<Response<b::TransferRecord>, Status> {
        let id = wire::get_request(request.get_ref())?;
        let record = self.transfers.get(&id).await.map_err(bank_call_status)?;
        Ok(Response::new(wire::record_to_wire(&record)))
    }
    async fn pending_count(
        &self,
        _request: Request<b::PendingCountRequest>,
    ) -> Result<Response<b::PendingCount>, Status> {
        let pending = self
            .journal
            .pending_count()
            .await
            .map_err(bank_call_status)?;
        Ok(Response::new(b::PendingCount { pending }))
    }
}

/// `chat.v1.Chat` over any rooms service.
pub struct ChatServer(pub Arc<dyn RoomsService>);

type MessageStream = Pin<Box<dyn Stream<Item = Result<c::ChatMessage, Status>> + Send>>;

#[tonic::async_trait]
impl c::chat_server::Chat for ChatServer {
    async fn create_room(
        &self,
        request: Request<c::CreateRoomRequest>,
    ) -> Result<Response<c::CreateRoomResponse>, Status> {
        let room = wire::create_room_request(request.get_ref())?;
        self.0.create(room).await.map_err(chat_call_status)?;
        Ok(Response::new(c::CreateRoomResponse {}))
    }
    async fn post(
        &self,
        request: Request<c::PostRequest>,
    ) -> Result<Response<c::PostOutcome>, Status> {
        let post = wire::post_from_wire(request.get_ref())?;
        let outcome = self.0.post(post).await.map_err(chat_call_status)?;
        Ok(Response::new(wire::outcome_to_wire(outcome)))
    }
    async fn history(
        &self,
        request: Request<c::HistoryRequest>,
    ) -> Result<Response<c::HistoryResponse>, Status> {
        let (room, query) = wire::history_request(request.get_ref())?;
        let messages = self
            .0
            .history(&room, query)
            .await
            .map_err(chat_call_status)?;
        Ok(Response::new(c::HistoryResponse {
            messages: messages.iter().map(wire::message_to_wire).collect(),
        }))
    }

    type SubscribeStream = MessageStream;

    async fn subscribe(
        &self,
        request: Request<c::SubscribeRequest>,
    ) -> Result<Response<MessageStream>, Status> {
        let (room, after) = wire::subscribe_request(request.get_ref())?;
        let subscription = self
            .0
            .subscribe(&room, after)
            .await
            .map_err(chat_call_status)?;
        // The stream ends when the room drops a subscriber that fell behind;
        // the gateway's session resubscribes from its cursor.
        let stream = subscription.map(|item| {
            item.map(|m| wire::message_to_wire(&m))
                .map_err(chat_call_status)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
