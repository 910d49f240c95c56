//! The transfer journal: one record per `transfer_id`, the idempotency key.

use std::collections::hash_map::Entry;

use crate::FastMap;

use crate::error::BankError;
use crate::id::{AccountId, TransferId};
use crate::money::Amount;

/// A validated transfer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The idempotency key.
    pub transfer_id: TransferId,
    /// The payer.
    pub from: AccountId,
    /// The payee.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
}

impl TransferRequest {
    /// Builds a request; `from == to` is refused.
    pub fn new(
        transfer_id: TransferId,
        from: AccountId,
        to: AccountId,
        amount: Amount,
    ) -> Result<Self, BankError> {
        if from == to {
            return Err(BankError::InvalidTransfer);
        }
        Ok(Self {
            transfer_id,
            from,
            to,
            amount,
        })
    }

    /// Whether `other` is "the same body" in API.md's sense.
    pub fn same_body(&self, other: &TransferRequest) -> bool {
        self == other
    }
}

/// Why a transfer was rejected; recorded, so a repeat gets the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The payer's balance was below the amount.
    InsufficientFunds,
    /// The payee's balance would pass `i64::MAX`; the debit was refunded.
    BalanceOverflow,
}

impl RejectReason {
    /// The API.md code shown as `reason` and in the error body.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InsufficientFunds => "insufficient_funds",
            RejectReason::BalanceOverflow => "balance_overflow",
        }
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStatus {
    /// Begun; its steps have not all completed yet.
    Pending,
    /// Money moved from `from` to `to`.
    Committed,
    /// No money moved (or it moved back); the reason is recorded.
    Rejected(RejectReason),
}

impl TransferStatus {
    /// The API.md status string.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Pending => "pending",
            TransferStatus::Committed => "committed",
            TransferStatus::Rejected(_) => "rejected",
        }
    }
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// What was asked.
    pub request: TransferRequest,
    /// Where it stands.
    pub status: TransferStatus,
}

/// The journal's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// New: recorded as pending; the caller must run its saga.
    Started(TransferRecord),
    /// A repeat with the same body: the recorded record, in any status.
    Recorded(TransferRecord),
}

/// One change to the journal, to persist before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalChange {
    /// A record was written (begun or resolved).
    Put(TransferRecord),
    /// A pending record was abandoned.
    Remove(TransferId),
}

/// Every transfer ever begun (one shard's share, or all of them).
#[derive(Debug, Default, Clone)]
pub struct TransferBook {
    records: FastMap<TransferId, TransferRecord>,
    pending: usize,
}

impl TransferBook {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a journal from persisted records.
    pub fn restore(records: impl IntoIterator<Item = TransferRecord>) -> Self {
        let mut book = Self::new();
        for record in records {
            book.put(record);
        }
        book
    }

    fn put(&mut self, record: TransferRecord) {
        let id = record.request.transfer_id.clone();
        if record.status == TransferStatus::Pending {
            self.pending += 1;
        }
        if let Some(old) = self.records.insert(id, record)
            && old.status == TransferStatus::Pending
        {
            self.pending -= 1;
        }
    }

    /// Begins a transfer, or answers a repeat. The same id with a different
    /// body is an [`BankError::IdempotencyConflict`] and changes nothing.
    pub fn begin(&mut self, request: TransferRequest) -> Result<Begin, BankError> {
        // One probe of the map for both the repeat check and the insert.
        match self.records.entry(request.transfer_id.clone()) {
            Entry::Occupied(existing) => {
                let existing = existing.get();
                if existing.request.same_body(&request) {
                    return Ok(Begin::Recorded(existing.clone()));
                }
                Err(BankError::IdempotencyConflict(request.transfer_id))
            }
            Entry::Vacant(slot) => {
                let record = TransferRecord {
                    request,
                    status: TransferStatus::Pending,
                };
                self.pending += 1;
                slot.insert(record.clone());
                Ok(Begin::Started(record))
            }
        }
    }

