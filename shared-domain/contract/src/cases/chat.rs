//! The chat's cases: rooms, posts, history queries, gap-free concurrent
//! posts, and WebSocket sessions (replay, live, handshake errors, a slow
//! reader cut off and resumed).

use anyhow::{Context, ensure};
use futures::StreamExt;
use serde_json::json;

use shared_domain::invariant::{check_acked_posts, check_contiguous};

use crate::client::{Api, prefix};
use crate::ws::Session;

/// Rooms and posts: creation, sequence, idempotency, text limits.
pub async fn rooms_and_posts(api: &Api) -> anyhow::Result<()> {
    let p = prefix("room");
    let room = format!("{p}r");
    let created = api.post("/v1/rooms", &json!({"room": room})).await?;
    ensure!(created.expect_status(201)? == &json!({"room": room}));
    api.post("/v1/rooms", &json!({"room": room}))
        .await?
        .expect_error(409, "room_exists")?;
    api.post("/v1/rooms", &json!({"room": "no way"}))
        .await?
        .expect_error(422, "invalid_id")?;
    api.post_text("/v1/rooms", r#"{"room":"x","y":1}"#)
        .await?
        .expect_error(400, "bad_request")?;
    let first = api.say(&room, "u1", "hi", "m1").await?;
    ensure!(first.expect_status(201)? == &json!({"room": room, "seq": 1}));
    let again = api.say(&room, "u1", "hi", "m1").await?;
    ensure!(
        again.expect_status(200)? == &json!({"room": room, "seq": 1}),
        "repeat {}",
        again.body
    );
    api.say(&room, "u1", "other", "m1")
        .await?
        .expect_error(409, "idempotency_conflict")?;
    // The key is per author.
    ensure!(api.say(&room, "u2", "hi", "m1").await?.expect_status(201)?["seq"] == 2);
    api.say(&room, "u1", "", "m2")
        .await?
        .expect_error(422, "invalid_text")?;
    api.say(&room, "u1", &"x".repeat(4097), "m3")
        .await?
        .expect_error(413, "message_too_large")?;
    ensure!(
        api.say(&room, "u1", &"x".repeat(4096), "m4")
            .await?
            .expect_status(201)?["seq"]
            == 3
    );
    // Multi-byte text counts bytes: 1366 × 3 bytes > 4096.
    api.say(&room, "u1", &"€".repeat(1366), "m5")
        .await?
        .expect_error(413, "message_too_large")?;
    api.say(&room, "bad author", "hi", "m6")
        .await?
        .expect_error(422, "invalid_id")?;
    api.say(&room, "u1", "hi", "bad key")
        .await?
        .expect_error(422, "invalid_id")?;
    api.say(&format!("{p}nowhere"), "u1", "hi", "m7")
        .await?
        .expect_error(404, "unknown_room")?;
    // 413 outranks 422, and 422 outranks 404.
    api.say("bad%20room", "u1", &"x".repeat(4097), "m9")
        .await?
        .expect_error(413, "message_too_large")?;
    api.say("bad%20room", "u1", "hi", "m9")
        .await?
        .expect_error(422, "invalid_id")?;
    api.say(&format!("{p}nowhere"), "bad author", "hi", "m9")
        .await?
        .expect_error(422, "invalid_id")?;
    api.post_text(
        &format!("/v1/rooms/{room}/messages"),
        r#"{"author":"u1","text":5,"client_msg_id":"m8"}"#,
    )
    .await?
    .expect_error(400, "bad_request")?;
    let history = api.history(&room).await?;
    ensure!(history.len() == 3, "history after refusals: {history:?}");
    ensure!(
        history[0]["author"] == "u1"
            && history[0]["text"] == "hi"
            && history[0]["ts_us"].as_u64().is_some()
    );
    ensure!(
        history[0].as_object().is_some_and(|o| o.len() == 4),
        "message fields: {}",
        history[0]
    );
    Ok(())
}

/// History paging and query validation.
pub async fn history_queries(api: &Api) -> anyhow::Result<()> {
    let p = prefix("hist");
    let room = format!("{p}r");
    api.room(&room).await?;
    for i in 0..25 {
        api.say(&room, "u", &format!("m{i}"), &format!("k{i}"))
            .await?
            .expect_status(201)?;
    }
    let path = |q: &str| format!("/v1/rooms/{room}/messages{q}");
    let page = api.get(&path("?after=5&limit=10")).await?;
    let seqs: Vec<u64> = page.expect_status(200)?["messages"]
        .as_array()
        .context("array")?
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    ensure!(seqs == (6..=15).collect::<Vec<_>>(), "page {seqs:?}");
    ensure!(
        api.get(&path("")).await?.expect_status(200)?["messages"]
            .as_array()
            .map(Vec::len)
            == Some(25)
    );
    ensure!(api.get(&path("?after=25")).await?.expect_status(200)?["messages"] == json!([]));
    ensure!(
        api.get(&path("?after=0&limit=1000&foo=bar"))
            .await?
            .expect_status(200)?["messages"]
            .as_array()
            .map(Vec::len)
            == Some(25)
    );
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?after=-1",
        "?after=abc",
        "?limit=1.5",
        "?after=",
    ] {
        api.get(&path(bad))
            .await?
            .expect_error(400, "bad_request")
            .with_context(|| bad.to_owned())?;
    }
    api.get(&format!("/v1/rooms/{p}nowhere/messages"))
        .await?
        .expect_error(404, "unknown_room")?;
    Ok(())
}

