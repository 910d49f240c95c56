//! A small HTTP client for the suite.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The edge under test.
#[derive(Clone)]
pub struct Api {
    /// `http://host:port`.
    pub base: String,
    http: reqwest::Client,
    /// How often a request refused with 429 `overloaded` is sent again
    /// (0: never, the answer is returned).
    overload_resends: u32,
}

/// The first pause before a refused request is sent again; it doubles
/// up to [`RESEND_PAUSE_MAX`].
const RESEND_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
const RESEND_PAUSE_MAX: std::time::Duration = std::time::Duration::from_millis(250);

/// The pauses before each of at most `times` sends of a request refused
/// as overloaded: 10 ms, doubling up to 250 ms
/// (API.md's advice to clients).
pub fn resend_pauses(times: u32) -> impl Iterator<Item = std::time::Duration> {
    std::iter::successors(Some(RESEND_PAUSE), |p| Some((*p * 2).min(RESEND_PAUSE_MAX)))
        .take(times as usize)
}

/// An answer: status, headers and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Fails unless status and error code match.
    pub fn expect_error(&self, status: u16, code: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.status.as_u16() == status && self.code() == code,
            "expected {status} {code}, got {} {}",
            self.status,
            self.body
        );
        anyhow::ensure!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error body without a message: {}",
            self.body
        );
        Ok(())
    }

    /// Fails unless the status matches.
    pub fn expect_status(&self, status: u16) -> anyhow::Result<&Value> {
        anyhow::ensure!(
            self.status.as_u16() == status,
            "expected {status}, got {} {}",
            self.status,
            self.body
        );
        Ok(&self.body)
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A unique id prefix for one case.
pub fn prefix(case: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{case}-{n}-{nanos:x}-")
}

impl Api {
    /// The sum of the `/metrics` series `selector` picks (see [`metric_sum`]).
    pub async fn metric_sum(&self, selector: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(metric_sum(&text, selector))
    }

    /// A client for the edge at `base`.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: {
                // The workspace builds reqwest with `rustls-no-provider`
                // (for the microservices' mTLS): a process-wide provider
                // must exist before any client is built.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
            }
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            // Idle connections go before the edge's 10 s for the next
            // request would close one under a request being sent.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()?,
            overload_resends: 0,
        })
    }

    /// This client, sending a request refused with 429 `overloaded` again
    /// after a pause (10 ms doubling to 250 ms), up to `times` times, as
    /// API.md tells a client to; then the 429 is the answer. A refusal
    /// changes nothing, so the cases' checks still see every outcome:
    /// the suite checks what the edge answers, not how much it takes, and
    /// its cases load one edge together (on two cores, debug builds).
    pub fn resending_overload(mut self, times: u32) -> Self {
        self.overload_resends = times;
        self
    }

    /// Any request with an optional raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        self.raw_with(method, path, content_type, body, &[]).await
    }

    /// [`Api::raw`] with extra request headers.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let mut pauses = resend_pauses(self.overload_resends);
        loop {
            // The body is bytes in memory, so the request can be sent again.
            let attempt = req
                .try_clone()
                .with_context(|| format!("{method} {path}: a body that cannot be resent"))?;
            let res = attempt
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let answer = Answer {
                status: res.status(),
                headers: res.headers().clone(),
                body: serde_json::from_slice(&res.bytes().await?).unwrap_or(Value::Null),
            };
            if answer.status != StatusCode::TOO_MANY_REQUESTS || answer.code() != "overloaded" {
                return Ok(answer);
            }
            let Some(pause) = pauses.next() else {
                return Ok(answer);
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// `POST` a JSON text.
    pub async fn post_text(&self, path: &str, json: &str) -> anyhow::Result<Answer> {
        self.raw(
            Method::POST,
            path,
            Some("application/json"),
            Some(json.as_bytes().to_vec()),
        )
        .await
    }

    /// `POST` a JSON value.
    pub async fn post(&self, path: &str, json: &Value) -> anyhow::Result<Answer> {
        self.post_text(path, &json.to_string()).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.raw(Method::GET, path, None, None).await
    }

    /// Opens an account, expecting 201.
    pub async fn open(&self, id: &str, balance: i64) -> anyhow::Result<()> {
        self.post(
            "/v1/accounts",
            &serde_json::json!({"account_id": id, "opening_balance": balance}),
        )
        .await?
        .expect_status(201)?;
        Ok(())
    }

    /// A balance, expecting 200.
    pub async fn balance(&self, id: &str) -> anyhow::Result<i64> {
        let answer = self.get(&format!("/v1/accounts/{id}")).await?;
        answer.expect_status(200)?["balance"]
            .as_i64()
            .context("balance is an integer")
    }

    /// A transfer.
    pub async fn transfer(
        &self,
        id: &str,
        from: &str,
        to: &str,
        amount: i64,
    ) -> anyhow::Result<Answer> {
        self.post(
            "/v1/transfers",
            &serde_json::json!({"transfer_id": id, "from": from, "to": to, "amount": amount}),
        )
        .await
    }

    /// Creates a room, expecting 201.
    pub async fn room(&self, room: &str) -> anyhow::Result<()> {
        self.post("/v1/rooms", &serde_json::json!({"room": room}))
            .await?
            .expect_status(201)?;
        Ok(())
    }

    /// Posts a message.
    pub async fn say(
        &self,
        room: &str,
        author: &str,
        text: &str,
        key: &str,
    ) -> anyhow::Result<Answer> {
        self.post(
            &format!("/v1/rooms/{room}/messages"),
            &serde_json::json!({"author": author, "text": text, "client_msg_id": key}),
        )
        .await
    }

    /// The whole history of a room as the invariant checkers read it.
    pub async fn seen_history(
        &self,
        room: &str,
    ) -> anyhow::Result<Vec<shared_domain::invariant::SeenMessage>> {
        Ok(self
            .history(room)
            .await?
            .iter()
            .map(|m| shared_domain::invariant::SeenMessage {
                seq: m["seq"].as_u64().unwrap_or(0),
                author: m["author"].as_str().unwrap_or("").to_owned(),
                client_msg_id: None,
                text: m["text"].as_str().unwrap_or("").to_owned(),
            })
            .collect())
    }

    /// The whole history of a room, paging by 1000.
    pub async fn history(&self, room: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .history_within(room, std::time::Duration::ZERO)
            .await?
            .0)
    }

    /// A room's whole history, asking a page again while it answers 503
    /// (load shed, a breaker open) for up to `patience`; with how long it
    /// waited. Any other answer, or a 503 past `patience`, is an error.
    pub async fn history_within(
        &self,
        room: &str,
        patience: std::time::Duration,
    ) -> anyhow::Result<(Vec<Value>, std::time::Duration)> {
        let started = std::time::Instant::now();
        let mut waited = std::time::Duration::ZERO;
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .and_then(|m: &Value| m["seq"].as_u64())
                .unwrap_or(0);
            let page = self
                .get(&format!(
                    "/v1/rooms/{room}/messages?after={after}&limit=1000"
                ))
                .await?;
            if page.status.as_u16() == 503 && started.elapsed() < patience {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                waited = started.elapsed();
                continue;
            }
            let msgs = page.expect_status(200)?["messages"]
                .as_array()
                .context("messages array")?
                .clone();
            if msgs.is_empty() {
                return Ok((all, waited));
            }
            all.extend(msgs);
        }
    }

    /// The audit, once nothing is pending (waits up to 10 s).
    pub async fn settled_audit(&self) -> anyhow::Result<Value> {
        // After a fault the audit may answer 503 for a while (a component
        // restarting) and transfers may still be completing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let audit = self.get("/v1/audit").await?;
            let past = std::time::Instant::now() > deadline;
            if audit.status.as_u16() == 200 {
                if audit.body["pending_transfers"].as_u64() == Some(0) || past {
                    return Ok(audit.body);
                }
            } else if past {
                return Ok(audit.expect_status(200)?.clone());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The WebSocket URL of a room.
    pub fn ws_url(&self, room: &str, query: &str) -> String {
        let base = self.base.replacen("http://", "ws://", 1);
        format!("{base}/v1/rooms/{room}/ws?{query}")
    }
}

/// The sum of the series of a Prometheus text exposition that `selector`
/// picks: a metric name (all its series), or a name with its labels as
/// written (`breaker_state{downstream="accounts"}`). A longer name that
/// merely starts with the selector is not picked.
pub fn metric_sum(text: &str, selector: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(selector)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod metric_tests {
    #[test]
    fn a_selector_sums_its_series_only() {
        let text = "# TYPE x counter\nx{a=\"1\"} 2\nx{a=\"2\"} 3\nx_total 7\ny 1\n";
        assert_eq!(super::metric_sum(text, "x"), 5.0);
        assert_eq!(super::metric_sum(text, "x{a=\"2\"}"), 3.0);
        assert_eq!(super::metric_sum(text, "x_total"), 7.0);
        assert_eq!(super::metric_sum(text, "z"), 0.0);
    }
}
