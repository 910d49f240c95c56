//! The cases. Each takes the edge under test and fails with a message
//! naming what API.md says and what the edge did.

use anyhow::ensure;
use reqwest::Method;

use crate::client::Api;

mod bank;
mod chat;
mod slow;

pub use bank::*;
pub use chat::*;
pub use slow::*;

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
