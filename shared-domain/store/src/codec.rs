//! On-disk records. Domain types carry no serde derives: these records are
//! the storage format, converted by hand and validated on the way back in.

use serde::{Deserialize, Serialize};

use shared_domain::bank::{
    RejectReason, StepKind, StepResult, TransferRecord, TransferRequest, TransferStatus,
};
use shared_domain::chat::{ChatMessage, MessageText};
use shared_domain::id::{AccountId, ClientMsgId, TransferId, UserId};
use shared_domain::money::{Amount, Balance};

use crate::kv::StoreError;

/// A corruption error for `table`.
pub(crate) fn corrupt(table: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table: table.to_owned(),
        reason: reason.to_string(),
    }
}

/// A balance as 8 little-endian bytes.
pub fn encode_balance(balance: Balance) -> Vec<u8> {
    balance.minor_units().to_le_bytes().to_vec()
}

/// Reads a balance.
pub fn decode_balance(table: &str, bytes: &[u8]) -> Result<Balance, StoreError> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(table, "balance length"))?;
    Balance::from_stored(i64::from_le_bytes(raw)).ok_or_else(|| corrupt(table, "negative balance"))
}

fn kind_byte(kind: StepKind) -> u8 {
    match kind {
        StepKind::Debit => b'D',
        StepKind::Credit => b'C',
        StepKind::Refund => b'R',
    }
}

/// A step key: the transfer id, a NUL, the kind.
pub fn encode_step_key(transfer_id: &TransferId, kind: StepKind) -> Vec<u8> {
    let mut key = transfer_id.as_str().as_bytes().to_vec();
    key.push(0);
    key.push(kind_byte(kind));
    key
}

/// Reads a step key.
pub fn decode_step_key(table: &str, key: &[u8]) -> Result<(TransferId, StepKind), StoreError> {
    let [id @ .., 0, kind] = key else {
        return Err(corrupt(table, "step key shape"));
    };
    let id = std::str::from_utf8(id).map_err(|e| corrupt(table, e))?;
    let kind = match kind {
        b'D' => StepKind::Debit,
        b'C' => StepKind::Credit,
        b'R' => StepKind::Refund,
        _ => return Err(corrupt(table, "step kind")),
    };
    Ok((TransferId::new(id).map_err(|e| corrupt(table, e))?, kind))
}

/// A step result: a tag and a balance.
pub fn encode_step_result(result: StepResult) -> Vec<u8> {
    let (tag, value) = match result {
        StepResult::Applied { balance_after } => (b'A', balance_after.minor_units()),
        StepResult::InsufficientFunds { balance } => (b'I', balance.minor_units()),
        StepResult::Overflow => (b'O', 0),
    };
    let mut out = vec![tag];
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// Reads a step result.
pub fn decode_step_result(table: &str, bytes: &[u8]) -> Result<StepResult, StoreError> {
    let [tag, rest @ ..] = bytes else {
        return Err(corrupt(table, "empty step result"));
    };
    let balance = decode_balance(table, rest)?;
    match tag {
        b'A' => Ok(StepResult::Applied {
            balance_after: balance,
        }),
        b'I' => Ok(StepResult::InsufficientFunds { balance }),
        b'O' => Ok(StepResult::Overflow),
        _ => Err(corrupt(table, "step result tag")),
    }
}

#[derive(Serialize, Deserialize)]
struct TransferV1 {
    from: String,
    to: String,
    amount: i64,
    /// 0 pending, 1 committed, 2 rejected.
    status: u8,
    /// 0 insufficient funds, 1 balance overflow (when rejected).
    reason: u8,
}

/// A journal record.
pub fn encode_transfer(record: &TransferRecord) -> Vec<u8> {
    let (status, reason) = match record.status {
        TransferStatus::Pending => (0, 0),
        TransferStatus::Committed => (1, 0),
        TransferStatus::Rejected(RejectReason::InsufficientFunds) => (2, 0),
        TransferStatus::Rejected(RejectReason::BalanceOverflow) => (2, 1),
    };
    let v1 = TransferV1 {
        from: record.request.from.to_string(),
        to: record.request.to.to_string(),
        amount: record.request.amount.minor_units(),
        status,
        reason,
    };
    postcard::to_stdvec(&v1).unwrap_or_default()
}

/// Reads a journal record stored under `key`.
pub fn decode_transfer(
    table: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<TransferRecord, StoreError> {
    let v1: TransferV1 = postcard::from_bytes(bytes).map_err(|e| corrupt(table, e))?;
    let id = std::str::from_utf8(key).map_err(|e| corrupt(table, e))?;
    let request = TransferRequest::new(
        TransferId::new(id).map_err(|e| corrupt(table, e))?,
        AccountId::new(&v1.from).map_err(|e| corrupt(table, e))?,
        AccountId::new(&v1.to).map_err(|e| corrupt(table, e))?,
        Amount::new(v1.amount.into()).map_err(|e| corrupt(table, e))?,
    )
    .map_err(|e| corrupt(table, e))?;
    let status = match (v1.status, v1.reason) {
        (0, _) => TransferStatus::Pending,
        (1, _) => TransferStatus::Committed,
        (2, 0) => TransferStatus::Rejected(RejectReason::InsufficientFunds),
        (2, 1) => TransferStatus::Rejected(RejectReason::BalanceOverflow),
        _ => return Err(corrupt(table, "transfer status")),
    };
    Ok(TransferRecord { request, status })
}

#[derive(Serialize, Deserialize)]
struct MessageV1 {
    author: String,
    text: String,
    ts_us: u64,
    client_msg_id: String,
}

/// A post's idempotency key, (author, client_msg_id): the author's length
/// (two bytes, big-endian), the author, the client's id.
pub fn encode_post_key(author: &UserId, client_msg_id: &ClientMsgId) -> Vec<u8> {
    let (author, id) = (
        author.as_str().as_bytes(),
        client_msg_id.as_str().as_bytes(),
    );
    let len = u16::try_from(author.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + author.len() + id.len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(author);
    key.extend_from_slice(id);
    key
}

/// A seq stored as a value (the post index's).
pub fn decode_seq(table: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| corrupt(table, "seq length"))?;
    Ok(u64::from_be_bytes(raw))
}

/// A message key: its seq, big-endian so keys sort in seq order.
pub fn encode_seq(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// A chat message.
pub fn encode_message(message: &ChatMessage) -> Vec<u8> {
    let v1 = MessageV1 {
        author: message.author.to_string(),
        text: message.text.as_str().to_owned(),
        ts_us: message.ts_us,
        client_msg_id: message.client_msg_id.to_string(),
    };
    postcard::to_stdvec(&v1).unwrap_or_default()
}

/// Reads a chat message stored under `key`.
pub fn decode_message(table: &str, key: &[u8], bytes: &[u8]) -> Result<ChatMessage, StoreError> {
    let raw: [u8; 8] = key.try_into().map_err(|_| corrupt(table, "seq length"))?;
    let v1: MessageV1 = postcard::from_bytes(bytes).map_err(|e| corrupt(table, e))?;
    Ok(ChatMessage {
        seq: u64::from_be_bytes(raw),
        author: UserId::new(&v1.author).map_err(|e| corrupt(table, e))?,
        text: MessageText::new(&v1.text).map_err(|e| corrupt(table, e))?,
        ts_us: v1.ts_us,
        client_msg_id: ClientMsgId::new(&v1.client_msg_id).map_err(|e| corrupt(table, e))?,
    })
}
