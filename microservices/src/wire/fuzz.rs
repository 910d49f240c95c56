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
        through::<c::PostRequest, _>(&raw, super::post_from_wire);
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
