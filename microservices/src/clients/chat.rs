//! The chat's client: rooms, posts, history and subscriptions.

use async_trait::async_trait;
use futures::StreamExt;
use tonic::Request;

use shared_domain::chat::{ChatMessage, HistoryQuery, PostOutcome, PostRequest};
use shared_domain::error::{ChatError, ChatResult};
use shared_domain::id::RoomName;
use shared_domain::service::{RoomsService, Subscription};

use crate::wire::pb::chat as c;
use crate::wire::pb::chat::chat_client::ChatClient;
use crate::wire::{self, chat_error};

use super::{Downstream, Layered, decoded, traced};

/// A page of history is up to 1000 messages of 4 KiB: more than tonic's
/// default 4 MiB answer limit.
fn chat_client(channel: Layered) -> ChatClient<Layered> {
    ChatClient::new(channel).max_decoding_message_size(16 * 1024 * 1024)
}

/// `RoomsService` over `chat.v1.Chat`.
pub struct GrpcRooms(pub Downstream);

#[async_trait]
impl RoomsService for GrpcRooms {
    async fn create(&self, room: RoomName) -> ChatResult<()> {
        let message = c::CreateRoomRequest {
            room: room.to_string(),
        };
        self.0
            .unary(false, message, chat_error, |ch, r| async move {
                chat_client(ch).create_room(r).await
            })
            .await?;
        Ok(())
    }
    async fn post(&self, request: PostRequest) -> ChatResult<PostOutcome> {
        let message = wire::post_to_wire(&request);
        // Idempotent per (room, author, client_msg_id).
        let o = self
            .0
            .unary(true, message, chat_error, |ch, r| async move {
                chat_client(ch).post(r).await
            })
            .await?;
        Ok(wire::outcome_from_wire(&o))
    }
    async fn history(&self, room: &RoomName, query: HistoryQuery) -> ChatResult<Vec<ChatMessage>> {
        let message = c::HistoryRequest {
            room: room.to_string(),
            after: query.after,
            limit: query.limit,
        };
        let h = self
            .0
            .unary(true, message, chat_error, |ch, r| async move {
                chat_client(ch).history(r).await
            })
            .await?;
        h.messages
            .iter()
            .map(|m| decoded(wire::message_from_wire(m)))
            .collect()
    }
    async fn subscribe(&self, room: &RoomName, after: u64) -> ChatResult<Subscription> {
        // No deadline on a live stream; opening it is retried like a read.
        let message = c::SubscribeRequest {
            room: room.to_string(),
            after,
        };
        let stream = self
            .0
            .retry
            .run(true, || {
                let mut request = Request::new(message.clone());
                traced(&mut request);
                self.0.authorize(&mut request);
                let channel = self.0.channel.clone();
                async move {
                    chat_client(channel)
                        .subscribe(request)
                        .await
                        .map_err(|s| chat_error(&s))
                }
            })
            .await?
            .into_inner();
        Ok(stream
            .map(|item| match item {
                Ok(m) => decoded::<_, ChatError>(wire::message_from_wire(&m)),
                Err(s) => Err(chat_error(&s)),
            })
            .boxed())
    }
}
