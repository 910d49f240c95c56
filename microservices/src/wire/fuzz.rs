//! Every protobuf message a service takes from the network, fuzzed on
//! stable Rust: proptest feeds prost arbitrary bytes, and whatever decodes
//! goes through the domain's constructors. A message is either the domain
//! value or a status (never a panic); a status's details, arbitrary bytes
//! too, become a domain error or a fabric error.
//!
//! `cargo test -p microservices --lib fuzz` runs proptest's default number
//! of cases; for millions: `PROPTEST_CASES=1000000 cargo test --release -p
//! microservices --lib fuzz`.

use proptest::prelude::*;
use prost::Message;
use tonic::{Code, Status};

use super::pb::{bank as b, chat as c};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

/// Decodes `raw` as `M` and, if it decodes, converts it with `convert`.
fn through<M: Message + Default, T>(raw: &[u8], convert: impl Fn(&M) -> Result<T, Status>) {
    if let Ok(message) = M::decode(raw) {
        let _ = convert(&message);
    }
}

proptest! {
    #[test]
    fn bank_messages_decode_or_are_refused(raw in bytes()) {
        through::<b::OpenRequest, _>(&raw, super::open_request);
        through::<b::BalanceRequest, _>(&raw, super::balance_request);
        through::<b::SettleRequest, _>(&raw, super::settle_request);
        through::<b::GetTransferRequest, _>(&raw, super::get_request);
        through::<b::TotalsRequest, _>(&raw, |_| Ok(()));
        through::<b::PendingCountRequest, _>(&raw, |_| Ok(()));
        through::<b::PendingCount, _>(&raw, |_| Ok(()));
        through::<b::SettleResponse, _>(&raw, |_| Ok(()));
        through::<b::BankError, _>(&raw, |e| Ok(super::bank_error_from(e.clone())));
        through::<b::ApplyStepRequest, _>(&raw, super::step_from_wire);
        through::<b::TransferRequest, _>(&raw, super::transfer_from_wire);
        through::<b::Account, _>(&raw, super::account_from_wire);
        through::<b::StepResult, _>(&raw, super::step_result_from_wire);
        through::<b::Totals, _>(&raw, |t| Ok(super::totals_from_wire(t)));
        through::<b::TransferRecord, _>(&raw, super::record_from_wire);
        through::<b::TransferOutcome, _>(&raw, super::outcome_status_from_wire);
    }

    #[test]
    fn chat_messages_decode_or_are_refused(raw in bytes(), text in "\\PC{0,100}") {
        through::<c::CreateRoomRequest, _>(&raw, super::create_room_request);
        through::<c::PostRequest, _>(&raw, super::post_from_wire);
        through::<c::HistoryRequest, _>(&raw, super::history_request);
        through::<c::SubscribeRequest, _>(&raw, super::subscribe_request);
        through::<c::CreateRoomResponse, _>(&raw, |_| Ok(()));
        through::<c::ChatError, _>(&raw, |e| Ok(super::chat_error_from(e.clone())));
        through::<c::HistoryResponse, _>(&raw, |h| {
            h.messages.iter().map(super::message_from_wire).collect::<Result<Vec<_>, _>>()
        });
        through::<c::PostOutcome, _>(&raw, |o| Ok(super::outcome_from_wire(o)));
        through::<c::ChatMessage, _>(&raw, super::message_from_wire);
        let _ = super::room(&text);
        let _ = super::transfer_id(&text);
    }

    #[test]
    fn status_details_are_a_domain_or_a_fabric_error(raw in bytes(), code in 0i32..17) {
        let status = Status::with_details(Code::from(code), "fuzz", raw.into());
        let _ = super::bank_error(&status);
        let _ = super::chat_error(&status);
    }
}

/// Every message of the protos is fuzzed above: a message added to a
/// `.proto` without a line here fails this test. `InsufficientFunds` only
/// travels inside `BankError`, whose decoding covers it.
#[test]
fn every_message_of_the_protos_is_fuzzed() {
    let this = include_str!("fuzz.rs");
    for (module, proto) in [
        ("b", include_str!("../../proto/bank/v1/bank.proto")),
        ("c", include_str!("../../proto/chat/v1/chat.proto")),
    ] {
        let messages: Vec<&str> = proto
            .lines()
            .filter_map(|line| line.strip_prefix("message "))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        assert!(messages.len() > 5, "{messages:?}");
        for message in messages {
            if message == "InsufficientFunds" {
                continue;
            }
            assert!(
                this.contains(&format!("through::<{module}::{message}, _>")),
                "{module}::{message} is not fuzzed"
            );
        }
    }
}
