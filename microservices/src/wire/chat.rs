//! The chat's messages: posts, outcomes and messages between the domain
//! and `chat.v1`.

use tonic::Status;

use shared_domain::chat::{
    ChatMessage, HistoryQuery, MAX_HISTORY_LIMIT, MessageText, PostOutcome, PostRequest,
};
use shared_domain::id::{ClientMsgId, RoomName, TransferId, UserId};

use super::{c, chat_status, id, invalid};

/// `CreateRoomRequest` → the room to create.
pub fn create_room_request(r: &c::CreateRoomRequest) -> Result<RoomName, Status> {
    room(&r.room)
}

/// `HistoryRequest` → the room and the page asked for (the domain bounds
/// the page: `limit` 1..=[`MAX_HISTORY_LIMIT`]).
pub fn history_request(r: &c::HistoryRequest) -> Result<(RoomName, HistoryQuery), Status> {
    let query = HistoryQuery::new(Some(r.after), Some(r.limit))
        .ok_or_else(|| invalid("limit", format_args!("must be 1..={MAX_HISTORY_LIMIT}")))?;
    Ok((room(&r.room)?, query))
}

/// `SubscribeRequest` → the room and the cursor to follow it from.
pub fn subscribe_request(r: &c::SubscribeRequest) -> Result<(RoomName, u64), Status> {
    Ok((room(&r.room)?, r.after))
}

/// `PostRequest` → domain. Text is checked by the domain (empty, too long).
pub fn post_from_wire(r: &c::PostRequest) -> Result<PostRequest, Status> {
    Ok(PostRequest {
        room: id("room", &r.room)?,
        author: id("author", &r.author)?,
        text: MessageText::new(&r.text).map_err(chat_status)?,
        client_msg_id: id("client_msg_id", &r.client_msg_id)?,
    })
}

/// Domain → `PostRequest`.
pub fn post_to_wire(r: &PostRequest) -> c::PostRequest {
    c::PostRequest {
        room: r.room.to_string(),
        author: r.author.to_string(),
        text: r.text.as_str().to_owned(),
        client_msg_id: r.client_msg_id.to_string(),
    }
}

/// Domain → `PostOutcome`.
pub fn outcome_to_wire(o: PostOutcome) -> c::PostOutcome {
    c::PostOutcome {
        seq: o.seq,
        duplicate: o.duplicate,
    }
}

/// `PostOutcome` → domain.
pub fn outcome_from_wire(o: &c::PostOutcome) -> PostOutcome {
    PostOutcome {
        seq: o.seq,
        duplicate: o.duplicate,
    }
}

/// Domain → `ChatMessage`.
pub fn message_to_wire(m: &ChatMessage) -> c::ChatMessage {
    c::ChatMessage {
        seq: m.seq,
        author: m.author.to_string(),
        text: m.text.as_str().to_owned(),
        ts_us: m.ts_us,
        client_msg_id: m.client_msg_id.to_string(),
    }
}

/// `ChatMessage` → domain.
pub fn message_from_wire(m: &c::ChatMessage) -> Result<ChatMessage, Status> {
    Ok(ChatMessage {
        seq: m.seq,
        author: id::<UserId>("author", &m.author)?,
        text: MessageText::new(&m.text).map_err(chat_status)?,
        ts_us: m.ts_us,
        client_msg_id: id::<ClientMsgId>("client_msg_id", &m.client_msg_id)?,
    })
}

/// A room name field.
pub fn room(raw: &str) -> Result<RoomName, Status> {
    id("room", raw)
}

/// A transfer id field.
pub fn transfer_id(raw: &str) -> Result<TransferId, Status> {
    id("transfer_id", raw)
}
