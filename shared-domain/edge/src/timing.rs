//! Where one request's time went, hop by hop, for the requests a caller
//! asks about: the W3C `Server-Timing` answer header.
//!
//! A request whose `traceparent` carries the sampled flag (`-01`) is timed
//! when timing is switched on (`--server-timing`, off by default: the
//! header tells a client how the system is built). Its handler runs with a
//! collector in its task; every hop made inside adds a span to it: a
//! network call (`call.*`, the client side) and the callee's own answer
//! header nested under it (`serve.*`, the server side), or an actor call
//! (`ask.*`, the caller side) with the handler's own time nested under it
//! (`handle.*`). The edge answers the whole tree in `Server-Timing`, so a
//! harness learns, per sampled request, the edge's time, each hop's time
//! on the wire and in queues (a call minus what its callee reports), and
//! each handler's time, with no clock shared between processes: every
//! duration is read on one clock, in the process it describes.
//!
//! Unsampled requests pay one header lookup at the edge and one task-local
//! lookup per hop.
//!
//! The header lists the spans in pre-order, `name;dur=<ms>;desc=<depth>`:
//! `edge;dur=0.210;desc=0, ask.accounts-1;dur=0.004;desc=1,
//! handle.accounts-1;dur=0.002;desc=2`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderValue;

/// The answer header that carries the spans.
pub const HEADER: &str = "server-timing";

/// One timed part of a request, at its depth in the tree of hops.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 0 for the root (the edge, or a server's whole answer).
    pub depth: u8,
    /// `edge`, `call.<callee>`, `serve.<method>`, `ask.<actor>`,
    /// `handle.<actor>`.
    pub name: String,
    /// How long it took.
    pub duration: Duration,
}

/// The most spans one request collects (a transfer has about eight).
const MAX_SPANS: usize = 64;

struct Collector {
    spans: Vec<Span>,
    depth: u8,
}

tokio::task_local! {
    static COLLECTOR: RefCell<Collector>;
}

/// Parses a `traceparent` header: `(trace id, parent span id, sampled)`.
/// Version 00 exactly; a later version is read by its first four fields,
/// as the W3C spec asks. `None` when malformed.
pub fn traceparent(header: &str) -> Option<(u128, u64, bool)> {
    let mut parts = header.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if version.len() != 2 || !hex(version) || version == "ff" || (version == "00" && rest.is_some())
    {
        return None;
    }
    if trace.len() != 32
        || parent.len() != 16
        || flags.len() != 2
        || !hex(trace)
        || !hex(parent)
        || !hex(flags)
    {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags & 1 == 1))
}

/// Whether a request's headers ask for its timing (a well-formed
/// `traceparent` with the sampled flag).
pub fn sampled(headers: &http::HeaderMap) -> bool {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(traceparent)
        .is_some_and(|(_, _, sampled)| sampled)
}

/// Whether the running task is collecting spans.
pub fn collecting() -> bool {
    COLLECTOR.try_with(|_| ()).is_ok()
}

/// Runs `f` with a collector, timing it as the root span `name`; its
/// output and the spans, root first.
pub async fn collect<F: Future>(name: &str, f: F) -> (F::Output, Vec<Span>) {
    let collector = RefCell::new(Collector {
        spans: Vec::new(),
        depth: 0,
    });
    let (output, spans) = COLLECTOR
        .scope(collector, async {
            let output = {
                let _root = enter(name);
                f.await
            };
            let spans = COLLECTOR.with(|c| std::mem::take(&mut c.borrow_mut().spans));
            (output, spans)
        })
        .await;
    (output, spans)
}

/// Starts the span `name` nested in the current one, when the task is
/// collecting; it ends when the guard drops.
pub fn enter(name: &str) -> Option<SpanGuard> {
    COLLECTOR
        .try_with(|c| {
            let mut c = c.borrow_mut();
            if c.spans.len() >= MAX_SPANS {
                return None;
            }
            let index = c.spans.len();
            let depth = c.depth;
            c.spans.push(Span {
                depth,
                name: name.to_owned(),
                duration: Duration::ZERO,
            });
            c.depth = depth.saturating_add(1);
            Some(SpanGuard {
                index,
                depth,
                started: Instant::now(),
            })
        })
        .ok()
        .flatten()
}

/// An open span; see [`enter`].
#[derive(Debug)]
pub struct SpanGuard {
    index: usize,
    depth: u8,
    started: Instant,
}

