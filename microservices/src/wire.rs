//! The wire: generated protobuf types, and conversions between them and
//! the domain. Everything arriving is validated by the domain's own
//! constructors; a bad field is `INVALID_ARGUMENT` and reaches no state.
//! Domain refusals travel as a status whose details hold the typed error,
//! and come back out as the same domain error.

use std::str::FromStr;

use prost::Message;
use tonic::{Code, Status};

use shared_domain::bank::{
    AccountStep, AccountTotals, AccountView, RejectReason, StepKind, StepResult, TransferRecord,
    TransferRequest, TransferStatus,
};
use shared_domain::chat::{ChatMessage, MessageText, PostOutcome, PostRequest};
use shared_domain::error::{BankError, CallError, ChatError};
use shared_domain::id::{AccountId, ClientMsgId, IdError, RoomName, TransferId, UserId};
use shared_domain::money::{Amount, Balance, OpeningBalance, Total};

/// Generated code of `proto/`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    /// `bank.v1`.
    pub mod bank {
        tonic::include_proto!("bank.v1");
    }
    /// `chat.v1`.
    pub mod chat {
        tonic::include_proto!("chat.v1");
    }
    /// Every file's descriptor, for server reflection.
    pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
}

use pb::bank as b;
use pb::chat as c;

/// A field that failed validation.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// Parses an id field.
pub fn id<T: FromStr<Err = IdError>>(field: &str, raw: &str) -> Result<T, Status> {
    raw.parse().map_err(|e| invalid(field, e))
}

fn amount(raw: i64) -> Result<Amount, Status> {
    Amount::new(raw.into()).map_err(|e| invalid("amount", e))
}

fn balance(field: &str, raw: i64) -> Result<Balance, Status> {
    Balance::from_stored(raw).ok_or_else(|| invalid(field, "not a balance"))
}

// ---- bank: requests -------------------------------------------------------

/// `OpenRequest` → domain.
pub fn open_request(r: &b::OpenRequest) -> Result<(AccountId, OpeningBalance), Status> {
    Ok((
        id("account_id", &r.account_id)?,
        OpeningBalance::new(r.opening_balance.into()).map_err(|e| invalid("opening_balance", e))?,
    ))
}

fn step_kind(kind: StepKind) -> b::StepKind {
    match kind {
        StepKind::Debit => b::StepKind::Debit,
        StepKind::Credit => b::StepKind::Credit,
        StepKind::Refund => b::StepKind::Refund,
    }
}

/// Domain → `ApplyStepRequest`.
pub fn step_to_wire(s: &AccountStep) -> b::ApplyStepRequest {
    b::ApplyStepRequest {
        transfer_id: s.transfer_id.to_string(),
        kind: step_kind(s.kind).into(),
        account_id: s.account.to_string(),
        amount: s.amount.minor_units(),
    }
}

/// `ApplyStepRequest` → domain.
pub fn step_from_wire(r: &b::ApplyStepRequest) -> Result<AccountStep, Status> {
    let kind = match b::StepKind::try_from(r.kind) {
        Ok(b::StepKind::Debit) => StepKind::Debit,
        Ok(b::StepKind::Credit) => StepKind::Credit,
        Ok(b::StepKind::Refund) => StepKind::Refund,
        Ok(b::StepKind::Unspecified) | Err(_) => return Err(invalid("kind", "unknown step kind")),
    };
    Ok(AccountStep {
        transfer_id: id("transfer_id", &r.transfer_id)?,
        kind,
        account: id("account_id", &r.account_id)?,
        amount: amount(r.amount)?,
    })
}

/// Domain → `TransferRequest`.
pub fn transfer_to_wire(r: &TransferRequest) -> b::TransferRequest {
    b::TransferRequest {
        transfer_id: r.transfer_id.to_string(),
        from: r.from.to_string(),
        to: r.to.to_string(),
        amount: r.amount.minor_units(),
    }
}

/// `TransferRequest` → domain. `from == to` is the domain's refusal.
pub fn transfer_from_wire(r: &b::TransferRequest) -> Result<TransferRequest, Status> {
    TransferRequest::new(
        id("transfer_id", &r.transfer_id)?,
        id("from", &r.from)?,
        id("to", &r.to)?,
        amount(r.amount)?,
    )
    .map_err(bank_status)
}