    /// Records the final status of a pending transfer. Resolving a transfer
    /// that is already final changes nothing and returns its record (two
    /// saga runners after a crash reach the same outcome from the same
    /// recorded steps).
    pub fn resolve(
        &mut self,
        transfer_id: &TransferId,
        status: TransferStatus,
    ) -> Result<(TransferRecord, bool), BankError> {
        let record = self
            .records
            .get_mut(transfer_id)
            .ok_or_else(|| BankError::UnknownTransfer(transfer_id.clone()))?;
        if record.status != TransferStatus::Pending {
            return Ok((record.clone(), false));
        }
        record.status = status;
        if status != TransferStatus::Pending {
            self.pending -= 1;
        }
        Ok((record.clone(), true))
    }

    /// Forgets a pending transfer that was refused before any money could
    /// move (an unknown account): API.md records nothing for those.
    pub fn abandon(&mut self, transfer_id: &TransferId) -> bool {
        match self.records.get(transfer_id) {
            Some(record) if record.status == TransferStatus::Pending => {
                self.records.remove(transfer_id);
                self.pending -= 1;
                true
            }
            _ => false,
        }
    }

    /// The record of a transfer.
    pub fn get(&self, transfer_id: &TransferId) -> Result<TransferRecord, BankError> {
        self.records
            .get(transfer_id)
            .cloned()
            .ok_or_else(|| BankError::UnknownTransfer(transfer_id.clone()))
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &TransferRecord> {
        self.records.values()
    }

    /// Transfers still pending.
    pub fn pending(&self) -> impl Iterator<Item = &TransferRecord> {
        self.records
            .values()
            .filter(|r| r.status == TransferStatus::Pending)
    }

    /// How many transfers are pending.
    pub fn pending_count(&self) -> u64 {
        self.pending as u64
    }

    /// How many transfers are recorded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// How a transfer's steps ended (a saga, or the one-call path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Record this final status.
    Resolved(TransferStatus),
    /// Refused before money moved: record nothing, answer this error.
    Abandon(BankError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(tid: &str, amount: i128) -> TransferRequest {
        TransferRequest::new(
            TransferId::new(tid).expect("id"),
            AccountId::new("a").expect("id"),
            AccountId::new("b").expect("id"),
            Amount::new(amount).expect("amount"),
        )
        .expect("different accounts")
    }

    #[test]
    fn same_account_is_invalid() {
        let a = AccountId::new("a").expect("id");
        let res = TransferRequest::new(
            TransferId::new("t").expect("id"),
            a.clone(),
            a,
            Amount::new(1).expect("amount"),
        );
        assert_eq!(res, Err(BankError::InvalidTransfer));
    }

    #[test]
    fn repeat_same_body_returns_record_other_body_conflicts() {
        let mut book = TransferBook::new();
        assert!(matches!(book.begin(req("t1", 5)), Ok(Begin::Started(_))));
        assert!(matches!(book.begin(req("t1", 5)), Ok(Begin::Recorded(_))));
        assert!(matches!(
            book.begin(req("t1", 6)),
            Err(BankError::IdempotencyConflict(_))
        ));
        assert_eq!(book.pending_count(), 1);
        let t1 = TransferId::new("t1").expect("id");
        let (rec, changed) = book.resolve(&t1, TransferStatus::Committed).expect("known");
        assert!(changed);
        assert_eq!(rec.status, TransferStatus::Committed);
        let (rec, changed) = book
            .resolve(
                &t1,
                TransferStatus::Rejected(RejectReason::InsufficientFunds),
            )
            .expect("known");
        assert!(!changed, "a final status is never overwritten");
        assert_eq!(rec.status, TransferStatus::Committed);
        assert_eq!(book.pending_count(), 0);
    }

    #[test]
    fn abandon_forgets_only_pending() {
        let mut book = TransferBook::new();
        book.begin(req("t1", 5)).expect("new");
        let t1 = TransferId::new("t1").expect("id");
        assert!(book.abandon(&t1));
        assert!(book.get(&t1).is_err());
        assert_eq!(book.pending_count(), 0);
    }
}
