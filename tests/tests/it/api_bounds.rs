//! Resource bounds, over real TCP against the whole platform: what one
//! client can make the platform hold or do is bounded, each bound answers
//! for itself, and the requests a person sends keep working exactly as the
//! contract says.
//!
//! - order lines (`MAX_ORDER_LINES`, the order service's rule): 100 lines
//!   are accepted, 101 and 1,000 are refused (422 naming `products` and the
//!   limit) and move no stock;
//! - request bodies: over 64 KiB is 413 (`BODY_LIMIT_BYTES`); the budget for
//!   bodies being read at once (`BODY_BUDGET_BYTES`) is tested with the
//!   other load shedding, in `api_load_shedding.rs`;
//! - list depth and totals (`MAX_LIST_OFFSET`, both services): a page
//!   starting past the bound is 422 on `page`, the last allowed page works,
//!   totals are exact on small data and an estimate (never below the rows
//!   counted) past the count cap;
//! - HTTP/2 (h2c) and connections: the stream limit is advertised and
//!   enforced (REFUSED_STREAM), idle connections are closed
//!   (`IDLE_CONNECTION_TIMEOUT`), unanswered keep-alive pings close the
//!   connection, and past `MAX_CONNECTIONS` new connections are closed at
//!   once. The HTTP/2 client is a few frames written by hand (below): it
//!   shows exactly the frames a library client would hide (the advertised
//!   SETTINGS, a RST_STREAM, a PING, a GOAWAY), and a library client would
//!   itself hold back the stream that must be refused.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Executor;
use tests::{
    catalog::{catalog_config, catalog_database, start_catalog},
    gateway::{
        Platform, Reply, http_client, raw_post, read_response_head, read_until_closed,
        spawn_gateway, spawn_platform, spawn_platform_with,
    },
    order::{order_config, orders_database, start_order},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

// ------------------------------------------------------------------ helpers

/// Creates `n` products (stock 5 each) concurrently; returns their ids.
async fn create_products(p: &Platform, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let created =
            join_all(chunk.iter().map(|i| async move {
                p.create_product(&format!("Product {i}"), "1.00", 5).await
            }))
            .await;
        ids.extend(
            created
                .into_iter()
                .map(|product| product["id"].as_str().unwrap().to_owned()),
        );
    }
    ids
}

/// A product body of exactly `len` bytes (padded with JSON whitespace).
fn product_body_of(len: usize) -> Vec<u8> {
    let mut body = br#"{"name":"Padded","price":"1.00","quantity":1}"#.to_vec();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

// ------------------------------------------------------------- order lines

#[tokio::test]
async fn an_order_of_100_lines_is_taken_101_or_1000_lines_are_refused_and_move_no_stock() {
    // A 1,000-line order is about 67 KB of JSON: over the default 64 KiB body
    // limit, which refuses it first (413, see the body tests). With room for
    // it, the order service's own rule is what refuses it.
    let p = spawn_platform_with(|config| config.body_limit_bytes = 1024 * 1024).await;
    let ids = create_products(&p, 101).await;

    // 100 distinct products, one unit each: accepted.
    let hundred: Vec<(&str, i64)> = ids[..100].iter().map(|id| (id.as_str(), 1)).collect();
    let order = p.create_order(1, &hundred).await;
    order.expect(201);
    assert_eq!(order.json["order_items"].as_array().unwrap().len(), 100);
    assert_eq!(p.stock_of(&ids[0]).await, 4);

    let before = p.snapshot().await;
    // 101 distinct products; 1,000 lines cycling over them.
    let all: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
    let thousand: Vec<(&str, i64)> = (0..1_000)
        .map(|i| (ids[i % ids.len()].as_str(), 1))
        .collect();
    for (lines, count) in [(&all, 101), (&thousand, 1_000)] {
        let reply = p.create_order(2, lines).await;
        assert_eq!(reply.violated_fields(), vec!["products"], "{count} lines");
        let message = reply.json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("at most 100 lines"), "{message}");
        assert!(message.contains(&format!("got {count}")), "{message}");
    }
    // Nothing written: no order, no stock moved.
    assert_eq!(p.snapshot().await, before);
    assert_eq!(p.stock_of(&ids[100]).await, 5);
    assert_eq!(p.stock_of(&ids[0]).await, 4);
}

