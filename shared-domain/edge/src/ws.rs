//! `GET /v1/rooms/{room}/ws?user=u1&after=SEQ`: a chat session over a
//! WebSocket.
//!
//! Handshake errors are answered before the upgrade. Then the server sends
//! every message after `after`, in order, and each new one; the client may
//! post (`{"type":"post",...}`) and gets an ack or an error frame. A reader
//! that falls too far behind is closed with 1008 and resumes with `after=`.

use std::borrow::Cow;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use shared_domain::chat::PostRequest;
use shared_domain::id::{RoomName, UserId};
use shared_domain::service::SessionEvent;

use crate::AppState;
use crate::chat::{message_json, post_request, query_pairs, uint_param};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Post { text: String, client_msg_id: String },
}

/// The upgrade, after the handshake checks.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    parts: Parts,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let user = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "user")
        .ok_or_else(|| ApiError::bad_request("user is required"))?;
    let user = UserId::new(&user.1).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let after = uint_param(&pairs, "after")?.unwrap_or(0);
    let room = RoomName::new(&room)?;
    let session = crate::bank::within(
        &state,
        state
            .services
            .sessions
            .connect(room.clone(), user.clone(), after),
    )
    .await?;
    let mut parts = parts;
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    Ok(ws
        .max_message_size(crate::BODY_LIMIT)
        .on_upgrade(move |socket| run(socket, state, room, user, session.events))
        .into_response())
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn close(code: u16, reason: impl Into<Cow<'static, str>>) -> Message {
    let reason: Cow<'static, str> = reason.into();
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.into_owned()),
    }))
}

async fn run(
    mut socket: WebSocket,
    state: AppState,
    room: RoomName,
    user: UserId,
    mut events: futures::stream::BoxStream<'static, SessionEvent>,
) {
    let send_timeout = state.config.ws_send_timeout;
    loop {
        let outgoing = tokio::select! {
            event = events.next() => match event {
                Some(SessionEvent::Message(m)) => text(message_json(&m)),
                Some(SessionEvent::Lagged { last_seq }) => {
                    let _ = socket.send(close(close_code::POLICY,
                        format!("reader too slow; resume with after={last_seq}"))).await;
                    return;
                }
                Some(SessionEvent::Ended) | None => {
                    let _ = socket.send(close(close_code::AWAY, "session ended")).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(frame))) => handle_frame(&state, &room, &user, frame.as_str()).await,
                Some(Ok(Message::Binary(_))) => text(json!({"type": "error", "error":
                    ApiError::bad_request("frames must be JSON text").body()["error"].clone()})),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        match tokio::time::timeout(send_timeout, socket.send(outgoing)).await {
            Ok(Ok(())) => {}
            // The client stopped reading (or left): it is disconnected and
            // resumes with `after=` its last seen seq.
            _ => return,
        }
    }
}

/// A client frame read as a post. A frame that is not one is refused
/// without an id (400); a post the domain refuses carries its
/// `client_msg_id` back.
pub(crate) fn read_frame(
    room: &RoomName,
    user: &UserId,
    frame: &str,
) -> Result<PostRequest, (Option<String>, ApiError)> {
    let frame: ClientFrame = serde_json::from_str(frame)
        .map_err(|e| (None, ApiError::bad_request(format!("invalid frame: {e}"))))?;
    let ClientFrame::Post {
        text: body,
        client_msg_id,
    } = frame;
    post_request(room.as_str(), user.as_str(), &body, &client_msg_id)
        .map_err(|e| (Some(client_msg_id), e))
}

async fn handle_frame(state: &AppState, room: &RoomName, user: &UserId, frame: &str) -> Message {
    let request = match read_frame(room, user, frame) {
        Ok(request) => request,
        Err((None, error)) => {
            return text(json!({"type": "error", "error": error.body()["error"].clone()}));
        }
        Err((Some(client_msg_id), error)) => {
            return text(json!({"type": "error", "client_msg_id": client_msg_id,
                "error": error.body()["error"].clone()}));
        }
    };
    let client_msg_id = request.client_msg_id.as_str().to_owned();
    let result = crate::bank::within(state, state.services.rooms.post(request))
        .await
        .map_err(ApiError::from);
    match result {
        Ok(outcome) => {
            text(json!({"type": "ack", "client_msg_id": client_msg_id, "seq": outcome.seq}))
        }
        Err(error) => text(json!({"type": "error", "client_msg_id": client_msg_id,
            "error": error.body()["error"].clone()})),
    }
}
