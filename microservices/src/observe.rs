//! Per-method metrics of every gRPC server, as a tower layer:
//! `grpc_server_requests_total{method,code}` and
//! `grpc_server_duration_seconds{method}` (time to the response head; for a
//! stream, time to open it).
//!
//! A tower Layer/Service pair of its own: it needs the request (the
//! method) and its response (the status) in one place, which neither
//! tower's combinators nor tower-http's give (their response hooks do not
//! see the request).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Adds [`GrpcMetrics`] around a server.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        // Only gRPC methods (`/package.Service/Method`); the ops routes
        // are not counted.
        let method =
            (path.matches('/').count() == 2 && path.contains('.')).then(|| path.to_owned());
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            if let (Some(method), Ok(response)) = (method, &response) {
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                metrics::counter!("grpc_server_requests_total", "method" => method.clone(), "code" => code).increment(1);
                metrics::histogram!("grpc_server_duration_seconds", "method" => method)
                    .record(started.elapsed().as_secs_f64());
            }
            response
        })
    }
}