// ------------------------------------------------------------------- bodies

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_one_of_64_kib_is_read() {
    let p = spawn_platform().await;
    let json = Some("application/json");

    let at_limit = product_body_of(64 * 1024);
    p.send_raw(Method::POST, "/api/products", json, at_limit)
        .await
        .expect(201);
    let over = product_body_of(64 * 1024 + 1);
    let detail = p
        .send_raw(Method::POST, "/api/products", json, over)
        .await
        .problem(413);
    assert!(detail.contains("too large"), "{detail}");

    // A declared length over the limit is refused before the body is sent.
    let (addr, path) = (p.gateway.addr, "/api/products");
    let mut socket = raw_post(addr, path, "Content-Length: 10000000", b"").await;
    let head = read_response_head(&mut socket, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");

    // Chunked (no declared length): cut at the limit, 413 too.
    let mut socket = raw_post(addr, path, "Transfer-Encoding: chunked", b"").await;
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..5 {
        let _ = socket.write_all(b"4000\r\n").await;
        let _ = socket.write_all(&chunk).await;
        let _ = socket.write_all(b"\r\n").await;
    }
    let head = read_response_head(&mut socket, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");

    // A 1,000-line order (about 67 KB) does not get past the body limit.
    let line = json!({"product_id": uuid::Uuid::new_v4(), "quantity": 1});
    let order = json!({"customer_id": 1, "products": vec![line; 1_000]});
    let bytes = serde_json::to_vec(&order).unwrap();
    assert!(bytes.len() > 64 * 1024, "{}", bytes.len());
    p.send_raw(Method::POST, "/api/orders", json, bytes)
        .await
        .problem(413);

    // The webhook keeps its own limit (64 KiB too by default).
    let webhook = p.webhook(&vec![b' '; 64 * 1024 + 1], Some("00")).await;
    webhook.problem(413);
    assert_eq!(p.get("/api/products").await.json["total"], 1);
}

// -------------------------------------------------------- list depth, totals

/// Lists `path` and returns the reply.
async fn list(p: &Platform, path: &str) -> Reply {
    p.get(path).await
}

#[tokio::test]
async fn pages_past_the_depth_bound_are_refused_on_page_and_the_last_allowed_page_works() {
    let p = spawn_platform().await;
    let ids = create_products(&p, 3).await;
    p.create_order(7, &[(&ids[0], 1)]).await.expect(201);

    for base in [
        "/api/products?",
        "/api/products?in_stock=true&",
        "/api/orders?",
        "/api/orders?status=pending&",
    ] {
        // The deepest pages allowed (offset exactly 10,000): empty, with the
        // true total, as any page past the end.
        for (page, page_size) in [(101_u64, 100_u64), (501, 20), (10_001, 1)] {
            let reply = list(&p, &format!("{base}page={page}&page_size={page_size}")).await;
            reply.expect(200);
            assert_eq!(reply.json["items"], json!([]), "{base} {page}");
            let expected: u64 = if base.starts_with("/api/products") {
                3
            } else {
                1
            };
            assert_eq!(reply.json["total"], expected, "{base} {page}");
            assert_eq!(reply.json["page"], page);
            assert_eq!(reply.json["total_pages"], expected.div_ceil(page_size));
        }
        // One page deeper: 422 on `page`, naming the last page and the way out.
        for (page, page_size, last) in [(102, 100, 101), (502, 20, 501), (2_147_483_647, 100, 101)]
        {
            let reply = list(&p, &format!("{base}page={page}&page_size={page_size}")).await;
            assert_eq!(reply.violated_fields(), vec!["page"], "{base} {page}");
            let message = reply.json["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(&format!("at most {last} ")), "{message}");
            assert!(message.contains("filter"), "{message}");
        }
    }
    // The pages a person visits are untouched.
    let first = list(&p, "/api/products?page=1&page_size=2").await;
    first.expect(200);
    assert_eq!(first.json["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            first.json["total"].clone(),
            first.json["total_pages"].clone()
        ),
        (json!(3), json!(2))
    );
}

#[tokio::test]
async fn totals_on_small_data_are_exact_for_every_filter() {
    let p = spawn_platform().await;
    let ids = create_products(&p, 5).await;
    // Two sold out.
    for id in &ids[..2] {
        p.put(&format!("/api/products/{id}"), &json!({"quantity": 0}))
            .await
            .expect(200);
    }
    for customer in [1, 1, 2] {
        p.create_order(customer, &[(&ids[4], 1)]).await.expect(201);
    }
    let orders = p.get("/api/orders?customer_id=2").await;
    let order_id = orders.json["items"][0]["id"].as_str().unwrap().to_owned();
    p.put(
        &format!("/api/orders/{order_id}/status"),
        &json!({"status": "completed"}),
    )
    .await
    .expect(200);

    for (path, total) in [
        ("/api/products", 5_usize),
        ("/api/products?in_stock=true", 3),
        ("/api/products?in_stock=false", 2),
        ("/api/orders", 3),
        ("/api/orders?customer_id=1", 2),
        ("/api/orders?status=pending", 2),
        ("/api/orders?status=completed", 1),
        ("/api/orders?status=canceled", 0),
        ("/api/orders?payment_status=unpaid", 3),
        ("/api/orders?status=pending&customer_id=2", 0),
        (
            "/api/orders?status=completed&payment_status=unpaid&customer_id=2",
            1,
        ),
    ] {
        let reply = list(&p, path).await;
        reply.expect(200);
        assert_eq!(reply.json["total"], json!(total), "{path}");
        assert_eq!(
            reply.json["items"].as_array().unwrap().len(),
            total,
            "{path}"
        );
    }
}

/// The platform with both services' `MAX_LIST_OFFSET` set to `max_offset`.
async fn platform_with_list_offset(max_offset: u32) -> Platform {
    let mut config = catalog_config();
    config.service.max_list_offset = max_offset;
    let catalog = start_catalog(config).await.service;
    let mut config = order_config(&catalog.url());
    config.service.max_list_offset = max_offset;
    let order = start_order(config).await.service;
    let gateway = spawn_gateway(&catalog.url(), &order.url(), |_| {}).await;
    Platform::new(catalog, order, gateway)
}

#[tokio::test]
async fn past_the_count_cap_the_total_is_an_estimate_never_below_the_rows_counted() {
    // MAX_LIST_OFFSET 10: pages reach 10 rows deep, totals are exact up to
    // 10 + 100 = 110 rows.
    let p = platform_with_list_offset(10).await;
    let mut catalog = catalog_database(&p.catalog).await;
    let insert_products = |n: i64| {
        sqlx::query(
            "INSERT INTO products (id, name, price, quantity) \
             SELECT gen_random_uuid(), 'Bulk ' || g, 1, 1 FROM generate_series(1, $1) AS g",
        )
        .bind(n)
    };
    insert_products(110).execute(&mut catalog).await.unwrap();
    let total = |reply: Reply| {
        reply.expect(200);
        reply.json["total"].as_u64().unwrap()
    };
    assert_eq!(
        total(list(&p, "/api/products").await),
        110,
        "exact at the cap"
    );
    insert_products(1).execute(&mut catalog).await.unwrap();
    let estimated = total(list(&p, "/api/products").await);
    assert!(estimated >= 111, "{estimated}: below the rows counted");
    // With statistics, the estimate is the table's size.
    insert_products(389).execute(&mut catalog).await.unwrap();
    catalog.execute("ANALYZE products").await.unwrap();
    let estimated = total(list(&p, "/api/products?in_stock=true").await);
    assert!((450..=550).contains(&estimated), "{estimated} for 500 rows");
    // A filter that matches few rows is still exact.
    assert_eq!(total(list(&p, "/api/products?in_stock=false").await), 0);
    // The depth bound follows the setting: page 2 of 10 starts at row 10.
    assert_depth_bound(
        &p,
        "/api/products?page=2&page_size=10",
        "page=3&page_size=10",
    )
    .await;

    // Orders: 250 of customer 1, 50 of customer 2, all pending.
    let mut orders = orders_database(&p.order).await;
    orders
        .execute(
            "INSERT INTO orders (id, customer_id, status) \
             SELECT gen_random_uuid(), CASE WHEN g <= 250 THEN 1 ELSE 2 END, 'pending' \
             FROM generate_series(1, 300) AS g",
        )
        .await
        .unwrap();
    orders.execute("ANALYZE orders").await.unwrap();
    assert_eq!(total(list(&p, "/api/orders?customer_id=2").await), 50);
    assert_eq!(total(list(&p, "/api/orders?status=completed").await), 0);
    for path in [
        "/api/orders",
        "/api/orders?customer_id=1",
        "/api/orders?status=pending&payment_status=unpaid",
    ] {
        let estimated = total(list(&p, path).await);
        assert!((111..=1_000).contains(&estimated), "{path}: {estimated}");
    }
    let deepest = "/api/orders?customer_id=1&page=2&page_size=10";
    assert_depth_bound(&p, deepest, "page=12&page_size=1").await;
}

/// `deepest` lists 10 items; the same list at `too_deep` (page and size) is
/// refused, naming the page.
async fn assert_depth_bound(p: &Platform, deepest: &str, too_deep: &str) {
    let page = list(p, deepest).await;
    page.expect(200);
    assert_eq!(page.json["items"].as_array().unwrap().len(), 10);
    let list_path = deepest.split('?').next().unwrap();
    let refused = list(p, &format!("{list_path}?{too_deep}")).await;
    assert_eq!(refused.violated_fields(), vec!["page"]);
}

// --------------------------------------------------------- HTTP/2, sockets

/// Frame types and flags of RFC 9113 that the tests use.
mod frame {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const REFUSED_STREAM: u32 = 0x7;
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// A prior-knowledge HTTP/2 (h2c) connection, frames written and read by
/// hand. HPACK: only static-table entries and literals without indexing
/// or Huffman coding, which every decoder accepts.
struct H2 {
    socket: TcpStream,
    buffer: Vec<u8>,
    /// The server's SETTINGS, as first sent.
    settings: HashMap<u16, u32>,
}

impl H2 {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let socket = TcpStream::connect(addr).await.unwrap();
        let mut connection = Self {
            socket,
            buffer: Vec::new(),
            settings: HashMap::new(),
        };
        connection
            .socket
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        connection.send(frame::SETTINGS, 0, 0, &[]).await.unwrap();
        loop {
            let received = connection
                .next(Duration::from_secs(5))
                .await
                .expect("the server's SETTINGS");
            if received.kind == frame::SETTINGS && received.flags & frame::ACK == 0 {
                for entry in received.payload.chunks(6) {
                    let id = u16::from_be_bytes([entry[0], entry[1]]);
                    let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
                    connection.settings.insert(id, value);
                }
                break;
            }
        }
        // The server applies its own settings once they are acknowledged.
        connection
            .send(frame::SETTINGS, frame::ACK, 0, &[])
            .await
            .unwrap();
        connection
    }

    async fn send(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut bytes = vec![length[1], length[2], length[3], kind, flags];
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        self.socket.write_all(&bytes).await
    }

    /// Opens stream `stream` with a request; `end` closes its side at once
    /// (no body).
    async fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end: bool,
    ) {
        let mut block = vec![
            if method == "GET" { 0x82 } else { 0x83 }, // :method GET / POST
            0x86,                                      // :scheme http
        ];
        literal(&mut block, Some(4), ":path", path);
        literal(&mut block, Some(1), ":authority", "gateway");
        for (name, value) in extra {
            literal(&mut block, None, name, value);
        }
        let flags = frame::END_HEADERS | if end { frame::END_STREAM } else { 0 };
        self.send(frame::HEADERS, flags, stream, &block)
            .await
            .unwrap();
    }

    /// The next frame, or `None` when the connection is closed (or nothing
    /// came within `limit`: see [`Self::next_or_timeout`]).
    async fn next(&mut self, limit: Duration) -> Option<Frame> {
        self.next_or_timeout(limit).await.ok().flatten()
    }

    /// `Err(())` when nothing came within `limit`; `Ok(None)` on close.
    async fn next_or_timeout(&mut self, limit: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.buffer.len() >= 9 {
                let length = u32::from_be_bytes([0, self.buffer[0], self.buffer[1], self.buffer[2]])
                    as usize;
                if self.buffer.len() >= 9 + length {
                    let header: Vec<u8> = self.buffer.drain(..9).collect();
                    let payload = self.buffer.drain(..length).collect();
                    return Ok(Some(Frame {
                        kind: header[3],
                        flags: header[4],
                        stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]])
                            & 0x7fff_ffff,
                        payload,
                    }));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.socket.read(&mut chunk)).await {
                Err(_) => return Err(()),
                Ok(Ok(0) | Err(_)) => return Ok(None),
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until one matches, answering PINGs if `answer_pings`;
    /// `None` if the connection closed or `limit` passed first.
    async fn until(
        &mut self,
        limit: Duration,
        answer_pings: bool,
        wanted: impl Fn(&Frame) -> bool,
    ) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = self.next(left).await?;
            if answer_pings && received.kind == frame::PING && received.flags & frame::ACK == 0 {
                let _ = self
                    .send(frame::PING, frame::ACK, 0, &received.payload)
                    .await;
            }
            if wanted(&received) {
                return Some(received);
            }
        }
    }

    /// Sends a GET and waits for its response to end; true when it was 200
    /// (false when refused or closed).
    async fn get_ok(&mut self, stream: u32, path: &str) -> bool {
        self.request(stream, "GET", path, &[], true).await;
        self.response_status(stream).await == Some(200)
    }

    /// Waits for the response on `stream` to end and returns its status;
    /// `None` when the stream was reset or the connection closed.
    async fn response_status(&mut self, stream: u32) -> Option<u16> {
        let head = self
            .until(Duration::from_secs(10), true, |f| {
                f.stream == stream && (f.kind == frame::HEADERS || f.kind == frame::RST_STREAM)
            })
            .await?;
        if head.kind == frame::RST_STREAM {
            return None;
        }
        if head.flags & frame::END_STREAM == 0 {
            self.until(Duration::from_secs(10), true, |f| {
                f.stream == stream && f.kind == frame::DATA && f.flags & frame::END_STREAM != 0
            })
            .await;
        }
        status_of(&head.payload)
    }
}

