//! Deadline propagation. A server reads the caller's `grpc-timeout` and
//! runs the handler in a scope holding that deadline; every client call
//! made inside the scope sends at most the time that remains, so a chain
//! of hops never works past the edge's deadline.

use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The time a call may take: `default`, or less if the current request's
/// deadline is nearer.
pub fn budget(default: Duration) -> Duration {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .map_or(default, |left| left.min(default))
}

/// Runs `f` under the deadline of `request` (if its caller set one).
pub async fn scoped<T, F: Future>(request: &tonic::Request<T>, f: F) -> F::Output {
    match request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
    {
        Some(timeout) => DEADLINE.scope(Instant::now() + timeout, f).await,
        None => f.await,
    }
}

/// Runs `f` with `deadline` as the current request's deadline.
pub async fn within<F: Future>(deadline: Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// The gateway's edge middleware (`axum::middleware::from_fn_with_state`
/// with the request timeout): each request's deadline is set where it
/// enters, and every internal call made for it sends what remains.
pub async fn at_the_edge(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    within(Instant::now() + timeout, next.run(request)).await
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m,
/// u, n), per the gRPC over HTTP/2 spec.
pub fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    if raw.len() < 2 || raw.len() > 9 {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_refuses_junk() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        for junk in ["", "S", "12", "1x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(junk), None, "{junk}");
        }
    }

    #[tokio::test]
    async fn the_edge_sets_the_deadline_of_each_request() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async {
                    budget(Duration::from_secs(5)).as_millis().to_string()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(80),
                at_the_edge,
            ));
        let answer = app
            .oneshot(
                http::Request::builder()
                    .uri("/")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        let body = axum::body::to_bytes(answer.into_body(), 64)
            .await
            .expect("body");
        let inside: u128 = String::from_utf8_lossy(&body).parse().expect("millis");
        assert!(inside <= 80, "{inside} ms left of an 80 ms deadline");
        assert_eq!(
            budget(Duration::from_secs(5)),
            Duration::from_secs(5),
            "outside: none"
        );
    }

    #[tokio::test]
    async fn a_scope_shortens_the_budget() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(50));
        let inside = scoped(&request, async { budget(Duration::from_secs(5)) }).await;
        assert!(inside <= Duration::from_millis(50));
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_secs(5));
    }
}
