use super::*;

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn parses_the_spec_example_and_refuses_malformed() {
    assert_eq!(
        traceparent(SAMPLED),
        Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
    );
    assert_eq!(
        traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").map(|t| t.2),
        Some(false)
    );
    for bad in [
        "",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        assert!(traceparent(bad).is_none(), "{bad}");
    }
    // A future version with more fields is read by its first four.
    assert!(traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more").is_some());
}

#[tokio::test]
async fn nested_spans_come_back_in_pre_order_with_their_depths() {
    let ((), spans) = collect("edge", async {
        let call = enter("call.accounts").expect("collecting");
        tokio::time::sleep(Duration::from_millis(2)).await;
        call.adopt(decode(
            "serve.bank.Accounts.ApplyTransfer;dur=1.000;desc=0, ask.book;dur=0.5;desc=1",
        ));
        drop(call);
        let ask = enter("ask.journal-0").expect("collecting");
        ask.rename("ask.journal-0.queued");
    })
    .await;
    let shape: Vec<(u8, &str)> = spans.iter().map(|s| (s.depth, s.name.as_str())).collect();
    assert_eq!(
        shape,
        [
            (0, "edge"),
            (1, "call.accounts"),
            (2, "serve.bank.Accounts.ApplyTransfer"),
            (3, "ask.book"),
            (1, "ask.journal-0.queued")
        ]
    );
    assert!(spans[1].duration >= Duration::from_millis(2));
    assert!(spans[0].duration >= spans[1].duration + spans[4].duration);
    assert_eq!(spans[2].duration, Duration::from_millis(1));
    // Nothing outside a collecting task.
    assert!(enter("call.outside").is_none());
    assert!(!collecting());
}

#[test]
fn the_header_round_trips_and_foreign_entries_are_skipped() {
    let spans = vec![
        Span {
            depth: 0,
            name: "edge".into(),
            duration: Duration::from_micros(412),
        },
        Span {
            depth: 1,
            name: "call./bank.Accounts/ApplyTransfer".into(),
            duration: Duration::from_micros(300),
        },
    ];
    let header = encode(&spans);
    assert_eq!(
        header,
        "edge;dur=0.412;desc=0, call..bank.Accounts.ApplyTransfer;dur=0.300;desc=1"
    );
    let back = decode(&header);
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].name, "call..bank.Accounts.ApplyTransfer");
    assert_eq!(back[1].duration, Duration::from_micros(300));
    assert_eq!(
        decode("cache;desc=\"hit\", db;dur=53, edge;dur=x;desc=0, app;dur=1;desc=1").len(),
        1
    );
}

#[tokio::test]
async fn the_layer_times_only_sampled_requests_when_enabled() {
    use tower::{Layer, Service, ServiceExt};
    let handler = tower::service_fn(|_: http::Request<()>| async {
        let _hop = enter("call.inner");
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let request = |flags: &str| {
        http::Request::builder()
            .uri("/bank.Accounts/Balance")
            .header(
                "traceparent",
                format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"),
            )
            .body(())
            .expect("request")
    };
    let mut on = ServeLayer::new(true).layer(handler);
    let answer = on
        .ready()
        .await
        .expect("ready")
        .call(request("01"))
        .await
        .expect("call");
    let spans = decode(
        answer
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .expect("timed"),
    );
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["serve.bank.Accounts.Balance", "call.inner"]);
    let answer = on
        .ready()
        .await
        .expect("ready")
        .call(request("00"))
        .await
        .expect("call");
    assert!(
        answer.headers().get(HEADER).is_none(),
        "not sampled: not timed"
    );
    let mut off = ServeLayer::new(false).layer(handler);
    let answer = off
        .ready()
        .await
        .expect("ready")
        .call(request("01"))
        .await
        .expect("call");
    assert!(
        answer.headers().get(HEADER).is_none(),
        "switched off: never timed"
    );
}