/// `:status` from the start of a response header block, which is where
/// servers put it: an indexed static entry (200, 204, 206, 304, 400, 404,
/// 500), or a literal with the static name `:status` (entry 8) and a value of
/// three digits, plain or Huffman-coded.
fn status_of(block: &[u8]) -> Option<u16> {
    match block.first()? {
        0x88 => return Some(200),
        0x89 => return Some(204),
        0x8a => return Some(206),
        0x8b => return Some(304),
        0x8c => return Some(400),
        0x8d => return Some(404),
        0x8e => return Some(500),
        // With incremental indexing, without, never indexed; name entry 8.
        0x48 | 0x08 | 0x18 => {}
        _ => return None,
    }
    let length = usize::from(block.get(1)? & 0x7f);
    let value = block.get(2..2 + length)?;
    let digits = if block[1] & 0x80 == 0 {
        String::from_utf8(value.to_vec()).ok()?
    } else {
        // RFC 7541 Appendix B: '0'-'2' are 5-bit codes 0-2, '3'-'9' are the
        // 6-bit codes 0x19-0x1f; the padding is all ones.
        let bits: Vec<u8> = value
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1))
            .collect();
        let mut digits = String::new();
        let mut at = 0;
        while digits.len() < 3 {
            let code5 = bits
                .get(at..at + 5)?
                .iter()
                .fold(0u8, |acc, b| acc << 1 | b);
            if code5 <= 2 {
                digits.push(char::from(b'0' + code5));
                at += 5;
                continue;
            }
            let code6 = bits
                .get(at..at + 6)?
                .iter()
                .fold(0u8, |acc, b| acc << 1 | b);
            if !(0x19..=0x1f).contains(&code6) {
                return None;
            }
            digits.push(char::from(b'3' + (code6 - 0x19)));
            at += 6;
        }
        digits
    };
    digits.parse().ok()
}