// ---- bank: answers --------------------------------------------------------

/// Domain → `Account`.
pub fn account_to_wire(v: &AccountView) -> b::Account {
    b::Account {
        account_id: v.account_id.to_string(),
        balance: v.balance.minor_units(),
    }
}

/// `Account` → domain.
pub fn account_from_wire(a: &b::Account) -> Result<AccountView, Status> {
    Ok(AccountView {
        account_id: id("account_id", &a.account_id)?,
        balance: balance("balance", a.balance)?,
    })
}

/// Domain → `StepResult`.
pub fn step_result_to_wire(r: StepResult) -> b::StepResult {
    use b::step_result::Result as R;
    b::StepResult {
        result: Some(match r {
            StepResult::Applied { balance_after } => {
                R::AppliedBalanceAfter(balance_after.minor_units())
            }
            StepResult::InsufficientFunds { balance } => {
                R::InsufficientFundsBalance(balance.minor_units())
            }
            StepResult::Overflow => R::Overflow(true),
        }),
    }
}

/// `StepResult` → domain.
pub fn step_result_from_wire(r: &b::StepResult) -> Result<StepResult, Status> {
    use b::step_result::Result as R;
    match r.result {
        Some(R::AppliedBalanceAfter(v)) => Ok(StepResult::Applied {
            balance_after: balance("balance_after", v)?,
        }),
        Some(R::InsufficientFundsBalance(v)) => Ok(StepResult::InsufficientFunds {
            balance: balance("balance", v)?,
        }),
        Some(R::Overflow(_)) => Ok(StepResult::Overflow),
        None => Err(invalid("result", "missing")),
    }
}

/// Domain → `Totals` (the i128 split in two halves).
pub fn totals_to_wire(t: AccountTotals) -> b::Totals {
    let total = t.total_balance.0;
    b::Totals {
        accounts: t.accounts,
        total_balance_high: (total >> 64) as i64,
        total_balance_low: total as u64,
    }
}

/// `Totals` → domain.
pub fn totals_from_wire(t: &b::Totals) -> AccountTotals {
    AccountTotals {
        accounts: t.accounts,
        total_balance: Total(
            (i128::from(t.total_balance_high) << 64) | i128::from(t.total_balance_low),
        ),
    }
}

fn status_to_wire(s: TransferStatus) -> b::TransferStatus {
    match s {
        TransferStatus::Pending => b::TransferStatus::Pending,
        TransferStatus::Committed => b::TransferStatus::Committed,
        TransferStatus::Rejected(RejectReason::InsufficientFunds) => {
            b::TransferStatus::RejectedInsufficientFunds
        }
        TransferStatus::Rejected(RejectReason::BalanceOverflow) => {
            b::TransferStatus::RejectedBalanceOverflow
        }
    }
}

/// Domain → `TransferRecord`.
pub fn record_to_wire(r: &TransferRecord) -> b::TransferRecord {
    b::TransferRecord {
        request: Some(transfer_to_wire(&r.request)),
        status: status_to_wire(r.status).into(),
    }
}

fn status_from_wire(status: i32) -> Result<TransferStatus, Status> {
    Ok(match b::TransferStatus::try_from(status) {
        Ok(b::TransferStatus::Pending) => TransferStatus::Pending,
        Ok(b::TransferStatus::Committed) => TransferStatus::Committed,
        Ok(b::TransferStatus::RejectedInsufficientFunds) => {
            TransferStatus::Rejected(RejectReason::InsufficientFunds)
        }
        Ok(b::TransferStatus::RejectedBalanceOverflow) => {
            TransferStatus::Rejected(RejectReason::BalanceOverflow)
        }
        Ok(b::TransferStatus::Unspecified) | Err(_) => {
            return Err(invalid("status", "unknown status"));
        }
    })
}

/// `TransferRecord` → domain.
pub fn record_from_wire(r: &b::TransferRecord) -> Result<TransferRecord, Status> {
    let request = transfer_from_wire(
        r.request
            .as_ref()
            .ok_or_else(|| invalid("request", "missing"))?,
    )?;
    Ok(TransferRecord {
        request,
        status: status_from_wire(r.status)?,
    })
}

/// A transfer's final status (`ApplyTransfer`'s answer) → wire.
pub fn outcome_status_to_wire(status: TransferStatus) -> b::TransferOutcome {
    b::TransferOutcome {
        status: status_to_wire(status).into(),
    }
}

