//! Invariant checkers that any test, crash test or harness run ends with.
//!
//! - Money is conserved: the audited total equals the sum of opening
//!   balances and nothing is left pending.
//! - Every acknowledged transfer is recorded with the acknowledged outcome.
//! - A room's history is 1, 2, 3, ... with no gap and no duplicate, and
//!   every acknowledged post is in it once, at its acknowledged `seq`.
//! - A reader received a contiguous run of the history, in order.

use std::collections::HashMap;

use crate::bank::AuditView;
use crate::money::Total;

pub use crate::error::Violation;

/// Money conserved and nothing pending.
pub fn check_money(
    opened_accounts: u64,
    opening_total: Total,
    audit: &AuditView,
) -> Result<(), Violation> {
    if audit.accounts != opened_accounts {
        return Err(Violation::AccountCount {
            expected: opened_accounts,
            actual: audit.accounts,
        });
    }
    if audit.total_balance != opening_total {
        return Err(Violation::MoneyNotConserved {
            expected: opening_total.0,
            actual: audit.total_balance.0,
        });
    }
    if audit.pending_transfers != 0 {
        return Err(Violation::PendingTransfers(audit.pending_transfers));
    }
    Ok(())
}

/// Every acknowledged transfer outcome is what the system reports now.
/// `acked` maps transfer id to the acknowledged status string; `lookup`
/// gives the current one (`None` if unknown).
pub fn check_transfers<'a>(
    acked: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<(), Violation> {
    for (transfer_id, acknowledged) in acked {
        let found = lookup(transfer_id).unwrap_or_else(|| "unknown".to_owned());
        if found != acknowledged {
            return Err(Violation::TransferLost {
                transfer_id: transfer_id.to_owned(),
                acknowledged: acknowledged.to_owned(),
                found,
            });
        }
    }
    Ok(())
}

/// A message as seen by a checker: its seq, author, key and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMessage {
    /// Sequence number.
    pub seq: u64,
    /// Author.
    pub author: String,
    /// Idempotency key, when the reader knows it.
    pub client_msg_id: Option<String>,
    /// Text.
    pub text: String,
}

/// The full history of a room is 1, 2, 3, ... with no gap or duplicate.
pub fn check_history(room: &str, seqs: impl IntoIterator<Item = u64>) -> Result<(), Violation> {
    check_contiguous(room, 0, seqs)
}

/// A reader that started after `after` saw `after+1, after+2, ...` in order.
pub fn check_contiguous(
    room: &str,
    after: u64,
    seqs: impl IntoIterator<Item = u64>,
) -> Result<(), Violation> {
    for (expected, seq) in (after + 1..).zip(seqs) {
        if seq != expected {
            return Err(Violation::ChatGap {
                room: room.to_owned(),
                expected,
                found: seq,
            });
        }
    }
    Ok(())
}

/// Every acknowledged post `(author, client_msg_id, text, seq)` is in the
/// history exactly once, at its seq, with its text and author.
pub fn check_acked_posts<'a>(
    room: &str,
    history: &[SeenMessage],
    acked: impl IntoIterator<Item = (&'a str, &'a str, &'a str, u64)>,
) -> Result<(), Violation> {
    let by_seq: HashMap<u64, &SeenMessage> = history.iter().map(|m| (m.seq, m)).collect();
    for (author, client_msg_id, text, seq) in acked {
        let problem = match by_seq.get(&seq) {
            None => Some("is missing".to_owned()),
            Some(m) if m.author != author || m.text != text => {
                Some(format!("holds another message (author {})", m.author))
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return Err(Violation::MessageLost {
                room: room.to_owned(),
                client_msg_id: client_msg_id.to_owned(),
                seq,
                problem,
            });
        }
    }
    check_history(room, history.iter().map(|m| m.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_duplicates_are_found() {
        assert!(check_history("r", [1, 2, 3]).is_ok());
        assert!(check_history("r", [1, 3]).is_err());
        assert!(check_history("r", [1, 1, 2]).is_err());
        assert!(check_history("r", [2, 1]).is_err());
        assert!(check_contiguous("r", 5, [6, 7]).is_ok());
    }

    #[test]
    fn money_checks() {
        let audit = AuditView {
            accounts: 2,
            total_balance: Total(100),
            pending_transfers: 0,
        };
        assert!(check_money(2, Total(100), &audit).is_ok());
        assert!(check_money(2, Total(99), &audit).is_err());
        assert!(check_money(3, Total(100), &audit).is_err());
        let pending = AuditView {
            pending_transfers: 1,
            ..audit
        };
        assert!(check_money(2, Total(100), &pending).is_err());
    }

    #[test]
    fn acked_posts_must_be_present() {
        let history = vec![SeenMessage {
            seq: 1,
            author: "u".into(),
            client_msg_id: None,
            text: "hi".into(),
        }];
        assert!(check_acked_posts("r", &history, [("u", "m1", "hi", 1)]).is_ok());
        assert!(check_acked_posts("r", &history, [("u", "m2", "yo", 1)]).is_err());
        assert!(check_acked_posts("r", &history, [("u", "m3", "hi", 2)]).is_err());
    }

    #[test]
    fn transfer_outcomes_must_match() {
        let acked = [("t1", "committed")];
        assert!(check_transfers(acked, |_| Some("committed".into())).is_ok());
        assert!(check_transfers(acked, |_| None).is_err());
        assert!(check_transfers(acked, |_| Some("rejected".into())).is_err());
    }
}
