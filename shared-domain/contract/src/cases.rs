//! The cases. Each takes the edge under test and fails with a message
//! naming what API.md says and what the edge did.

use std::collections::HashMap;

use anyhow::{Context, ensure};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

use shared_domain::invariant::{check_acked_posts, check_contiguous};

use crate::client::{Api, prefix};
use crate::ws::Session;

/// Accounts: create, read, duplicate, unknown.
pub async fn accounts_happy_path(api: &Api) -> anyhow::Result<()> {
    let p = prefix("acc");
    let a = format!("{p}a");
    let answer = api
        .post(
            "/v1/accounts",
            &json!({"account_id": a, "opening_balance": 1000}),
        )
        .await?;
    ensure!(
        answer.expect_status(201)? == &json!({"account_id": a, "balance": 1000}),
        "create body: {}",
        answer.body
    );
    ensure!(api.balance(&a).await? == 1000);
    api.post(
        "/v1/accounts",
        &json!({"account_id": a, "opening_balance": 5}),
    )
    .await?
    .expect_error(409, "account_exists")?;
    ensure!(
        api.balance(&a).await? == 1000,
        "a refused create changed the balance"
    );
    api.open(&format!("{p}zero"), 0).await?;
    api.open(&format!("{p}max"), 1_000_000_000_000_000).await?;
    api.get(&format!("/v1/accounts/{p}nobody"))
        .await?
        .expect_error(404, "unknown_account")?;
    api.get("/v1/accounts/bad%20id")
        .await?
        .expect_error(422, "invalid_id")?;
    Ok(())
}

