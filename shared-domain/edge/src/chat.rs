//! Chat routes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use shared_domain::chat::{ChatMessage, HistoryQuery, MAX_HISTORY_LIMIT, MessageText, PostRequest};
use shared_domain::id::{ClientMsgId, RoomName, UserId};

use crate::AppState;
use crate::bank::within;
use crate::body::read_json;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRoomBody {
    room: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostBody {
    author: String,
    text: String,
    client_msg_id: String,
}

/// A message as API.md shows it (history and WebSocket frames).
pub fn message_json(message: &ChatMessage) -> serde_json::Value {
    json!({
        "seq": message.seq,
        "author": message.author.as_str(),
        "text": message.text.as_str(),
        "ts_us": message.ts_us,
    })
}

/// `POST /v1/rooms`.
pub(crate) async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body: CreateRoomBody = read_json(&headers, body, state.config.request_timeout).await?;
    let room = RoomName::new(&body.room)?;
    within(&state, state.services.rooms.create(room.clone())).await?;
    Ok((StatusCode::CREATED, Json(json!({"room": room.as_str()}))).into_response())
}

/// Validates a post. The text first: a text over the limit is a 413, which
/// outranks the 422s.
pub(crate) fn post_request(
    room: &str,
    author: &str,
    text: &str,
    client_msg_id: &str,
) -> Result<PostRequest, ApiError> {
    let text = MessageText::new(text)?;
    Ok(PostRequest {
        room: RoomName::new(room)?,
        author: UserId::new(author)?,
        client_msg_id: ClientMsgId::new(client_msg_id)?,
        text,
    })
}

/// `POST /v1/rooms/{room}/messages`.
pub(crate) async fn post_message(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body: PostBody = read_json(&headers, body, state.config.request_timeout).await?;
    let request = post_request(&room, &body.author, &body.text, &body.client_msg_id)?;
    let room = request.room.clone();
    let outcome = within(&state, state.services.rooms.post(request)).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({"room": room.as_str(), "seq": outcome.seq})),
    )
        .into_response())
}

/// Parses a query string into pairs; unknown keys are the caller's to ignore.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

/// A non-negative integer query parameter, or 400.
pub(crate) fn uint_param(pairs: &[(String, String)], key: &str) -> Result<Option<u64>, ApiError> {
    match pairs.iter().rev().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{key} is out of range"))),
        Some(_) => Err(ApiError::bad_request(format!(
            "{key} must be a non-negative integer"
        ))),
    }
}

/// `GET /v1/rooms/{room}/messages?after=SEQ&limit=N`.
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let after = uint_param(&pairs, "after")?;
    let limit = uint_param(&pairs, "limit")?.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
    let query = HistoryQuery::new(after, limit).ok_or_else(|| {
        ApiError::bad_request(format!("limit must be from 1 to {MAX_HISTORY_LIMIT}"))
    })?;
    let room = RoomName::new(&room)?;
    let messages = within(&state, state.services.rooms.history(&room, query)).await?;
    let messages: Vec<_> = messages.iter().map(message_json).collect();
    Ok(Json(json!({"messages": messages})).into_response())
}
