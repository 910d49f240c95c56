//! The bank's cases: accounts, transfers, idempotency, error precedence,
//! money conserved under concurrency.

use std::collections::HashMap;

use anyhow::{Context, ensure};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

use crate::client::{Api, prefix};

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
