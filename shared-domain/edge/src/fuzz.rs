//! The edge's decoders fuzzed on stable Rust: property tests (proptest)
//! feed the transfer body parser, the post validation, the WebSocket
//! frame reader, the query parser and the timing header's parser
//! arbitrary input and near-valid input.
//! Every one answers a value or an error of API.md's table (400, 413 or
//! 422); none panics.
//!
//! `cargo test -p edge fuzz` runs proptest's default number of cases; for
//! millions: `PROPTEST_CASES=1000000 cargo test --release -p edge fuzz`.

use http::StatusCode;
use proptest::prelude::*;

use crate::error::ApiError;

fn an_api_error<T>(result: Result<T, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if [
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNPROCESSABLE_ENTITY,
            ]
            .contains(&e.status) =>
        {
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("{} {}", e.status, e.code))),
    }
}

/// A JSON value as a client might send it, well-formed or not quite.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,40}(\\.[0-9]{0,5})?(e[+-]?[0-9]{1,3})?",
        "\"[ -~]{0,80}\"",
        "\"(\\\\u[0-9a-fA-F]{4}|[a-z0-9_-]){0,70}\"",
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        "[ -~]{0,12}",
    ]
}

/// A transfer body: the right fields (or others), any values.
fn transfer_body() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("transfer_id".to_owned()),
        Just("from".to_owned()),
        Just("to".to_owned()),
        Just("amount".to_owned()),
        "[a-z_]{0,12}",
    ];
    proptest::collection::vec((field, json_value()), 0..6).prop_map(|fields| {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #[test]
    fn transfer_bodies_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        an_api_error(crate::bank::parse_transfer(&bytes))?;
    }

    #[test]
    fn json_shaped_transfer_bodies_parse_or_are_refused(body in transfer_body()) {
        an_api_error(crate::bank::parse_transfer(body.as_bytes()))?;
    }

    #[test]
    fn posts_validate_or_are_refused(
        room in "\\PC{0,80}",
        author in "\\PC{0,80}",
        text in "\\PC{0,5000}",
        id in "\\PC{0,80}",
    ) {
        an_api_error(crate::chat::post_request(&room, &author, &text, &id))?;
    }

    #[test]
    fn websocket_frames_read_or_are_refused(
        frame in prop_oneof![
            "\\PC{0,300}",
            ("\\PC{0,200}", "\\PC{0,80}").prop_map(|(text, id)| {
                serde_json::json!({"type": "post", "text": text, "client_msg_id": id}).to_string()
            }),
        ],
    ) {
        let room = shared_domain::id::RoomName::new("r").expect("room");
        let user = shared_domain::id::UserId::new("u").expect("user");
        an_api_error(crate::ws::read_frame(&room, &user, &frame).map_err(|(_, e)| e))?;
    }

    #[test]
    fn queries_parse_or_are_refused(raw in "[ -~]{0,200}", key in "[a-z]{1,6}") {
        let pairs = crate::chat::query_pairs(Some(&raw));
        an_api_error(pairs.as_ref().map(|_| ()).map_err(Clone::clone))?;
        if let Ok(pairs) = pairs {
            an_api_error(crate::chat::uint_param(&pairs, &key))?;
        }
    }

    #[test]
    fn timing_headers_decode_without_panicking(header in "[ -~]{0,300}") {
        let _ = crate::timing::decode(&header);
    }
}
