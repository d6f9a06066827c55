//! Load shedding and slow clients over real TCP: past
//! `MAX_CONCURRENT_REQUESTS` a request is refused at once with 503 and
//! `Retry-After` (problem details) instead of queueing, while the probes and
//! metrics still answer; past `BODY_BUDGET_BYTES` of bodies being read at
//! once (slow uploads), the same; a client that takes too long to send its
//! headers is disconnected (`HEADER_READ_TIMEOUT`), and one that
//! trickles its body gets 408 (`REQUEST_TIMEOUT`). The other resource
//! bounds (body size, order lines, list depth, HTTP/2, connections) are in
//! `api_bounds.rs`.

use std::time::{Duration, Instant};

use reqwest::Method;
use tests::gateway::{
    Platform, Reply, raw_post, read_response_head, read_until_closed, spawn_platform_with,
    until_answered,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Opens a connection and sends the head of a POST whose body never comes:
/// the request is in flight (reading its body) until the socket is closed.
async fn hold_one_request(p: &Platform) -> TcpStream {
    let body = b"{\"customer_id\":";
    raw_post(p.gateway.addr, "/api/orders", "Content-Length: 1000", body).await
}

/// The shed counter has counted refusals.
async fn assert_shed_counted(p: &Platform) {
    let metrics = p.fetch(&p.gateway.metrics_url()).await;
    metrics.expect(200);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.lines()
            .any(|line| line.starts_with("http_server_shed_requests_total ")
                && !line.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_get_503_with_retry_after() {
    let p = spawn_platform_with(|config| {
        config.max_concurrent_requests = 1;
        config.request_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    p.get("/api/products").await.expect(200);

    let held = hold_one_request(&p).await;
    // The held request takes the one permit as soon as the gateway reads its
    // head; from then on every other API request is shed.
    let shed = until_answered(503, 200, "never shed", || p.get("/api/products")).await;
    let detail = shed.problem(503);
    assert!(detail.contains("retry"), "{detail}");
    assert_eq!(shed.headers[reqwest::header::RETRY_AFTER], "1");

    // Shed at once, not queued.
    let started = Instant::now();
    for path in ["/api/products", "/api/orders", "/", "/openapi.json"] {
        p.get(path).await.problem(503);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Probes and metrics are never shed.
    p.get("/health").await.expect(200);
    p.get("/ready").await.expect(200);
    assert_shed_counted(&p).await;

    // The held client goes away: its permit comes back and requests are
    // served again.
    drop(held);
    let never = "the permit never came back";
    until_answered(200, 503, never, || p.get("/api/products")).await;
}

#[tokio::test]
async fn the_limit_counts_requests_in_flight_not_requests_served() {
    // Many quick requests one after another with a limit of 1 are all served:
    // a permit is held only while a request is in flight.
    let p = spawn_platform_with(|config| config.max_concurrent_requests = 1).await;
    for _ in 0..20 {
        p.get("/api/products").await.expect(200);
    }
}

#[tokio::test]
async fn a_client_that_is_slow_to_send_its_headers_is_disconnected() {
    let p = spawn_platform_with(|config| {
        config.header_read_timeout = std::time::Duration::from_secs(1)
    })
    .await;

    // A trickle: a header byte every 200 ms, never the end of the head.
    let mut socket = TcpStream::connect(p.gateway.addr).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if socket.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), trickle).await;
    // Writing failed (reset) before 10 s, or the read side is closed now.
    let received = read_until_closed(&mut socket, Duration::from_secs(5)).await;
    let received = received.expect("the connection was still open");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "cut after {elapsed:?}");
    // Never served: at most an error status, never a 200.
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains(" 200 "), "{text}");

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(p.gateway.addr).await.unwrap();
    let started = Instant::now();
    let received = read_until_closed(&mut silent, Duration::from_secs(8)).await;
    assert!(
        received.is_some(),
        "a silent connection was kept open over 8 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A connection left idle after a request is closed too.
    let mut idle = TcpStream::connect(p.gateway.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut idle, Duration::from_secs(8)).await;
    let received = received.expect("an idle keep-alive connection was kept open over 8 s");
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"),
        "the request itself was served"
    );

    // A normal client is unaffected.
    p.get("/health").await.expect(200);
}

#[tokio::test]
async fn a_body_trickled_past_the_request_timeout_is_408() {
    let p =
        spawn_platform_with(|config| config.request_timeout = std::time::Duration::from_secs(1))
            .await;
    let addr = p.gateway.addr;
    let mut socket = raw_post(addr, "/api/products", "Content-Length: 200", b"").await;
    let started = Instant::now();
    // A byte every 100 ms: never idle, never done within a second.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(8) {
        if socket.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing was created.
    let list: Reply = p.get("/api/products").await;
    assert_eq!(list.json["total"], 0);
}

/// A product body of exactly `len` bytes (padded with JSON whitespace).
fn product_body_of(len: usize) -> Vec<u8> {
    let mut body = br#"{"name":"Padded","price":"1.00","quantity":1}"#.to_vec();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

/// An upload that never finishes: the head of a POST and part of its body.
/// The gateway is reading (and has charged) this body until the socket
/// closes. `content_length: None` sends it chunked.
async fn hold_upload(p: &Platform, content_length: Option<usize>) -> TcpStream {
    let (framing, start) = match content_length {
        Some(length) => (format!("Content-Length: {length}"), &b"{\"name\":"[..]),
        None => (
            "Transfer-Encoding: chunked".to_owned(),
            &b"8\r\n{\"name\":\r\n"[..],
        ),
    };
    raw_post(p.gateway.addr, "/api/products", &framing, start).await
}

#[tokio::test]
async fn past_the_body_budget_uploads_are_refused_at_once_until_held_ones_end() {
    // Held uploads must outlive the test's waits.
    let p = spawn_platform_with(|config| {
        config.request_timeout = std::time::Duration::from_secs(60);
        config.bounds.body_budget_bytes = 100_000;
    })
    .await;
    let json = Some("application/json");

    // One upload of 60,000 declared bytes, held mid-body: 40,000 left.
    let held = hold_upload(&p, Some(60_000)).await;
    // 50,000 bytes do not fit next to it (once the gateway has charged it).
    let upload = || p.send_raw(Method::POST, "/api/products", json, product_body_of(50_000));
    let refused = until_answered(503, 201, "never refused", upload).await;
    let detail = refused.problem(503);
    assert!(detail.contains("retry"), "{detail}");
    assert_eq!(refused.headers[reqwest::header::RETRY_AFTER], "1");

    // Refused at once, not queued; a smaller body still fits; reads and
    // bodiless requests never need the budget.
    let started = Instant::now();
    p.send_raw(Method::POST, "/api/products", json, product_body_of(50_000))
        .await
        .problem(503);
    assert!(started.elapsed() < Duration::from_secs(2));
    p.send_raw(Method::POST, "/api/products", json, product_body_of(1_000))
        .await
        .expect(201);
    p.get("/api/products").await.expect(200);

    // A chunked upload is charged the route's whole limit (64 KiB), which
    // does not fit either: its own request is answered 503 at once.
    let mut chunked = hold_upload(&p, None).await;
    let head = read_response_head(&mut chunked, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head:?}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head:?}"
    );

    // The shed counter counts these refusals.
    assert_shed_counted(&p).await;

    // The held client goes away: its charge comes back.
    drop(held);
    until_answered(201, 503, "the charge never came back", upload).await;
}
