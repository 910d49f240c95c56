//! Request bodies, checked in API.md's order: size (413), media type
//! (415), JSON shape (400), then values (422, by the caller).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Reads a JSON body of at most [`crate::BODY_LIMIT`] bytes into `T`,
/// all of it within `deadline` (see [`receive`]).
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    deadline: Duration,
) -> Result<T, ApiError> {
    let bytes = receive(body, deadline).await?;
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body must be application/json",
        ));
    }
    parse_json(&bytes)
}

/// Receives a body of at most [`crate::BODY_LIMIT`] bytes, all of it
/// within `deadline`: a larger one is a 413, and a client trickling its
/// body a byte at a time gets 408 and its connection closed, instead of
/// holding it. (The edge receives a POST's body before admitting it, so
/// the handler's own read finds it whole.)
pub async fn receive(body: Body, deadline: Duration) -> Result<axum::body::Bytes, ApiError> {
    tokio::time::timeout(deadline, axum::body::to_bytes(body, crate::BODY_LIMIT))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "request body not received within {} ms",
                    deadline.as_millis()
                ),
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is over {} bytes", crate::BODY_LIMIT),
            )
        })
}

/// Parses a JSON body into `T`; a bad shape is a 400.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Whether the content type is `application/json` (any case, parameters allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// An integer field kept as its JSON text, so any integer literal, however
/// large, can be range-checked (422) while a fraction, exponent, string,
/// bool or null is a wrong type (400).
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct ExactInt(Box<RawValue>);

impl ExactInt {
    /// The literal as an `i128`, saturating for literals beyond it (they are
    /// out of every range anyway). A non-integer literal is a 400.
    pub fn value(&self, field: &str) -> Result<i128, ApiError> {
        let text = self.0.get().trim();
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!("{field} must be an integer")));
        }
        Ok(text.parse::<i128>().unwrap_or(if text.starts_with('-') {
            i128::MIN
        } else {
            i128::MAX
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_trickled_past_the_deadline_is_a_408() {
        // One byte, then nothing more for longer than the deadline.
        let chunks = futures::stream::unfold(0u8, |sent| async move {
            if sent > 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{")),
                sent + 1,
            ))
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("value"),
        );
        let read = read_json::<serde_json::Value>(
            &headers,
            Body::from_stream(chunks),
            Duration::from_millis(100),
        );
        let error = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("answered at the deadline, not after the sender")
            .expect_err("no body");
        assert_eq!(
            (error.status, error.code),
            (StatusCode::REQUEST_TIMEOUT, "request_timeout")
        );
        // A body that is all there is read as before.
        let whole: serde_json::Value = read_json(
            &headers,
            Body::from("{\"a\":1}"),
            Duration::from_millis(100),
        )
        .await
        .expect("a whole body");
        assert_eq!(whole["a"], 1);
    }

    fn check(json: &str) -> Result<i128, u16> {
        #[derive(serde::Deserialize)]
        struct T {
            n: ExactInt,
        }
        let t: T = serde_json::from_str(json).map_err(|_| 400u16)?;
        t.n.value("n").map_err(|e| e.status.as_u16())
    }

    #[test]
    fn exact_integers() {
        assert_eq!(check(r#"{"n":5}"#), Ok(5));
        assert_eq!(check(r#"{"n":-5}"#), Ok(-5));
        assert_eq!(
            check(r#"{"n":99999999999999999999999999999999999999999999}"#),
            Ok(i128::MAX)
        );
        assert_eq!(check(r#"{"n":1.0}"#), Err(400));
        assert_eq!(check(r#"{"n":1e3}"#), Err(400));
        assert_eq!(check(r#"{"n":"5"}"#), Err(400));
        assert_eq!(check(r#"{"n":null}"#), Err(400));
        assert_eq!(check(r#"{"n":true}"#), Err(400));
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().expect("valid"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/jsonx".parse().expect("valid"),
        );
        assert!(!is_json(&h));
    }
}