/// Every bad body for `POST /v1/accounts` is refused and creates nothing.
pub async fn account_bad_inputs(api: &Api) -> anyhow::Result<()> {
    let p = prefix("bad");
    let id = format!("{p}x");
    let cases: Vec<(String, u16, &str)> = vec![
        ("{".into(), 400, "bad_request"),
        ("[]".into(), 400, "bad_request"),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":"5"}}"#),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":1.5}}"#),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":1.0}}"#),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":1e3}}"#),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":null}}"#),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":true}}"#),
            400,
            "bad_request",
        ),
        (format!(r#"{{"account_id":"{id}"}}"#), 400, "bad_request"),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":5,"extra":1}}"#),
            400,
            "bad_request",
        ),
        (
            r#"{"account_id":7,"opening_balance":5}"#.into(),
            400,
            "bad_request",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":-1}}"#),
            422,
            "invalid_amount",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":1000000000000001}}"#),
            422,
            "invalid_amount",
        ),
        (
            format!(r#"{{"account_id":"{id}","opening_balance":123456789012345678901234567890}}"#),
            422,
            "invalid_amount",
        ),
        (
            r#"{"account_id":"has space","opening_balance":5}"#.into(),
            422,
            "invalid_id",
        ),
        (
            r#"{"account_id":"","opening_balance":5}"#.into(),
            422,
            "invalid_id",
        ),
        (
            format!(
                r#"{{"account_id":"{}","opening_balance":5}}"#,
                "x".repeat(65)
            ),
            422,
            "invalid_id",
        ),
        (
            r#"{"account_id":"é","opening_balance":5}"#.into(),
            422,
            "invalid_id",
        ),
    ];
    for (body, status, code) in cases {
        api.post_text("/v1/accounts", &body)
            .await?
            .expect_error(status, code)
            .with_context(|| format!("body {body}"))?;
    }
    let good = format!(r#"{{"account_id":"{id}","opening_balance":5}}"#);
    api.raw(
        Method::POST,
        "/v1/accounts",
        Some("text/plain"),
        Some(good.clone().into_bytes()),
    )
    .await?
    .expect_error(415, "unsupported_media_type")?;
    api.raw(
        Method::POST,
        "/v1/accounts",
        None,
        Some(good.clone().into_bytes()),
    )
    .await?
    .expect_error(415, "unsupported_media_type")?;
    let huge = format!(
        r#"{{"account_id":"{id}","opening_balance":5,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    api.post_text("/v1/accounts", &huge)
        .await?
        .expect_error(413, "body_too_large")?;
    api.get(&format!("/v1/accounts/{id}"))
        .await?
        .expect_error(404, "unknown_account")
        .context("a refused request created the account")?;
    // Parameters and case are allowed in the media type.
    api.raw(
        Method::POST,
        "/v1/accounts",
        Some("Application/JSON; charset=utf-8"),
        Some(good.into_bytes()),
    )
    .await?
    .expect_status(201)?;
    Ok(())
}

/// A transfer commits once; a repeat answers the same; another body conflicts.
pub async fn transfer_happy_path_and_idempotency(api: &Api) -> anyhow::Result<()> {
    let p = prefix("tx");
    let (a, b, t) = (format!("{p}a"), format!("{p}b"), format!("{p}t1"));
    api.open(&a, 1000).await?;
    api.open(&b, 0).await?;
    let first = api.transfer(&t, &a, &b, 250).await?;
    ensure!(
        first.expect_status(200)? == &json!({"transfer_id": t, "status": "committed"}),
        "commit body {}",
        first.body
    );
    for _ in 0..3 {
        api.transfer(&t, &a, &b, 250).await?.expect_status(200)?;
    }
    ensure!(
        api.balance(&a).await? == 750 && api.balance(&b).await? == 250,
        "a repeat moved money again"
    );
    api.transfer(&t, &a, &b, 251)
        .await?
        .expect_error(409, "idempotency_conflict")?;
    api.transfer(&t, &b, &a, 250)
        .await?
        .expect_error(409, "idempotency_conflict")?;
    let record = api.get(&format!("/v1/transfers/{t}")).await?;
    ensure!(
        record.expect_status(200)?
            == &json!({"transfer_id": t, "status": "committed", "from": a, "to": b, "amount": 250}),
        "GET body {}",
        record.body
    );
    // Insufficient funds is recorded: a repeat answers the same 409.
    let r = format!("{p}t2");
    api.transfer(&r, &b, &a, 251)
        .await?
        .expect_error(409, "insufficient_funds")?;
    api.open(&format!("{p}rich"), 10).await?;
    api.transfer(&r, &b, &a, 251)
        .await?
        .expect_error(409, "insufficient_funds")?;
    let rejected = api.get(&format!("/v1/transfers/{r}")).await?;
    let body = rejected.expect_status(200)?;
    ensure!(
        body["status"] == "rejected" && body["reason"] == "insufficient_funds",
        "GET {body}"
    );
    ensure!(api.balance(&b).await? == 250);
    // Exactly the balance is allowed.
    api.transfer(&format!("{p}t3"), &b, &a, 250)
        .await?
        .expect_status(200)?;
    ensure!(api.balance(&b).await? == 0 && api.balance(&a).await? == 1000);
    Ok(())
}

/// Errors and their precedence; refused transfers record nothing.
pub async fn transfer_errors_and_precedence(api: &Api) -> anyhow::Result<()> {
    let p = prefix("txe");
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    api.open(&a, 100).await?;
    api.open(&b, 0).await?;
    let ghost = format!("{p}ghost");
    let t = |n: &str| format!("{p}{n}");
    api.transfer(&t("1"), &a, &ghost, 5)
        .await?
        .expect_error(404, "unknown_account")?;
    api.transfer(&t("2"), &ghost, &a, 5)
        .await?
        .expect_error(404, "unknown_account")?;
    // Unknown account outranks insufficient funds.
    api.transfer(&t("3"), &b, &ghost, 5)
        .await?
        .expect_error(404, "unknown_account")?;
    api.transfer(&t("4"), &a, &a, 5)
        .await?
        .expect_error(422, "invalid_transfer")?;
    api.transfer(&t("5"), &a, &b, 0)
        .await?
        .expect_error(422, "invalid_amount")?;
    api.transfer(&t("6"), &a, &b, -3)
        .await?
        .expect_error(422, "invalid_amount")?;
    api.transfer(&t("7"), &a, &b, 1_000_000_000_000_001)
        .await?
        .expect_error(422, "invalid_amount")?;
    api.post_text(
        "/v1/transfers",
        &format!(
            r#"{{"transfer_id":"{}","from":"{a}","to":"{b}","amount":2.5}}"#,
            t("8")
        ),
    )
    .await?
    .expect_error(400, "bad_request")?;
    api.post_text(
        "/v1/transfers",
        &format!(r#"{{"transfer_id":"{}","from":"{a}","to":"{b}"}}"#, t("8")),
    )
    .await?
    .expect_error(400, "bad_request")?;
    api.transfer("bad id", &a, &b, 5)
        .await?
        .expect_error(422, "invalid_id")?;
    // 422 outranks 404.
    api.transfer(&t("9"), "bad id", &ghost, 5)
        .await?
        .expect_error(422, "invalid_id")?;
    for n in ["1", "2", "3", "4", "5", "6", "7", "8"] {
        api.get(&format!("/v1/transfers/{}", t(n)))
            .await?
            .expect_error(404, "unknown_transfer")
            .with_context(|| format!("refused transfer {n} was recorded"))?;
    }
    ensure!(
        api.balance(&a).await? == 100 && api.balance(&b).await? == 0,
        "a refused transfer moved money"
    );
    // A refused id is evaluated afresh once the account exists.
    api.open(&ghost, 0).await?;
    api.transfer(&t("1"), &a, &ghost, 5)
        .await?
        .expect_status(200)?;
    api.get("/v1/transfers/bad%20id")
        .await?
        .expect_error(422, "invalid_id")?;
    Ok(())
}

/// Concurrent transfers (with repeats) conserve money, and every
/// acknowledged outcome is what GET reports.
pub async fn concurrent_transfers_conserve_money(api: &Api) -> anyhow::Result<()> {
    let p = prefix("conc");
    let n = 10;
    let accounts: Vec<String> = (0..n).map(|i| format!("{p}a{i}")).collect();
    for a in &accounts {
        api.open(a, 1000).await?;
    }
    let jobs = (0..400u64).map(|k| {
        let api = api.clone();
        // Ids repeat: k in 300..350 resends the body of k - 300 (a retry),
        // k in 350..400 sends another body under the id of k - 300 (a
        // conflict, whichever of the two arrives first).
        let body = if (300..350).contains(&k) { k - 300 } else { k };
        let from = accounts[(body * 7 % n as u64) as usize].clone();
        let to = accounts[((body * 7 + 1 + body % 3) % n as u64) as usize].clone();
        let id = format!("{p}t{}", k % 300);
        async move {
            let answer = api
                .transfer(&id, &from, &to, (body % 400 + 1) as i64)
                .await?;
            anyhow::Ok((id, answer))
        }
    });
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(32)
        .collect()
        .await;
    let mut acked: HashMap<String, String> = HashMap::new();
    for res in results {
        let (id, answer) = res?;
        let status = match (answer.status.as_u16(), answer.code()) {
            (200, _) => "committed",
            (409, "insufficient_funds") => "rejected",
            (409, "idempotency_conflict") | (202, _) => continue,
            _ => anyhow::bail!(
                "transfer {id}: unexpected {} {}",
                answer.status,
                answer.body
            ),
        };
        acked.insert(id, status.to_owned());
    }
    api.settled_audit().await?;
    for (id, status) in &acked {
        let record = api.get(&format!("/v1/transfers/{id}")).await?;
        ensure!(
            record.expect_status(200)?["status"] == status.as_str(),
            "acknowledged {id} as {status}, now {}",
            record.body
        );
    }
    let mut total = 0;
    for a in &accounts {
        let balance = api.balance(a).await?;
        ensure!(balance >= 0, "negative balance in {a}");
        total += balance;
    }
    ensure!(total == 1000 * n as i64, "money not conserved: {total}");
    Ok(())
}

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

/// `/healthz`, `/readyz`, `/metrics`, `/v1/audit`.
pub async fn operations_routes(api: &Api) -> anyhow::Result<()> {
    api.get("/healthz").await?.expect_status(200)?;
    api.get("/readyz").await?.expect_status(200)?;
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("http_request_duration_seconds"),
        "metrics lack the request histogram"
    );
    ensure!(
        metrics.contains("route=\"/healthz\""),
        "histogram not labelled by route"
    );
    let audit = api.get("/v1/audit").await?;
    let body = audit.expect_status(200)?;
    for key in ["accounts", "total_balance", "pending_transfers"] {
        ensure!(body[key].is_u64(), "audit {key}: {body}");
    }
    Ok(())
}

/// 404 `not_found` and 405 with `Allow`.
pub async fn unknown_routes_and_methods(api: &Api) -> anyhow::Result<()> {
    api.get("/v1/nothing")
        .await?
        .expect_error(404, "not_found")?;
    api.get("/").await?.expect_error(404, "not_found")?;
    let answer = api.raw(Method::DELETE, "/v1/accounts", None, None).await?;
    answer.expect_error(405, "method_not_allowed")?;
    ensure!(answer.headers.get("allow").is_some(), "405 without Allow");
    let answer = api.raw(Method::PUT, "/v1/transfers/x", None, None).await?;
    answer.expect_error(405, "method_not_allowed")?;
    // The route outranks the body checks.
    api.raw(
        Method::POST,
        "/v1/nothing",
        Some("text/plain"),
        Some(vec![b'x'; 100_000]),
    )
    .await?
    .expect_error(404, "not_found")?;
    Ok(())
}
