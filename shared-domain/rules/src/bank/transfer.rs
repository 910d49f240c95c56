//! The transfer journal: one record per `transfer_id`, the idempotency key.

use std::collections::VecDeque;
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

/// Every transfer ever begun (one shard's share, or all of them), or,
/// when bounded ([`TransferBook::bounded`]), every pending one and the
/// most recently settled ones: a settled record whose final status is
/// durable elsewhere may leave memory, and its holder reads it back
/// ([`TransferBook::recall`]) when a repeat or a lookup asks for it.
#[derive(Debug, Default, Clone)]
pub struct TransferBook {
    records: FastMap<TransferId, TransferRecord>,
    pending: usize,
    /// Settled records known durable, oldest first: the only ones that
    /// may leave memory.
    spillable: VecDeque<TransferId>,
    /// Settled records kept in memory at most; `None` keeps every record
    /// (nothing else holds them).
    keep_settled: Option<usize>,
    /// Transfers committed so far, those that left memory included: the
    /// `n`th commit is number `n` in the journal's commit order.
    commits: u64,
}

/// What a journal committed up to one moment: how many transfers and
/// their summed amounts. A read model of the journal starts from it, then
/// follows the commits numbered after `count` ([`TransferBook::commits`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Committed transfers (the number of the last one).
    pub count: u64,
    /// Their amounts, summed exactly.
    pub volume: i128,
}

impl Committed {
    /// Counts `record` if it is committed.
    pub fn add(&mut self, record: &TransferRecord) {
        if record.status == TransferStatus::Committed {
            self.count += 1;
            self.volume += i128::from(record.request.amount.minor_units());
        }
    }
}

/// Settled transfers a bounded journal keeps in memory by default (a
/// repeat of an older one reads it back from disk); the store's README
/// has what the choice cost in memory, measured.
pub const KEEP_SETTLED: usize = 8_192;

impl TransferBook {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// This book, keeping at most `keep` settled records in memory once
    /// they are durable (see [`TransferBook::settled_durable`]).
    pub fn bounded(mut self, keep: usize) -> Self {
        self.keep_settled = Some(keep);
        self.spill();
        self
    }

    /// Rebuilds a journal from persisted records.
    pub fn restore(records: impl IntoIterator<Item = TransferRecord>) -> Self {
        let mut book = Self::new();
        for record in records {
            book.count_commit(&record);
            book.put(record);
        }
        book
    }

    /// Rebuilds a journal from durable records, keeping every pending one
    /// and at most `keep` settled ones in memory (the last ones given).
    pub fn restore_bounded(records: impl IntoIterator<Item = TransferRecord>, keep: usize) -> Self {
        let mut book = Self::new().bounded(keep);
        for record in records {
            book.restore_one(record);
        }
        book
    }

    /// Takes one durable record at a restart (a bounded book keeps the
    /// last settled ones given): [`TransferBook::restore_bounded`] one by
    /// one, for a store that visits its records.
    pub fn restore_one(&mut self, record: TransferRecord) {
        self.count_commit(&record);
        self.recall(record);
    }

    fn count_commit(&mut self, record: &TransferRecord) {
        if record.status == TransferStatus::Committed {
            self.commits += 1;
        }
    }

    /// How many transfers this journal committed (the number of the last
    /// commit), counting those restored and those no longer in memory.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// What the records in memory committed: everything the journal
    /// committed unless the book is bounded (then its store knows).
    pub fn committed(&self) -> Committed {
        let mut committed = Committed::default();
        for record in self.records.values() {
            committed.add(record);
        }
        committed
    }

    /// Whether the record of `transfer_id` is in memory. A bounded book's
    /// holder reads a record it does not know back from its store before
    /// asking about it.
    pub fn knows(&self, transfer_id: &TransferId) -> bool {
        self.records.contains_key(transfer_id)
    }

    /// Takes a durable record back into memory (read back for a repeat or
    /// a lookup, or at a restart); a settled one may leave again later.
    pub fn recall(&mut self, record: TransferRecord) {
        let id = record.request.transfer_id.clone();
        let settled = record.status != TransferStatus::Pending;
        self.put(record);
        if settled {
            self.settled_durable([id]);
        }
    }

    /// These transfers' final statuses are durable now: their records may
    /// leave memory, oldest first, beyond the bound.
    pub fn settled_durable(&mut self, transfer_ids: impl IntoIterator<Item = TransferId>) {
        if self.keep_settled.is_none() {
            return;
        }
        self.spillable.extend(transfer_ids);
        self.spill();
    }

