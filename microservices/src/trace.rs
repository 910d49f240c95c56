//! W3C trace context (`traceparent`) across every hop, so the spans of one
//! request join up in every service's logs under one `trace_id`.
//!
//! The gateway and every server run each request inside a span carrying
//! `trace_id`, `span_id` and `parent_span_id`, taken from the incoming
//! `traceparent` (or a new trace when there is none or it is malformed);
//! every client call made inside sends `traceparent` with the caller's
//! span as parent. No exporter is bundled: the spans go to the `tracing`
//! subscriber (logs), and a collector can be added there.
//!
//! [`TraceLayer`] is a tower Layer/Service pair of its own: the context
//! must be a task-local around the whole call (clients read it), on gRPC
//! servers as well as on axum routers, which no tower or tower-http
//! utility scopes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument;

/// One hop's position in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace, shared by every hop (never zero).
    pub trace_id: u128,
    /// This hop's span (never zero).
    pub span_id: u64,
    /// The caller's span, if the trace came from a caller.
    pub parent_span_id: Option<u64>,
    /// The caller's sampling decision (W3C flag 01): the caller asks for
    /// this request's timing (`edge::timing`). Spans are logged either way.
    pub sampled: bool,
}

fn nonzero_u64() -> u64 {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return v;
        }
    }
}

impl TraceContext {
    /// A new trace (this hop is its root), not sampled: only a caller's
    /// sampled flag asks the hops behind for their timing.
    pub fn root() -> Self {
        let trace_id = loop {
            let v: u128 = rand::random();
            if v != 0 {
                break v;
            }
        };
        Self {
            trace_id,
            span_id: nonzero_u64(),
            parent_span_id: None,
            sampled: false,
        }
    }

    /// This hop's context for a request that carried `traceparent` (a new
    /// trace if it is absent or malformed, as the spec requires).
    pub fn from_header(header: Option<&str>) -> Self {
        // One parser for both variants: the edge reads the sampled flag with it.
        match header.and_then(edge::timing::traceparent) {
            Some((trace_id, parent, sampled)) => Self {
                trace_id,
                span_id: nonzero_u64(),
                parent_span_id: Some(parent),
                sampled,
            },
            None => Self::root(),
        }
    }

    /// The `traceparent` to send on a call made from this hop.
    pub fn header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    fn span(&self, what: &str) -> tracing::Span {
        tracing::info_span!(
            "request",
            what,
            trace_id = %format_args!("{:032x}", self.trace_id),
            span_id = %format_args!("{:016x}", self.span_id),
            parent_span_id = %ParentId(self.parent_span_id),
        )
    }
}

struct ParentId(Option<u64>);

impl fmt::Display for ParentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id:016x}"),
            None => f.write_str("-"),
        }
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the request being handled, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `f` in `context` (tests of what clients send).
#[cfg(test)]
pub(crate) async fn scope_for_test<F: Future>(context: TraceContext, f: F) -> F::Output {
    CURRENT.scope(context, f).await
}

/// A tower layer that runs each request in its trace context and span.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Traced { inner }
    }
}

/// See [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let context = TraceContext::from_header(
            request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok()),
        );
        let span = context.span(request.uri().path());
        let call = self.inner.call(request);
        Box::pin(CURRENT.scope(context, call.instrument(span)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_callers_trace_or_starts_an_unsampled_one() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::from_header(Some(header));
        assert_eq!(c.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(c.parent_span_id, Some(0x00f067aa0ba902b7));
        assert!(c.sampled);
        assert_ne!(c.span_id, 0x00f067aa0ba902b7, "a hop gets its own span");
        // What this hop sends keeps the trace and names itself as parent.
        let sent = c.header();
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert_eq!(
            TraceContext::from_header(Some(&sent)).parent_span_id,
            Some(c.span_id)
        );
        // Malformed (the parser's cases are edge::timing's tests): a new,
        // unsampled trace of its own.
        let fresh = TraceContext::from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ));
        assert_eq!(fresh.parent_span_id, None);
        assert!(
            !fresh.sampled,
            "a trace this hop starts asks no one for timing"
        );
    }

    #[tokio::test]
    async fn the_layer_scopes_each_request_in_its_context() {
        use tower::{Layer, Service, ServiceExt};
        let mut service = TraceLayer.layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(current())
        }));
        let request = http::Request::builder()
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(())
            .expect("request");
        let seen = service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("call")
            .expect("in scope");
        assert_eq!(seen.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(seen.parent_span_id, Some(0x00f067aa0ba902b7));
        let fresh = service
            .ready()
            .await
            .expect("ready")
            .call(http::Request::new(()))
            .await
            .expect("call")
            .expect("in scope");
        assert_eq!(fresh.parent_span_id, None, "no traceparent: a new trace");
        assert_eq!(current(), None, "nothing leaks outside a request");
    }
}
