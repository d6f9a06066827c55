//! Starting the gateway for a test, the whole platform behind it (catalog,
//! order service, gateway, each in-process on port 0 and each service on its
//! own fresh database), and small helpers for talking to it over real HTTP.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{RunningService, any_port, catalog::spawn_catalog, order::spawn_order};

/// The webhook secret every test gateway is configured with (unless a test
/// sets its own), in-process or as a child process: long enough for a gateway
/// outside development mode (32 bytes or more).
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-5d41402abc4b2a76b9719d911017c592";

/// Starts a gateway in front of the given services; `configure` adjusts the
/// test configuration before it starts.
pub async fn spawn_gateway(
    catalog_url: &str,
    order_url: &str,
    configure: impl FnOnce(&mut ::gateway::Config),
) -> RunningService {
    let mut config = ::gateway::Config::for_services(catalog_url, order_url, any_port());
    config.webhook_secret = Some(WEBHOOK_SECRET.to_owned());
    // Generous: a loaded 2-core CI machine must not turn slow into 504.
    config.grpc_timeout = std::time::Duration::from_millis(10_000);
    config.grpc_connect_timeout = std::time::Duration::from_millis(500);
    // Balanced channels notice a stopped or restarted service within 200 ms.
    config.grpc_refresh_interval = std::time::Duration::from_millis(200);
    config.shutdown_grace = std::time::Duration::from_secs(5);
    configure(&mut config);
    let app = ::gateway::Application::build(config)
        .await
        .expect("gateway starts");
    let admin = app.admin_addr();
    RunningService::spawn(app.local_addr(), None, |stop| app.run_until(stop)).with_admin(admin)
}

/// The three processes and an HTTP client for the gateway ([`Api`], whose
/// methods a `Platform` has too).
pub struct Platform {
    pub catalog: RunningService,
    pub order: RunningService,
    pub gateway: RunningService,
    pub api: Api,
}

impl Platform {
    /// The three, and a client of the gateway.
    pub fn new(catalog: RunningService, order: RunningService, gateway: RunningService) -> Self {
        let api = Api::new(format!("http://{}", gateway.addr));
        Self {
            catalog,
            order,
            gateway,
            api,
        }
    }
}

impl std::ops::Deref for Platform {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Catalog, order service and gateway with the test configuration.
pub async fn spawn_platform() -> Platform {
    spawn_platform_with(|_| {}).await
}

/// As [`spawn_platform`], with the gateway's configuration adjusted.
pub async fn spawn_platform_with(configure: impl FnOnce(&mut ::gateway::Config)) -> Platform {
    let catalog = spawn_catalog().await;
    let order = spawn_order(&catalog.url()).await;
    let gateway = spawn_gateway(&catalog.url(), &order.url(), configure).await;
    Platform::new(catalog, order, gateway)
}

/// A plain HTTP/1.1 client; no proxies (tests talk to loopback only).
pub fn http_client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client builds")
}

/// A response read whole: status, headers, raw body, and the body as JSON
/// when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

impl Reply {
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body readable").to_vec();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            json,
        }
    }

    /// The `content-type` header, or `""`.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `id` of each item of a page (a list's answer), in order.
    pub fn item_ids(&self) -> Vec<&str> {
        let items = self.json["items"].as_array().expect("items[]");
        items
            .iter()
            .map(|item| item["id"].as_str().expect("id"))
            .collect()
    }

    /// Asserts the status, with the body in the message when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts an error in the contract's format (RFC 9457 problem details)
    /// with `status`, and returns its `detail`.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        self.expect(status);
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "content-type {:?}",
            self.content_type()
        );
        assert_eq!(self.json["status"], status, "{}", self.json);
        assert!(self.json["title"].is_string(), "{}", self.json);
        assert!(self.json["type"].is_string(), "{}", self.json);
        self.json["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail in {}", self.json))
            .to_owned()
    }

    /// The fields named by a 422's `errors[]`.
    #[track_caller]
    pub fn violated_fields(&self) -> Vec<String> {
        self.problem(422);
        self.json["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors[] in {}", self.json))
            .iter()
            .map(|e| e["field"].as_str().expect("field is a string").to_owned())
            .collect()
    }
}

/// An HTTP client of one gateway, in-process or a child process.
#[derive(Clone)]
pub struct Api {
    pub http: Client,
    /// `http://127.0.0.1:port` of the gateway.
    pub base_url: String,
}

impl Api {
    pub fn new(base_url: String) -> Self {
        Self {
            http: http_client(),
            base_url,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional JSON body; a transport error (no
    /// answer at all) is `Err`.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => Ok(Reply::read(response).await),
            Err(error) => Err(format!("transport: {error}")),
        }
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let sent = self.try_send(method, path, body).await;
        sent.unwrap_or_else(|e| panic!("gateway unreachable: {e}"))
    }
    /// Sends raw bytes with the given content type (`None`: no header).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        Reply::read(request.send().await.expect("gateway reachable")).await
    }