/// An HPACK literal header field without indexing: the name from the static
/// table (`index`) or spelled out, the value spelled out (no Huffman).
fn literal(block: &mut Vec<u8>, index: Option<u8>, name: &str, value: &str) {
    match index {
        Some(index) => block.push(index),
        None => {
            block.push(0);
            block.push(u8::try_from(name.len()).unwrap());
            block.extend_from_slice(name.as_bytes());
        }
    }
    assert!(value.len() < 127);
    block.push(u8::try_from(value.len()).unwrap());
    block.extend_from_slice(value.as_bytes());
}

#[tokio::test]
async fn http2_advertises_its_stream_limit_and_refuses_one_stream_more() {
    let p = spawn_platform_with(|config| {
        config.bounds.http2_max_concurrent_streams = 3;
        config.request_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    let mut h2 = H2::connect(p.gateway.addr).await;
    assert_eq!(
        h2.settings.get(&frame::SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(&3),
        "{:?}",
        h2.settings
    );

    // Three uploads whose bodies never come: three open streams.
    let upload = [
        ("content-type", "application/json"),
        ("content-length", "100"),
    ];
    for stream in [1, 3, 5] {
        h2.request(stream, "POST", "/api/orders", &upload, false)
            .await;
    }
    // A fourth is refused at once; the three stay open.
    h2.request(7, "GET", "/health", &[], true).await;
    let reset = h2
        .until(Duration::from_secs(5), true, |f| {
            f.kind == frame::RST_STREAM || f.kind == frame::HEADERS
        })
        .await
        .expect("an answer to the fourth stream");
    assert_eq!(
        (reset.kind, reset.stream),
        (frame::RST_STREAM, 7),
        "{reset:?}"
    );
    assert_eq!(
        u32::from_be_bytes(reset.payload[..4].try_into().unwrap()),
        frame::REFUSED_STREAM
    );

    // One upload given up (RST_STREAM CANCEL): once the gateway has let go
    // of it, there is room for one more request, served as usual.
    h2.send(frame::RST_STREAM, 0, 1, &8u32.to_be_bytes())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = 9;
    while !h2.get_ok(stream, "/health").await {
        assert!(
            Instant::now() < deadline,
            "no stream served after one was given up"
        );
        stream += 2;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection itself is healthy, and other connections have their own streams.
    p.get("/health").await.expect(200);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let p = spawn_platform_with(|config| {
        config.bounds.idle_connection_timeout = std::time::Duration::from_secs(1)
    })
    .await;

    // Busy: a request every 300 ms for 2.5 s keeps it open.
    let mut busy = H2::connect(p.gateway.addr).await;
    let started = Instant::now();
    let mut stream = 1;
    while started.elapsed() < Duration::from_millis(2_500) {
        assert!(
            busy.get_ok(stream, "/health").await,
            "closed while busy at {:?}",
            started.elapsed()
        );
        stream += 2;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Idle after one request: GOAWAY, then closed, about a second later.
    let mut idle = H2::connect(p.gateway.addr).await;
    assert!(idle.get_ok(1, "/health").await);
    let quiet = Instant::now();
    let goaway = idle
        .until(Duration::from_secs(5), true, |f| f.kind == frame::GOAWAY)
        .await
        .expect("a GOAWAY");
    // NO_ERROR: a graceful close.
    assert_eq!(
        u32::from_be_bytes(goaway.payload[4..8].try_into().unwrap()),
        0
    );
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "GOAWAY after {waited:?}"
    );
    // Answering the server's PING lets it finish the close at once.
    assert!(
        idle.until(Duration::from_secs(5), true, |_| false)
            .await
            .is_none(),
        "still open"
    );
    assert!(quiet.elapsed() < Duration::from_secs(5));

    // A client that does not even answer is dropped after another idle period.
    let mut silent = H2::connect(p.gateway.addr).await;
    let quiet = Instant::now();
    assert!(
        silent
            .until(Duration::from_secs(8), false, |_| false)
            .await
            .is_none()
    );
    assert!(
        quiet.elapsed() < Duration::from_secs(5),
        "{:?}",
        quiet.elapsed()
    );
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_keep_alive_pings_is_disconnected() {
    let p = spawn_platform_with(|config| {
        config.bounds.http2_keepalive_interval = std::time::Duration::from_secs(1);
        config.bounds.http2_keepalive_timeout = std::time::Duration::from_secs(1);
        // Long enough not to be what closes these connections.
        config.bounds.idle_connection_timeout = std::time::Duration::from_secs(60);
    })
    .await;

    // Answering: still open after several intervals, and still serving.
    let mut alive = H2::connect(p.gateway.addr).await;
    let started = Instant::now();
    let mut pinged = 0;
    while started.elapsed() < Duration::from_secs(4) {
        match alive.next_or_timeout(Duration::from_millis(200)).await {
            Ok(Some(f)) if f.kind == frame::PING && f.flags & frame::ACK == 0 => {
                pinged += 1;
                alive
                    .send(frame::PING, frame::ACK, 0, &f.payload)
                    .await
                    .unwrap();
            }
            Ok(Some(f)) => assert_ne!(f.kind, frame::GOAWAY, "{f:?}"),
            Ok(None) => panic!("closed although it answered every ping"),
            Err(()) => {}
        }
    }
    assert!(pinged >= 2, "{pinged} pings in 4 s with a 1 s interval");
    assert!(alive.get_ok(1, "/health").await);

    // Silent: pinged after about a second, closed about a second later.
    let mut silent = H2::connect(p.gateway.addr).await;
    let quiet = Instant::now();
    let ping = silent
        .until(Duration::from_secs(5), false, |f| {
            f.kind == frame::PING && f.flags & frame::ACK == 0
        })
        .await
        .expect("a keep-alive PING");
    assert_eq!(ping.stream, 0);
    assert!(
        silent
            .until(Duration::from_secs(5), false, |_| false)
            .await
            .is_none()
    );
    let closed_after = quiet.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1_500) && closed_after < Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
}

#[tokio::test]
async fn past_max_connections_a_new_connection_is_closed_at_once_whatever_its_protocol() {
    let p = spawn_platform_with(|config| config.bounds.max_connections = 2).await;

    // Two connections, one of each protocol, both served and kept open.
    let mut h1 = TcpStream::connect(p.gateway.addr).await.unwrap();
    h1.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let head = read_response_head(&mut h1, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
    let mut h2 = H2::connect(p.gateway.addr).await;
    assert!(h2.get_ok(1, "/health").await);

    // A third, of either protocol, is closed without an answer, at once.
    for attempt in [
        &b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"[..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
    ] {
        let mut third = TcpStream::connect(p.gateway.addr).await.unwrap();
        let started = Instant::now();
        let _ = third.write_all(attempt).await;
        let received = read_until_closed(&mut third, Duration::from_secs(5))
            .await
            .expect("the connection past the cap was kept open");
        assert!(
            received.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&received)
        );
        // At once: not left waiting in the backlog for a slot.
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // The two open ones are unaffected.
    assert!(h2.get_ok(3, "/health").await);
    h1.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let head = read_response_head(&mut h1, Duration::from_secs(5)).await;
    assert!(head.contains("HTTP/1.1 200"), "{head:?}");

    // One closes: its slot comes back.
    drop(h1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = http_client();
        let answered = client
            .get(p.url("/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if answered.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_order_posted_over_http2_is_served_like_any_other() {
    // The bounds do not change what a well-behaved HTTP/2 client gets.
    let p = spawn_platform().await;
    let ids = create_products(&p, 1).await;
    let body = serde_json::to_vec(
        &json!({"customer_id": 3, "products": [{"product_id": ids[0], "quantity": 2}]}),
    )
    .unwrap();
    let mut h2 = H2::connect(p.gateway.addr).await;
    let length = body.len().to_string();
    h2.request(
        1,
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("content-length", &length),
        ],
        false,
    )
    .await;
    h2.send(frame::DATA, frame::END_STREAM, 1, &body)
        .await
        .unwrap();
    assert_eq!(h2.response_status(1).await, Some(201));
    assert_eq!(p.stock_of(&ids[0]).await, 3);
    let orders: Value = p.get("/api/orders?customer_id=3").await.json;
    assert_eq!(orders["total"], 1);
}