    /// Drops the oldest durable settled records beyond the bound.
    fn spill(&mut self) {
        let Some(keep) = self.keep_settled else {
            return;
        };
        while self.spillable.len() > keep {
            let Some(id) = self.spillable.pop_front() else {
                break;
            };
            if self
                .records
                .get(&id)
                .is_some_and(|r| r.status != TransferStatus::Pending)
            {
                self.records.remove(&id);
            }
        }
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
        if status == TransferStatus::Committed {
            self.commits += 1;
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

    /// How many transfers are recorded in memory.
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
    fn a_bounded_book_lets_only_durable_settled_records_go_and_recalls_them() {
        let mut book = TransferBook::new().bounded(2);
        let id = |i: u32| TransferId::new(&format!("t{i}")).expect("id");
        for i in 0..5 {
            book.begin(req(&format!("t{i}"), 5)).expect("new");
        }
        for i in 0..4 {
            book.resolve(&id(i), TransferStatus::Committed)
                .expect("known");
        }
        assert_eq!(book.len(), 5, "settled but not yet durable: all kept");
        book.settled_durable((0..4).map(id));
        assert_eq!(
            book.len(),
            3,
            "two durable settled ones and the pending one"
        );
        assert!(
            !book.knows(&id(0)) && !book.knows(&id(1)),
            "the oldest left"
        );
        assert!(book.knows(&id(2)) && book.knows(&id(3)) && book.knows(&id(4)));
        assert_eq!(book.pending_count(), 1);
        // A lookup of a record that left: its holder reads it back.
        let back = TransferRecord {
            request: req("t0", 5),
            status: TransferStatus::Committed,
        };
        book.recall(back.clone());
        assert_eq!(book.get(&id(0)), Ok(back));
        assert!(matches!(book.begin(req("t0", 5)), Ok(Begin::Recorded(_))));
        assert!(matches!(
            book.begin(req("t0", 6)),
            Err(BankError::IdempotencyConflict(_))
        ));
        assert_eq!(book.len(), 3, "the recalled one pushed the oldest out");
        assert_eq!(book.pending_count(), 1);
    }

    #[test]
    fn a_bounded_restore_keeps_every_pending_record_and_the_last_settled_ones() {
        let record = |i: u32, status| TransferRecord {
            request: req(&format!("t{i}"), 5),
            status,
        };
        let records = (0..10).map(|i| {
            record(
                i,
                if i % 3 == 0 {
                    TransferStatus::Pending
                } else {
                    TransferStatus::Committed
                },
            )
        });
        let book = TransferBook::restore_bounded(records, 2);
        assert_eq!(book.pending_count(), 4);
        assert_eq!(book.len(), 6);
        let id = |i: u32| TransferId::new(&format!("t{i}")).expect("id");
        assert!(book.knows(&id(7)) && book.knows(&id(8)) && !book.knows(&id(5)));
    }

    #[test]
    fn commits_are_numbered_in_order_and_survive_a_restore_and_the_bound() {
        let mut book = TransferBook::new().bounded(1);
        for (i, status) in [
            TransferStatus::Committed,
            TransferStatus::Rejected(RejectReason::InsufficientFunds),
            TransferStatus::Committed,
        ]
        .into_iter()
        .enumerate()
        {
            book.begin(req(&format!("t{i}"), 5)).expect("new");
            let id = TransferId::new(&format!("t{i}")).expect("id");
            book.resolve(&id, status).expect("pending");
            book.settled_durable([id]);
        }
        book.begin(req("t3", 7)).expect("new");
        assert_eq!(
            book.commits(),
            2,
            "rejected and pending ones are not commits"
        );
        let t2 = TransferId::new("t2").expect("id");
        assert!(
            !book
                .resolve(&t2, TransferStatus::Committed)
                .expect("known")
                .1
        );
        assert_eq!(book.commits(), 2, "a repeated resolve is not a commit");
        assert_eq!(
            book.committed(),
            Committed {
                count: 1,
                volume: 5
            },
            "the bounded book holds one of the two"
        );
        let records = (0..4).map(|i| TransferRecord {
            request: req(&format!("t{i}"), 5),
            status: if i % 2 == 0 {
                TransferStatus::Committed
            } else {
                TransferStatus::Pending
            },
        });
        assert_eq!(TransferBook::restore(records.clone()).commits(), 2);
        assert_eq!(TransferBook::restore_bounded(records, 0).commits(), 2);
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