/// Concurrent posts from many authors: history 1..N with every ack in it once.
pub async fn concurrent_posts_are_gap_free(api: &Api) -> anyhow::Result<()> {
    let p = prefix("cpost");
    let room = format!("{p}r");
    api.room(&room).await?;
    let jobs = (0..300u32).map(|k| {
        let (api, room) = (api.clone(), room.clone());
        async move {
            // Posts come in pairs under one (author, key): the second is a
            // repeat with the same text, except in every tenth pair, where
            // it carries another text (a conflict, whichever arrives first).
            let pair = k / 2;
            let text = if k % 2 == 1 && pair % 10 == 0 {
                format!("other{pair}")
            } else {
                format!("t{pair}")
            };
            let (author, key) = (format!("u{}", pair % 7), format!("k{pair}"));
            let first = api.say(&room, &author, &text, &key).await?;
            anyhow::Ok((author, key, text, first))
        }
    });
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(32)
        .collect()
        .await;
    let mut acked = Vec::new();
    for res in results {
        let (author, key, text, answer) = res?;
        match answer.status.as_u16() {
            200 | 201 => acked.push((
                author,
                key,
                text,
                answer.body["seq"].as_u64().context("seq")?,
            )),
            409 => ensure!(answer.code() == "idempotency_conflict"),
            _ => anyhow::bail!("post: {} {}", answer.status, answer.body),
        }
    }
    let history = api.seen_history(&room).await?;
    check_acked_posts(
        &room,
        &history,
        acked
            .iter()
            .map(|(a, k, t, s)| (a.as_str(), k.as_str(), t.as_str(), *s)),
    )?;
    Ok(())
}

/// WebSocket: replay after `after`, live delivery, post with ack, errors
/// that keep the connection open.
pub async fn websocket_replay_live_and_post(api: &Api) -> anyhow::Result<()> {
    let p = prefix("ws");
    let room = format!("{p}r");
    api.room(&room).await?;
    for i in 1..=3 {
        api.say(&room, "old", &format!("m{i}"), &format!("k{i}"))
            .await?
            .expect_status(201)?;
    }
    let mut ws = Session::connect(&api.ws_url(&room, "user=me&after=1")).await?;
    let replay = ws.next_messages(2).await?;
    ensure!(
        replay.iter().map(|m| m["seq"].as_u64()).collect::<Vec<_>>() == vec![Some(2), Some(3)],
        "replay {replay:?}"
    );
    ensure!(
        replay[0].get("type").is_none(),
        "history frames have no type: {}",
        replay[0]
    );
    api.say(&room, "other", "live", "k4")
        .await?
        .expect_status(201)?;
    let live = ws.next_messages(1).await?;
    ensure!(live[0]["seq"] == 4 && live[0]["text"] == "live" && live[0]["author"] == "other");
    ws.send(json!({"type": "post", "text": "mine", "client_msg_id": "c1"}))
        .await?;
    let (ack, own) = ws.ack_and_message("c1").await?;
    ensure!(
        ack["seq"] == 5 && own["seq"] == 5 && own["author"] == "me",
        "ack {ack} message {own}"
    );
    // A repeat acks the original seq and delivers nothing new.
    ws.send(json!({"type": "post", "text": "mine", "client_msg_id": "c1"}))
        .await?;
    let again = ws.next_frame().await?;
    ensure!(
        again["type"] == "ack" && again["seq"] == 5,
        "repeat ack {again}"
    );
    ws.send(json!({"type": "post", "text": "", "client_msg_id": "c2"}))
        .await?;
    let error = ws.next_frame().await?;
    ensure!(
        error["type"] == "error"
            && error["client_msg_id"] == "c2"
            && error["error"]["code"] == "invalid_text",
        "{error}"
    );
    ws.send(json!({"type": "post", "text": "after error", "client_msg_id": "c3"}))
        .await?;
    let (ack, _) = ws.ack_and_message("c3").await?;
    ensure!(ack["seq"] == 6, "connection kept open after an error frame");
    ws.close().await;
    let history = api.history(&room).await?;
    check_contiguous(&room, 0, history.iter().filter_map(|m| m["seq"].as_u64()))?;
    ensure!(history.len() == 6);
    Ok(())
}