    /// Each `(query, field)`: `GET path?query` is refused (422) naming
    /// exactly `field`.
    pub async fn assert_queries_refused(&self, path: &str, cases: &[(&str, &str)]) {
        for (query, field) in cases {
            let reply = self.get(&format!("{path}?{query}")).await;
            assert_eq!(reply.violated_fields(), vec![field.to_owned()], "{query}");
        }
    }

    /// GET of an absolute URL (another process's `/metrics`, say).
    pub async fn fetch(&self, url: &str) -> Reply {
        let sent = self.http.get(url).send().await;
        Reply::read(sent.unwrap_or_else(|e| panic!("{url} unreachable: {e}"))).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a product over the API; returns its JSON.
    pub async fn create_product(&self, name: &str, price: &str, quantity: i64) -> Value {
        let reply = self
            .post(
                "/api/products",
                &json!({"name": name, "price": price, "quantity": quantity}),
            )
            .await;
        reply.expect(201);
        reply.json
    }

    /// Creates an order over the API; `lines` are (product id, quantity).
    pub async fn create_order(&self, customer_id: i64, lines: &[(&str, i64)]) -> Reply {
        let products: Vec<Value> = lines
            .iter()
            .map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}))
            .collect();
        self.post(
            "/api/orders",
            &json!({"customer_id": customer_id, "products": products}),
        )
        .await
    }

    /// The product's stock as the API reports it.
    pub async fn stock_of(&self, product_id: &str) -> i64 {
        let reply = self.get(&format!("/api/products/{product_id}")).await;
        reply.expect(200);
        reply.json["quantity"]
            .as_i64()
            .expect("quantity is an integer")
    }

    /// Every product and order as the API lists them (all pages), to compare
    /// stored state before and after.
    pub async fn snapshot(&self) -> (Vec<Value>, Vec<Value>) {
        (
            self.all_pages("/api/products").await,
            self.all_pages("/api/orders").await,
        )
    }

    /// Every item of a paged list (all pages).
    pub async fn all_pages(&self, path: &str) -> Vec<Value> {
        self.try_all_pages(path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every item of a paged list (all pages), or why not.
    pub async fn try_all_pages(&self, path: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        for page in 1.. {
            let page_path = format!("{path}?page={page}&page_size=100");
            let reply = self.try_send(Method::GET, &page_path, None).await?;
            let batch = match reply.json["items"].as_array() {
                Some(batch) if reply.status == StatusCode::OK => batch.clone(),
                _ => return Err(format!("GET {page_path}: {} {}", reply.status, reply.json)),
            };
            if batch.is_empty() {
                break;
            }
            items.extend(batch);
        }
        Ok(items)
    }

    /// Polls `/ready` (at most 30 s) until it answers `status`.
    pub async fn wait_ready(&self, status: u16) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = None;
        while std::time::Instant::now() < deadline {
            match self.try_send(Method::GET, "/ready", None).await {
                Ok(reply) if reply.status == status => return,
                answer => last = Some(answer),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("/ready never answered {status} within 30 s; last answer: {last:?}");
    }

    /// Polls `/ready` (at most 30 s) until it is 200 with every service in
    /// `backends` reported `state` (`"up"` or `"down"`): a service outage
    /// shows there, not in `/ready`'s status (which is 503 only while the
    /// gateway drains).
    pub async fn wait_backends(&self, state: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = None;
        while std::time::Instant::now() < deadline {
            match self.try_send(Method::GET, "/ready", None).await {
                Ok(reply)
                    if reply.status == StatusCode::OK
                        && ["catalog", "order"]
                            .iter()
                            .all(|name| reply.json["backends"][name] == state) =>
                {
                    return;
                }
                answer => last = Some(answer),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("/ready never reported every backend {state} within 30 s; last answer: {last:?}");
    }

    /// Posts a webhook body with the given `X-Signature` (`None`: no header).
    pub async fn webhook(&self, body: &[u8], signature: Option<&str>) -> Reply {
        let mut request = self
            .http
            .post(self.url("/api/payment-webhook"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        Reply::read(request.send().await.expect("gateway reachable")).await
    }

    /// `PUT /api/orders/{id}/status` to `status`.
    pub async fn set_order_status(&self, order_id: &str, status: &str) -> Reply {
        let body = serde_json::json!({ "status": status });
        self.put(&format!("/api/orders/{order_id}/status"), &body)
            .await
    }

    /// Posts a webhook body signed (original form) with the test secret.
    pub async fn signed_webhook(&self, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        self.webhook(&bytes, Some(&sign(WEBHOOK_SECRET, &bytes)))
            .await
    }
}

/// The `X-Signature` form: hex of HMAC-SHA256(secret, body). Computed
/// here with the `hmac` crate, independently of the gateway's own code.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The timestamped form `t=<unix>,v1=<hex>`, signing `"<t>." + body`.
pub fn sign_timestamped(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={timestamp},v1={}", sign(secret, &signed))
}

/// The current unix time in seconds.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// The platform as [`spawn_platform`] starts it, plus what observability tests
/// need: where each process serves its Prometheus metrics, and the order
/// service's reconciler (to run a pass when the test chooses).
pub struct ObservedPlatform {
    pub platform: Platform,
    pub reconciler: order_service::Reconciler,
    /// See [`metrics_urls`].
    pub metrics_urls: [(&'static str, String); 3],
}

/// Catalog, order service and gateway with the test configuration, and their
/// metrics endpoints.
pub async fn spawn_observed_platform() -> ObservedPlatform {
    let catalog = crate::catalog::start_catalog(crate::catalog::catalog_config()).await;
    let order = crate::order::start_order(crate::order::order_config(&catalog.service.url())).await;
    let gateway = spawn_gateway(&catalog.service.url(), &order.service.url(), |_| {}).await;
    let gateway_admin = gateway.admin_addr.expect("the gateway's admin address");
    let metrics_urls = metrics_urls(gateway_admin, catalog.admin_addr, order.admin_addr);
    ObservedPlatform {
        platform: Platform::new(catalog.service, order.service, gateway),
        reconciler: order.reconciler,
        metrics_urls,
    }
}

/// `(process, URL of its /metrics)`: each process's admin port (the
/// gateway's too: its public port does not serve `/metrics`).
pub fn metrics_urls(
    gateway_admin: SocketAddr,
    catalog_admin: SocketAddr,
    order_admin: SocketAddr,
) -> [(&'static str, String); 3] {
    [
        ("gateway", format!("http://{gateway_admin}/metrics")),
        ("catalog-service", format!("http://{catalog_admin}/metrics")),
        ("order-service", format!("http://{order_admin}/metrics")),
    ]
}

/// Reads from `socket` until the peer closes it or `limit` passes; `None`
/// when it was still open at the limit. For tests that speak raw HTTP.
pub async fn read_until_closed(socket: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let closed = read_into(socket, &mut received, limit, |_| false).await;
    closed.then_some(received)
}

/// Reads an HTTP/1.1 response head (and whatever came with it), for at
/// most `limit`.
pub async fn read_response_head(socket: &mut TcpStream, limit: Duration) -> String {
    read_answer(socket, limit, has_head).await
}

/// Reads an HTTP/1.1 answer whose body is JSON, up to its closing `}` (or
/// the end of the connection), for at most `limit`.
pub async fn read_json_answer(socket: &mut TcpStream, limit: Duration) -> String {
    let done = |received: &[u8]| has_head(received) && received.ends_with(b"}");
    read_answer(socket, limit, done).await
}

fn has_head(received: &[u8]) -> bool {
    received.windows(4).any(|w| w == b"\r\n\r\n")
}

/// What `socket` sends until `done` says the answer is whole, the peer
/// closes, or `limit` passes.
async fn read_answer(
    socket: &mut TcpStream,
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> String {
    let mut received = Vec::new();
    read_into(socket, &mut received, limit, done).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// Appends what `socket` sends to `received` until `done`, the end of the
/// connection (then `true`) or `limit`.
async fn read_into(
    socket: &mut TcpStream,
    received: &mut Vec<u8>,
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut closed = false;
    let _ = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        while !done(received) {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    closed
}

/// A raw connection to the gateway at `addr` that has sent the head of a
/// JSON `POST path` framed by `framing` (`Content-Length: <n>` or
/// `Transfer-Encoding: chunked`), then `body`: a whole body, or only the
/// start of one (the request then stays in flight, reading it).
pub async fn raw_post(addr: SocketAddr, path: &str, framing: &str, body: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("gateway reachable");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head sent");
    socket.write_all(body).await.expect("body sent");
    socket
}

/// Sends what `send` sends, every 20 ms, until its answer is `wanted`; every
/// other answer must be `meanwhile` (in the problem format if an error);
/// fails after 10 s, saying `never`. The wanted answer.
pub async fn until_answered<F, A>(wanted: u16, meanwhile: u16, never: &str, mut send: F) -> Reply
where
    F: FnMut() -> A,
    A: std::future::Future<Output = Reply>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = send().await;
        if reply.status == wanted {
            return reply;
        }
        if meanwhile >= 400 {
            reply.problem(meanwhile);
        } else {
            reply.expect(meanwhile);
        }
        assert!(std::time::Instant::now() < deadline, "{never}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
