//! The wire: generated protobuf types, and conversions between them and
//! the domain. Everything arriving is validated by the domain's own
//! constructors; a bad field is `INVALID_ARGUMENT` and reaches no state.
//! Domain refusals travel as a status whose details hold the typed error,
//! and come back out as the same domain error.

use std::str::FromStr;

use prost::Message;
use tonic::{Code, Status};

use shared_domain::error::{BankError, CallError, ChatError};
use shared_domain::id::{AccountId, ClientMsgId, IdError, RoomName, TransferId};
use shared_domain::money::{Amount, Balance};

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

mod bank;
mod chat;

pub use bank::*;
pub use chat::*;

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

/// A fabric failure (of a call this service made downstream) as a status,
/// marked [`crate::resilience::DOWNSTREAM_FAILED`]: this service answered,
/// and its callers' breakers must not take a dependency's trouble for its
/// own (else an open breaker in the transfers service opens the
/// gateway's on a healthy transfers service, which then waits out its
/// whole open time after the dependency is back).
pub fn fabric_status<E>(e: CallError<E>, domain: impl FnOnce(E) -> Status) -> Status {
    let mut status = match e {
        CallError::Domain(e) => return domain(e),
        CallError::Unavailable(why) => Status::unavailable(why),
        CallError::Overloaded => Status::resource_exhausted("overloaded"),
        CallError::DeadlineExceeded => Status::deadline_exceeded("deadline exceeded"),
    };
    status.metadata_mut().insert(
        crate::resilience::DOWNSTREAM_FAILED,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    status
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
mod fuzz;
#[cfg(test)]
mod tests;