/// Handshake errors come before the upgrade.
pub async fn websocket_handshake_errors(api: &Api) -> anyhow::Result<()> {
    let p = prefix("wsh");
    let room = format!("{p}r");
    api.room(&room).await?;
    let path = |r: &str, q: &str| format!("/v1/rooms/{r}/ws?{q}");
    api.get(&path(&format!("{p}nowhere"), "user=u"))
        .await?
        .expect_error(404, "unknown_room")?;
    api.get(&path(&room, "user=bad%20user"))
        .await?
        .expect_error(400, "bad_request")?;
    api.get(&path(&room, ""))
        .await?
        .expect_error(400, "bad_request")?;
    api.get(&path(&room, "user=u&after=-1"))
        .await?
        .expect_error(400, "bad_request")?;
    api.get(&path(&room, "user=u&after=x"))
        .await?
        .expect_error(400, "bad_request")?;
    ensure!(
        Session::connect(&api.ws_url(&format!("{p}nowhere"), "user=u"))
            .await
            .is_err()
    );
    Ok(())
}

/// A reader that stops reading is disconnected rather than buffered
/// without bound, and resumes with `after=` its last seq, losing nothing.
pub async fn websocket_slow_reader_is_disconnected_and_resumes(api: &Api) -> anyhow::Result<()> {
    let p = prefix("slow");
    let room = format!("{p}r");
    api.room(&room).await?;
    // A small receive buffer on our side, so what the server holds back is
    // bounded by its own buffers, which 4000 × 4 KB must exceed.
    let mut slow =
        Session::connect_with_receive_buffer(&api.ws_url(&room, "user=slow"), 64 * 1024).await?;
    let text = "x".repeat(4000);
    let total = 4000u64;
    let jobs = (0..total).map(|i| {
        let (api, room, text) = (api.clone(), room.clone(), text.clone());
        async move {
            api.say(&room, "w", &text, &format!("k{i}"))
                .await?
                .expect_status(201)
                .map(|_| ())
        }
    });
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    // Stay silent past the server's patience with a stuck reader (the
    // edge's WebSocket send timeout, 5 s by default), so the verdict does
    // not depend on how fast the posts went; then read what the server
    // still sends until it disconnects us.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (seen, closed) = slow
        .drain_until_closed(std::time::Duration::from_secs(20))
        .await?;
    ensure!(
        closed,
        "a reader {total} messages behind was not disconnected"
    );
    check_contiguous(&room, 0, seen.iter().copied())?;
    let last = seen.last().copied().unwrap_or(0);
    ensure!(
        last < total,
        "the slow reader received everything; the test did not stress it"
    );
    let mut resumed =
        Session::connect(&api.ws_url(&room, &format!("user=slow&after={last}"))).await?;
    let rest = resumed.next_messages((total - last) as usize).await?;
    check_contiguous(&room, last, rest.iter().filter_map(|m| m["seq"].as_u64()))?;
    resumed.close().await;
    Ok(())
}