/// `ApplyTransfer`'s answer → the transfer's final status.
pub fn outcome_status_from_wire(o: &b::TransferOutcome) -> Result<TransferStatus, Status> {
    status_from_wire(o.status)
}

// ---- chat -----------------------------------------------------------------

/// `PostRequest` → domain. Text is checked by the domain (empty, too long).
pub fn post_from_wire(r: &c::PostRequest) -> Result<PostRequest, Status> {
    Ok(PostRequest {
        room: id("room", &r.room)?,
        author: id("author", &r.author)?,
        text: MessageText::new(&r.text).map_err(chat_status)?,
        client_msg_id: id("client_msg_id", &r.client_msg_id)?,
    })
}

/// Domain → `PostRequest`.
pub fn post_to_wire(r: &PostRequest) -> c::PostRequest {
    c::PostRequest {
        room: r.room.to_string(),
        author: r.author.to_string(),
        text: r.text.as_str().to_owned(),
        client_msg_id: r.client_msg_id.to_string(),
    }
}

/// Domain → `PostOutcome`.
pub fn outcome_to_wire(o: PostOutcome) -> c::PostOutcome {
    c::PostOutcome {
        seq: o.seq,
        duplicate: o.duplicate,
    }
}

/// `PostOutcome` → domain.
pub fn outcome_from_wire(o: &c::PostOutcome) -> PostOutcome {
    PostOutcome {
        seq: o.seq,
        duplicate: o.duplicate,
    }
}

/// Domain → `ChatMessage`.
pub fn message_to_wire(m: &ChatMessage) -> c::ChatMessage {
    c::ChatMessage {
        seq: m.seq,
        author: m.author.to_string(),
        text: m.text.as_str().to_owned(),
        ts_us: m.ts_us,
        client_msg_id: m.client_msg_id.to_string(),
    }
}

/// `ChatMessage` → domain.
pub fn message_from_wire(m: &c::ChatMessage) -> Result<ChatMessage, Status> {
    Ok(ChatMessage {
        seq: m.seq,
        author: id::<UserId>("author", &m.author)?,
        text: MessageText::new(&m.text).map_err(chat_status)?,
        ts_us: m.ts_us,
        client_msg_id: id::<ClientMsgId>("client_msg_id", &m.client_msg_id)?,
    })
}

/// A room name field.
pub fn room(raw: &str) -> Result<RoomName, Status> {
    id("room", raw)
}

/// A transfer id field.
pub fn transfer_id(raw: &str) -> Result<TransferId, Status> {
    id("transfer_id", raw)
}

// ---- errors ---------------------------------------------------------------

fn with_details(code: Code, message: String, details: impl Message) -> Status {
    Status::with_details(code, message, details.encode_to_vec().into())
}

/// A bank refusal as a status carrying the typed error.
pub fn bank_status(e: BankError) -> Status {
    use b::bank_error::Kind as K;
    let (code, kind) = match &e {
        BankError::UnknownAccount(a) => (Code::NotFound, K::UnknownAccount(a.to_string())),
        BankError::AccountExists(a) => (Code::AlreadyExists, K::AccountExists(a.to_string())),
        BankError::InsufficientFunds {
            account,
            balance,
            amount,
        } => (
            Code::FailedPrecondition,
            K::InsufficientFunds(b::InsufficientFunds {
                account: account.to_string(),
                balance: balance.minor_units(),
                amount: amount.minor_units(),
            }),
        ),
        BankError::BalanceOverflow(a) => {
            (Code::FailedPrecondition, K::BalanceOverflow(a.to_string()))
        }
        BankError::IdempotencyConflict(t) => {
            (Code::AlreadyExists, K::IdempotencyConflict(t.to_string()))
        }
        BankError::InvalidTransfer => (Code::InvalidArgument, K::InvalidTransfer(true)),
        BankError::UnknownTransfer(t) => (Code::NotFound, K::UnknownTransfer(t.to_string())),
    };
    with_details(code, e.to_string(), b::BankError { kind: Some(kind) })
}

