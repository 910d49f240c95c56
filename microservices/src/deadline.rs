//! Deadline propagation. A server reads the caller's `grpc-timeout` and
//! runs the handler in a scope holding that deadline, less a margin for
//! its answer ([`reply_margin`]); every client call made inside the scope
//! sends at most the time that remains, so a chain of hops never works
//! past the edge's deadline, and a server whose own call timed out still
//! answers its caller in time.

use std::time::{Duration, Instant};

use shared_domain::error::CallError;

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

/// What a server keeps of its caller's `timeout` for its own answer to
/// get back: a tenth, at most 50 ms. Without it, the transfers service's
/// call to a stopped accounts service timed out at the very moment the
/// gateway's call to transfers did; the gateway saw its own timeout (the
/// transfers service's failure, to its breaker) instead of the answer
/// saying accounts had failed, and its breaker on a healthy transfers
/// service stayed open a full second after accounts was back.
pub fn reply_margin(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(50))
}

/// The deadline `request`'s caller set, less [`reply_margin`].
fn deadline_of<T>(request: &tonic::Request<T>) -> Option<Instant> {
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)?;
    Some(Instant::now() + timeout.saturating_sub(reply_margin(timeout)))
}

/// Runs `f` under the deadline of `request` (if its caller set one), less
/// [`reply_margin`], and gives it up at that deadline: a service whose own
/// calls keep failing (the transfers service's saga retries a stopped
/// accounts service) answers its caller `DEADLINE_EXCEEDED` in time,
/// instead of being cut off by the caller's timeout, which the caller's
/// breaker counts against it. What `f` does when dropped is its own (the
/// saga hands itself to a task of its own).
pub async fn bounded<T, R, E, F>(request: &tonic::Request<R>, f: F) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, CallError<E>>>,
{
    match deadline_of(request) {
        Some(deadline) => {
            let within = tokio::time::timeout_at(deadline.into(), f);
            DEADLINE
                .scope(deadline, within)
                .await
                .unwrap_or(Err(CallError::DeadlineExceeded))
        }
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
    async fn a_bounded_call_gives_up_at_its_deadline_less_the_margin() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(100));
        let started = Instant::now();
        let never = std::future::pending::<Result<(), CallError<()>>>();
        let answer = bounded(&request, never).await;
        assert_eq!(answer, Err(CallError::DeadlineExceeded));
        assert!(started.elapsed() < Duration::from_secs(5), "gave up");
        let quick = bounded(&request, async { Ok::<_, CallError<()>>(7) }).await;
        assert_eq!(quick, Ok(7));
    }

    /// The budget a call made inside `request`'s handler gets.
    async fn budget_inside(request: &tonic::Request<()>) -> Duration {
        let inside = async { Ok::<_, CallError<()>>(budget(Duration::from_secs(5))) };
        bounded(request, inside).await.expect("in time")
    }

    #[tokio::test]
    async fn a_scope_shortens_the_budget() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(50));
        let inside = budget_inside(&request).await;
        assert!(
            inside <= Duration::from_millis(45),
            "{inside:?}: the margin kept"
        );
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_secs(5));
        // A second's call keeps 50 ms for its answer.
        request.set_timeout(Duration::from_secs(1));
        let inside = budget_inside(&request).await;
        assert!(inside <= Duration::from_millis(950), "{inside:?}");
        assert!(inside > Duration::from_millis(900), "{inside:?}");
    }
}
