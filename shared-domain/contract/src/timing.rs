//! `Server-Timing` for sampled requests (`--server-timing`, off by
//! default, so not one of API.md's cases): run by each variant's tests
//! against an edge started with it on.

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::json;

use crate::Api;
use crate::client::prefix;

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// A sampled transfer is answered with the tree of its hops: the edge at
/// the root, at least one hop with its handler nested under it, named as
/// `hop` and `handler` say (`ask.`/`handle.` in the microlith, `call.`/
/// `serve.` over the network); no span lasts longer than its parent, nor
/// do a span's children together. An unsampled request is not timed.
pub async fn sampled_requests_answer_their_timing(
    api: &Api,
    hop: &str,
    handler: &str,
) -> anyhow::Result<()> {
    let p = prefix("timing");
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    api.open(&a, 1000).await?;
    api.open(&b, 0).await?;
    let transfer = |id: String, traceparent: &'static str| {
        let body = json!({"transfer_id": id, "from": a, "to": b, "amount": 10})
            .to_string()
            .into_bytes();
        async move {
            api.raw_with(
                Method::POST,
                "/v1/transfers",
                Some("application/json"),
                Some(body),
                &[("traceparent", traceparent)],
            )
            .await
        }
    };
    for plain in [
        transfer(format!("{p}t0"), NOT_SAMPLED).await?,
        api.transfer(&format!("{p}t1"), &a, &b, 10).await?,
    ] {
        plain.expect_status(200)?;
        ensure!(
            plain.headers.get(edge::timing::HEADER).is_none(),
            "an unsampled request was timed"
        );
    }
    let sampled = transfer(format!("{p}t2"), SAMPLED).await?;
    sampled.expect_status(200)?;
    let header = sampled
        .headers
        .get(edge::timing::HEADER)
        .and_then(|v| v.to_str().ok())
        .context("a sampled request answered no Server-Timing")?;
    let spans = edge::timing::decode(header);
    ensure!(
        spans
            .first()
            .is_some_and(|s| s.depth == 0 && s.name == "edge"),
        "the root is not the edge: {header}"
    );
    ensure!(
        spans.iter().skip(1).all(|s| s.depth > 0),
        "more than one root: {header}"
    );
    // The header rounds to the microsecond.
    let slack = std::time::Duration::from_micros(2);
    for (i, span) in spans.iter().enumerate() {
        let children: Vec<_> = spans[i + 1..]
            .iter()
            .take_while(|s| s.depth > span.depth)
            .filter(|s| s.depth == span.depth + 1)
            .collect();
        let sum: std::time::Duration = children.iter().map(|s| s.duration).sum();
        ensure!(
            sum <= span.duration + slack * children.len() as u32,
            "{}'s children outlast it: {header}",
            span.name
        );
    }
    let nested = spans.windows(2).any(|w| {
        w[0].name.starts_with(hop) && w[1].name.starts_with(handler) && w[1].depth == w[0].depth + 1
    });
    ensure!(
        nested,
        "no {hop}* hop with its {handler}* handler under it: {header}"
    );
    ensure!(
        api.balance(&b).await? == 30,
        "timing changed what the transfers did"
    );
    Ok(())
}
