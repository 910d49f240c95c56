//! The store's codec fuzzed on stable Rust: property tests (proptest) feed
//! every decoder arbitrary bytes, and bytes near the real records (a
//! record with bytes flipped, cut or added). A decoder either decodes or
//! says the record is corrupt; none panics or allocates beyond its input.
//!
//! `cargo test -p store --test fuzz` runs proptest's default number of
//! cases; for millions: `PROPTEST_CASES=1000000 cargo test --release -p
//! store --test fuzz`.

use proptest::prelude::*;

use shared_domain::bank::{StepKind, StepResult, TransferRecord, TransferRequest, TransferStatus};
use shared_domain::chat::{ChatMessage, MessageText};
use shared_domain::id::{AccountId, ClientMsgId, TransferId, UserId};
use shared_domain::money::{Amount, Balance};
use store::StoreError;
use store::codec;

fn corrupt_or_ok<T>(result: Result<T, StoreError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) | Err(StoreError::Corrupt { .. }) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!("not a corruption: {other}"))),
    }
}

/// A real record of each kind, to mutate.
fn records() -> Vec<(Vec<u8>, Vec<u8>)> {
    let request = TransferRequest::new(
        TransferId::new("t-1").expect("id"),
        AccountId::new("a1").expect("id"),
        AccountId::new("a2").expect("id"),
        Amount::new(25).expect("amount"),
    )
    .expect("request");
    let record = TransferRecord {
        request,
        status: TransferStatus::Committed,
    };
    let message = ChatMessage {
        seq: 7,
        author: UserId::new("u1").expect("id"),
        text: MessageText::new("hello").expect("text"),
        client_msg_id: ClientMsgId::new("m1").expect("id"),
        ts_us: 1,
    };
    vec![
        (b"t-1".to_vec(), codec::encode_transfer(&record)),
        (codec::encode_seq(7), codec::encode_message(&message)),
        (
            codec::encode_step_key(&TransferId::new("t-1").expect("id"), StepKind::Debit),
            codec::encode_step_result(StepResult::Applied {
                balance_after: Balance::from_stored(10).expect("balance"),
            }),
        ),
        (
            Vec::new(),
            codec::encode_balance(Balance::from_stored(10).expect("balance")),
        ),
    ]
}

/// Applies `edits` (position, byte) to `bytes`, then cuts it to `len`.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], len: usize) -> Vec<u8> {
    for (at, byte) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = *byte;
        }
    }
    bytes.truncate(len);
    bytes
}

proptest! {
    #[test]
    fn arbitrary_bytes_decode_or_are_corrupt(
        key in proptest::collection::vec(any::<u8>(), 0..80),
        value in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        corrupt_or_ok(codec::decode_balance("t", &value))?;
        corrupt_or_ok(codec::decode_step_key("t", &key))?;
        corrupt_or_ok(codec::decode_step_result("t", &value))?;
        corrupt_or_ok(codec::decode_transfer("t", &key, &value))?;
        corrupt_or_ok(codec::decode_message("t", &key, &value))?;
    }

    #[test]
    fn damaged_records_decode_or_are_corrupt(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        len in 0usize..120,
    ) {
        let (key, value) = records().swap_remove(which);
        let (key, value) = (mutate(key, &edits, len), mutate(value, &edits, len));
        corrupt_or_ok(codec::decode_balance("t", &value))?;
        corrupt_or_ok(codec::decode_step_key("t", &key))?;
        corrupt_or_ok(codec::decode_step_result("t", &value))?;
        corrupt_or_ok(codec::decode_transfer("t", &key, &value))?;
        corrupt_or_ok(codec::decode_message("t", &key, &value))?;
    }
}

#[test]
fn the_real_records_decode() {
    let records = records();
    assert!(codec::decode_transfer("t", &records[0].0, &records[0].1).is_ok());
    assert!(codec::decode_message("t", &records[1].0, &records[1].1).is_ok());
    assert!(codec::decode_step_key("t", &records[2].0).is_ok());
    assert!(codec::decode_step_result("t", &records[2].1).is_ok());
    assert!(codec::decode_balance("t", &records[3].1).is_ok());
}