/// A chat refusal as a status carrying the typed error.
pub fn chat_status(e: ChatError) -> Status {
    use c::chat_error::Kind as K;
    let (code, kind) = match &e {
        ChatError::UnknownRoom(r) => (Code::NotFound, K::UnknownRoom(r.to_string())),
        ChatError::RoomExists(r) => (Code::AlreadyExists, K::RoomExists(r.to_string())),
        ChatError::IdempotencyConflict(m) => {
            (Code::AlreadyExists, K::IdempotencyConflict(m.to_string()))
        }
        ChatError::InvalidText => (Code::InvalidArgument, K::InvalidText(true)),
        ChatError::MessageTooLarge => (Code::InvalidArgument, K::MessageTooLarge(true)),
    };
    with_details(code, e.to_string(), c::ChatError { kind: Some(kind) })
}

/// A fabric failure (of a call this service made downstream) as a status.
pub fn fabric_status<E>(e: CallError<E>, domain: impl FnOnce(E) -> Status) -> Status {
    match e {
        CallError::Domain(e) => domain(e),
        CallError::Unavailable(why) => Status::unavailable(why),
        CallError::Overloaded => Status::resource_exhausted("overloaded"),
        CallError::DeadlineExceeded => Status::deadline_exceeded("deadline exceeded"),
    }
}

/// A bank call's failure as a status.
pub fn bank_call_status(e: CallError<BankError>) -> Status {
    fabric_status(e, bank_status)
}

/// A chat call's failure as a status.
pub fn chat_call_status(e: CallError<ChatError>) -> Status {
    fabric_status(e, chat_status)
}

/// A status without a domain error: what the fabric did.
fn fabric_error<E>(s: &Status) -> CallError<E> {
    match s.code() {
        Code::ResourceExhausted => CallError::Overloaded,
        Code::DeadlineExceeded => CallError::DeadlineExceeded,
        // Anything else (unavailable, cancelled, a protocol error, a
        // refused argument the caller should never have sent) means the
        // component gave no domain answer.
        code => CallError::Unavailable(format!("{code:?}: {}", s.message())),
    }
}

fn bank_error_from(e: b::BankError) -> Option<BankError> {
    use b::bank_error::Kind as K;
    let account = |raw: &str| AccountId::new(raw).ok();
    let transfer = |raw: &str| TransferId::new(raw).ok();
    Some(match e.kind? {
        K::UnknownAccount(a) => BankError::UnknownAccount(account(&a)?),
        K::AccountExists(a) => BankError::AccountExists(account(&a)?),
        K::InsufficientFunds(f) => BankError::InsufficientFunds {
            account: account(&f.account)?,
            balance: Balance::from_stored(f.balance)?,
            amount: Amount::new(f.amount.into()).ok()?,
        },
        K::BalanceOverflow(a) => BankError::BalanceOverflow(account(&a)?),
        K::IdempotencyConflict(t) => BankError::IdempotencyConflict(transfer(&t)?),
        K::InvalidTransfer(_) => BankError::InvalidTransfer,
        K::UnknownTransfer(t) => BankError::UnknownTransfer(transfer(&t)?),
    })
}

fn chat_error_from(e: c::ChatError) -> Option<ChatError> {
    use c::chat_error::Kind as K;
    Some(match e.kind? {
        K::UnknownRoom(r) => ChatError::UnknownRoom(RoomName::new(&r).ok()?),
        K::RoomExists(r) => ChatError::RoomExists(RoomName::new(&r).ok()?),
        K::IdempotencyConflict(m) => ChatError::IdempotencyConflict(ClientMsgId::new(&m).ok()?),
        K::InvalidText(_) => ChatError::InvalidText,
        K::MessageTooLarge(_) => ChatError::MessageTooLarge,
    })
}

/// A status received by a bank client: the domain error it carries, or
/// the fabric failure it reports.
pub fn bank_error(s: &Status) -> CallError<BankError> {
    match b::BankError::decode(s.details())
        .ok()
        .and_then(bank_error_from)
    {
        Some(e) if !s.details().is_empty() => CallError::Domain(e),
        _ => fabric_error(s),
    }
}

/// A status received by a chat client (see [`bank_error`]).
pub fn chat_error(s: &Status) -> CallError<ChatError> {
    match c::ChatError::decode(s.details())
        .ok()
        .and_then(chat_error_from)
    {
        Some(e) if !s.details().is_empty() => CallError::Domain(e),
        _ => fabric_error(s),
    }
}

#[cfg(test)]
mod tests;