impl SpanGuard {
    /// Renames the span (e.g. once the caller knows how a call went).
    pub fn rename(&self, name: &str) {
        let _ = COLLECTOR.try_with(|c| {
            if let Some(span) = c.borrow_mut().spans.get_mut(self.index) {
                span.name = name.to_owned();
            }
        });
    }

    /// Adds what a callee reported (its own spans, root first) under this
    /// span.
    pub fn adopt(&self, spans: impl IntoIterator<Item = Span>) {
        let _ = COLLECTOR.try_with(|c| {
            let mut c = c.borrow_mut();
            for span in spans {
                if c.spans.len() >= MAX_SPANS {
                    break;
                }
                let depth = self.depth.saturating_add(1).saturating_add(span.depth);
                c.spans.push(Span { depth, ..span });
            }
        });
    }

    /// Adds what a callee's answer header reported under this span.
    pub fn adopt_header(&self, header: Option<&HeaderValue>) {
        if let Some(spans) = header.and_then(|v| v.to_str().ok()).map(decode) {
            self.adopt(spans);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let _ = COLLECTOR.try_with(|c| {
            let mut c = c.borrow_mut();
            if let Some(span) = c.spans.get_mut(self.index) {
                span.duration = elapsed;
            }
            c.depth = self.depth;
        });
    }
}

/// A span name as a header token: anything but letters, digits, `-`, `_`
/// and `.` becomes `.`, and a leading `.` goes.
pub fn token(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '.'
            }
        })
        .collect();
    mapped.trim_start_matches('.').to_owned()
}

/// The header value for `spans`.
pub fn encode(spans: &[Span]) -> String {
    let mut out = String::with_capacity(spans.len() * 40);
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let name = token(&span.name);
        out.push_str(if name.is_empty() { "span" } else { &name });
        out.push_str(&format!(
            ";dur={:.3};desc={}",
            span.duration.as_secs_f64() * 1e3,
            span.depth
        ));
    }
    out
}

/// Reads a header value made by [`encode`]; entries it cannot read are
/// skipped (a header from elsewhere is not an error).
pub fn decode(header: &str) -> Vec<Span> {
    header
        .split(',')
        .filter_map(|entry| {
            let mut params = entry.trim().split(';');
            let name = params.next()?.trim();
            let (mut duration, mut depth) = (None, None);
            for param in params {
                match param.trim().split_once('=') {
                    Some(("dur", v)) => {
                        duration = v.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
                    }
                    Some(("desc", v)) => depth = v.trim_matches('"').parse::<u8>().ok(),
                    _ => {}
                }
            }
            Some(Span {
                depth: depth?,
                name: name.to_owned(),
                duration: Duration::from_secs_f64(duration? / 1e3),
            })
        })
        .collect()
}

/// Adds `spans` to an answer's headers.
pub fn answer_with(headers: &mut http::HeaderMap, spans: &[Span]) {
    if let Ok(value) = HeaderValue::from_str(&encode(spans)) {
        headers.insert(HEADER, value);
    }
}

/// A tower layer for a server behind the edge (a gRPC or HTTP service):
/// a sampled request is handled with a collector, timed as
/// `serve.<path>`, and its answer carries the spans in `Server-Timing`.
/// Built with `enabled: false` it passes every request through. A tower
/// Layer/Service pair of its own: the collector is a task-local around the
/// whole call, and the answer's header is written from what it collected,
/// which no tower or tower-http utility does in one place.
#[derive(Clone, Copy, Debug)]
pub struct ServeLayer {
    enabled: bool,
}

impl ServeLayer {
    /// A layer that times sampled requests when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S> tower::Layer<S> for ServeLayer {
    type Service = Serve<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Serve {
            inner,
            enabled: self.enabled,
        }
    }
}

/// See [`ServeLayer`].
#[derive(Clone, Debug)]
pub struct Serve<S> {
    inner: S,
    enabled: bool,
}

impl<S, B, R> tower::Service<http::Request<B>> for Serve<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !self.enabled || !sampled(request.headers()) {
            return Box::pin(self.inner.call(request));
        }
        let name = format!("serve.{}", token(request.uri().path()));
        let call = self.inner.call(request);
        Box::pin(async move {
            let (answer, spans) = collect(&name, call).await;
            answer.map(|mut response| {
                answer_with(response.headers_mut(), &spans);
                response
            })
        })
    }
}

#[cfg(test)]
mod tests;
