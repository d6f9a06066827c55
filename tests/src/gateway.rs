//! Starting the gateway for a test, the whole platform behind it (catalog,
//! order service, gateway, each in-process on port 0 and each service on its
//! own fresh database), and small helpers for talking to it over real HTTP.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};

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
    config.grpc_timeout_ms = 10_000;
    config.grpc_connect_timeout_ms = 500;
    // Balanced channels notice a stopped or restarted service within 200 ms.
    config.grpc_refresh_ms = 200;
    config.shutdown_grace_secs = 5;
    configure(&mut config);
    let app = ::gateway::Application::build(config)
        .await
        .expect("gateway starts");
    let addr = app.local_addr();
    RunningService::spawn(addr, String::new(), |rx| async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
    })
}

/// The three processes and an HTTP client for the gateway.
pub struct Platform {
    pub catalog: RunningService,
    pub order: RunningService,
    pub gateway: RunningService,
    pub http: Client,
    /// `http://127.0.0.1:port` of the gateway.
    pub base_url: String,
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
    let base_url = format!("http://{}", gateway.addr);
    Platform {
        catalog,
        order,
        gateway,
        http: http_client(),
        base_url,
    }
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

impl Platform {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(request.send().await.expect("gateway reachable")).await
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

    async fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        for page in 1.. {
            let reply = self.get(&format!("{path}?page={page}&page_size=100")).await;
            reply.expect(200);
            let batch = reply.json["items"].as_array().expect("items").clone();
            if batch.is_empty() {
                break;
            }
            items.extend(batch);
        }
        items
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

    /// Posts a webhook body signed (original form) with the test secret.
    pub async fn signed_webhook(&self, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        self.webhook(&bytes, Some(&sign(WEBHOOK_SECRET, &bytes)))
            .await
    }
}

/// The original signature form: hex of HMAC-SHA256(secret, body). Computed
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
    /// `(process, URL of its /metrics)`: the gateway's own port, the
    /// services' admin ports.
    pub metrics_urls: Vec<(&'static str, String)>,
}

/// Catalog, order service and gateway with the test configuration, and their
/// metrics endpoints.
pub async fn spawn_observed_platform() -> ObservedPlatform {
    let catalog = crate::catalog::start_catalog_on(crate::fresh_database_url("catalog")).await;
    let order = crate::order::start_order(crate::order::order_config(&catalog.service.url())).await;
    let gateway = spawn_gateway(&catalog.service.url(), &order.service.url(), |_| {}).await;
    let base_url = format!("http://{}", gateway.addr);
    let metrics_urls = vec![
        ("gateway", format!("{base_url}/metrics")),
        (
            "catalog-service",
            format!("http://{}/metrics", catalog.admin_addr),
        ),
        (
            "order-service",
            format!("http://{}/metrics", order.admin_addr),
        ),
    ];
    ObservedPlatform {
        platform: Platform {
            catalog: catalog.service,
            order: order.service,
            gateway,
            http: http_client(),
            base_url,
        },
        reconciler: order.reconciler,
        metrics_urls,
    }
}

/// Reads from `socket` until the peer closes it or `limit` passes; `None`
/// when it was still open at the limit. For tests that speak raw HTTP.
pub async fn read_until_closed(
    socket: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| received)
}

/// Reads an HTTP/1.1 response head (and whatever came with it), for at
/// most `limit`.
pub async fn read_response_head(
    socket: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&received).into_owned()
}
