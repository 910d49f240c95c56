//! The requests of a workload: prepared calls for each scenario, sent
//! over the generator's client, and the accounts and rooms opened first.

use std::sync::Arc;
use std::time::Duration;

use shared_domain::workload::Workload;

use crate::record::{Outcome, Scenario};

/// A prepared request: method, path, JSON body.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) post: bool,
    pub(crate) path: String,
    pub(crate) body: Option<bytes::Bytes>,
}

/// Opens the workload's accounts and rooms on a variant (32 at a time).
pub async fn prepare(api: &contract::Api, workload: &Workload) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut opened = futures::stream::iter(workload.accounts().into_iter().map(
        |(id, opening)| async move { api.open(id.as_str(), opening.balance().minor_units()).await },
    ))
    .buffer_unordered(32);
    while let Some(result) = opened.next().await {
        result?;
    }
    for room in workload.rooms() {
        api.room(room.as_str()).await?;
    }
    Ok(())
}

pub(crate) fn calls(scenario: Scenario, workload: &mut Workload, n: u64) -> Vec<Call> {
    (0..n)
        .map(|_| match scenario {
            Scenario::Balance => Call {
                post: false,
                path: format!("/v1/accounts/{}", workload.next_balance()),
                body: None,
            },
            Scenario::Transfer => {
                let t = workload.next_transfer();
                Call {
                    post: true,
                    path: "/v1/transfers".into(),
                    body: Some(
                        serde_json::json!({
                            "transfer_id": t.transfer_id.as_str(),
                            "from": t.from.as_str(),
                            "to": t.to.as_str(),
                            "amount": t.amount.minor_units(),
                        })
                        .to_string()
                        .into(),
                    ),
                }
            }
            Scenario::Post => {
                let p = workload.next_post();
                Call {
                    post: true,
                    path: format!("/v1/rooms/{}/messages", p.room),
                    body: Some(
                        serde_json::json!({
                            "author": p.author.as_str(),
                            "text": p.text.as_str(),
                            "client_msg_id": p.client_msg_id.as_str(),
                        })
                        .to_string()
                        .into(),
                    ),
                }
            }
            Scenario::Floor => Call {
                post: false,
                path: "/echo".into(),
                body: None,
            },
        })
        .collect()
}

/// Sends one prepared request; its outcome once the whole answer is read.
pub(crate) fn send(
    http: &crate::generator::client::Client,
    base: &str,
    call: &Call,
) -> impl Future<Output = Outcome> + Send + use<> {
    let answer = send_raw(http, base, call, None);
    async move {
        answer
            .await
            .map_or(Outcome::Error, |(status, _)| Outcome::of_status(status))
    }
}

/// A sample's `traceparent` and where its timing goes.
pub(crate) type Timed = (String, Arc<parking_lot::Mutex<Vec<Sample>>>);

/// Sends `call`; when `timed`, asks for its timing and keeps the sample
/// (a correct answer with a `Server-Timing` tree) with its time from
/// sending to the whole answer.
pub(crate) fn send_raw(
    http: &crate::generator::client::Client,
    base: &str,
    call: &Call,
    timed: Option<Timed>,
) -> impl Future<Output = Option<(u16, bytes::Bytes)>> + Send + use<> {
    let (http, base, post, path, body) = (
        http.clone(),
        base.to_owned(),
        call.post,
        call.path.clone(),
        call.body.clone(),
    );
    async move {
        let Some((traceparent, samples)) = timed else {
            return http.request(&base, post, &path, body).await;
        };
        let sent = std::time::Instant::now();
        let (status, answer, timing) = http
            .request_timed(&base, post, &path, body, &traceparent)
            .await?;
        let latency = sent.elapsed();
        if let Some(timing) =
            timing.filter(|_| matches!(Outcome::of_status(status), Outcome::Ok | Outcome::Refused))
        {
            samples.lock().push(Sample {
                latency,
                spans: edge::timing::decode(&timing),
            });
        }
        Some((status, answer))
    }
}

/// One sampled request: its time from sending to the whole answer, and
/// what the system reported of it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Sent → whole answer read.
    pub latency: Duration,
    /// The `Server-Timing` tree, root first.
    pub spans: Vec<edge::timing::Span>,
}
