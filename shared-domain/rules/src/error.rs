//! Errors: one enum per domain, one code vocabulary (API.md's), and the
//! fabric failures every service call can add.

use crate::id::{AccountId, ClientMsgId, RoomName, TransferId};
use crate::money::{Amount, Balance};

/// What can go wrong in the bank, as a caller can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// No account has this id.
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    /// An account with this id was opened already.
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    /// The debit would take the balance below zero.
    #[error("account {account} holds {balance}, less than {amount}")]
    InsufficientFunds {
        /// The account debited.
        account: AccountId,
        /// Its balance when the debit was refused.
        balance: Balance,
        /// The amount asked for.
        amount: Amount,
    },
    /// The credit would take the balance past `i64::MAX`.
    #[error("crediting account {0} would overflow its balance")]
    BalanceOverflow(AccountId),
    /// The same `transfer_id` was used with a different body.
    #[error("transfer {0} was already requested with a different body")]
    IdempotencyConflict(TransferId),
    /// `from == to`.
    #[error("a transfer needs two different accounts")]
    InvalidTransfer,
    /// No transfer has this id.
    #[error("transfer {0} does not exist")]
    UnknownTransfer(TransferId),
}

impl BankError {
    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        match self {
            BankError::UnknownAccount(_) => "unknown_account",
            BankError::AccountExists(_) => "account_exists",
            BankError::InsufficientFunds { .. } => "insufficient_funds",
            BankError::BalanceOverflow(_) => "invalid_amount",
            BankError::IdempotencyConflict(_) => "idempotency_conflict",
            BankError::InvalidTransfer => "invalid_transfer",
            BankError::UnknownTransfer(_) => "unknown_transfer",
        }
    }
}

/// What can go wrong in the chat, as a caller can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// No room has this name.
    #[error("room {0} does not exist")]
    UnknownRoom(RoomName),
    /// A room with this name was created already.
    #[error("room {0} already exists")]
    RoomExists(RoomName),
    /// The same (room, author, client_msg_id) was posted with other text.
    #[error("message {0} was already posted with a different text")]
    IdempotencyConflict(ClientMsgId),
    /// The text is empty.
    #[error("text must not be empty")]
    InvalidText,
    /// The text is longer than 4096 bytes.
    #[error("text must be at most {} bytes", crate::limits::MAX_TEXT_BYTES)]
    MessageTooLarge,
}

impl ChatError {
    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::UnknownRoom(_) => "unknown_room",
            ChatError::RoomExists(_) => "room_exists",
            ChatError::IdempotencyConflict(_) => "idempotency_conflict",
            ChatError::InvalidText => "invalid_text",
            ChatError::MessageTooLarge => "message_too_large",
        }
    }
}

/// The result of calling a component through any fabric: the domain's own
/// answer, or the fabric failing to deliver one.
///
/// A crashed actor and an open circuit breaker are both `Unavailable`, so
/// "never a hang" reads the same in both variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The component answered with a domain error.
    #[error(transparent)]
    Domain(E),
    /// The component could not be reached or crashed while handling the call.
    #[error("component unavailable: {0}")]
    Unavailable(String),
    /// The component refused the call because its queue is full.
    #[error("component overloaded")]
    Overloaded,
    /// No answer came before the deadline; the call may or may not have run.
    #[error("deadline exceeded")]
    DeadlineExceeded,
}

impl<E> CallError<E> {
    /// Whether a retry of an idempotent call may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, CallError::Domain(_))
    }

    /// Converts the domain error type, keeping fabric failures as they are.
    pub fn map_domain<F>(self, f: impl FnOnce(E) -> F) -> CallError<F> {
        match self {
            CallError::Domain(e) => CallError::Domain(f(e)),
            CallError::Unavailable(why) => CallError::Unavailable(why),
            CallError::Overloaded => CallError::Overloaded,
            CallError::DeadlineExceeded => CallError::DeadlineExceeded,
        }
    }
}

impl From<BankError> for CallError<BankError> {
    fn from(e: BankError) -> Self {
        CallError::Domain(e)
    }
}

impl From<ChatError> for CallError<ChatError> {
    fn from(e: ChatError) -> Self {
        CallError::Domain(e)
    }
}

/// A broken invariant met while answering (a stored page with a gap): the
/// component cannot answer correctly.
impl<E> From<Violation> for CallError<E> {
    fn from(v: Violation) -> Self {
        CallError::Unavailable(v.to_string())
    }
}

/// The result of a bank call through a fabric.
pub type BankResult<T> = Result<T, CallError<BankError>>;
/// The result of a chat call through a fabric.
pub type ChatResult<T> = Result<T, CallError<ChatError>>;

/// A broken invariant. The harness fails the run loudly on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Money was created or destroyed.
    #[error("money not conserved: expected total {expected}, audit says {actual}")]
    MoneyNotConserved {
        /// Sum of opening balances.
        expected: i128,
        /// What the audit reported.
        actual: i128,
    },
    /// Transfers remain pending after faults stopped.
    #[error("{0} transfers still pending")]
    PendingTransfers(u64),
    /// An account count differs from the number opened.
    #[error("expected {expected} accounts, audit says {actual}")]
    AccountCount {
        /// Accounts opened.
        expected: u64,
        /// Accounts audited.
        actual: u64,
    },
    /// An acknowledged transfer is missing or has another outcome.
    #[error("acknowledged transfer {transfer_id} was {acknowledged}, now {found}")]
    TransferLost {
        /// The transfer.
        transfer_id: String,
        /// Its acknowledged status.
        acknowledged: String,
        /// What the system reports now.
        found: String,
    },
    /// A room's history skips or repeats a sequence number.
    #[error("room {room}: expected seq {expected}, found {found}")]
    ChatGap {
        /// The room.
        room: String,
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// An acknowledged post is missing, duplicated or at another seq.
    #[error("room {room}: acknowledged message {client_msg_id} at seq {seq} {problem}")]
    MessageLost {
        /// The room.
        room: String,
        /// The post's key.
        client_msg_id: String,
        /// The acknowledged seq.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}
