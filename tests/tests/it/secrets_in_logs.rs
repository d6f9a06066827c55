//! No secret ever shows: the three real binaries run a full scenario
//! with known secrets (webhook secrets, an API key, a database password in the
//! services' database URLs) and debug logging, and none of those secrets, nor
//! a wrong API key or a wrong database password a client or operator used,
//! appears in anything they wrote (stdout, stderr) or answered (HTTP status
//! lines, headers and bodies of the gateway and of the services' admin ports),
//! neither as is, nor percent-encoded, nor in hex.
//!
//! The databases live in a private PostgreSQL cluster whose role for the
//! services has a password that is really checked (scram-sha-256); the
//! scenario stops the cluster for a while, so connection errors are logged
//! and answered too, and starts one service with a wrong password, which must
//! refuse to start without printing either password.
//!
//! Once with human-readable logs, once with `LOG_FORMAT=json`. About 10-20 s
//! each. `SECRETS_TEST_DUMP=<dir>` writes what was searched into `<dir>`.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tests::{
    database_name,
    gateway::{http_client, now_unix, sign, sign_timestamped},
    pgcluster::PrivatePostgres,
    process::{
        CapturedOutput, ChildPlatform, PlatformEnv, env, free_addr, run_to_exit, strip_ansi,
    },
};
use tokio::time::Instant;
use uuid::Uuid;

/// The gateway accepts either (rotation); the test signs with the new one.
const OLD_WEBHOOK_SECRET: &str = "old-webhook-secret-Pq3Zr7Tn5Wk8JsXy4Lm2Rt";
const NEW_WEBHOOK_SECRET: &str = "new-webhook-secret-Lm4Qz8Rt2Vx6NbKq7Wp3Zs";
const API_KEY: &str = "ak_live_9Hq2Zx4Vb7Wm3Np8Ks";
/// A key the gateway does not know (a client's typo of a real key, say).
const WRONG_API_KEY: &str = "ak_live_5Tg8Yh1Uj6Ik2OlQw";
/// Needs percent-encoding in a URL ('/', '@', ':').
const DB_PASSWORD: &str = "Pg/s3cr3t@pw:7KqRz";
const WRONG_DB_PASSWORD: &str = "Pg/wr0ng@pw:3XzVb";
const DB_ROLE: &str = "shop_owner";

#[tokio::test]
async fn no_secret_in_human_readable_debug_logs_or_responses() {
    no_secret_shows(LogFormat::Text).await;
}

#[tokio::test]
async fn no_secret_in_json_debug_logs_or_responses() {
    no_secret_shows(LogFormat::Json).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

async fn no_secret_shows(format: LogFormat) {
    let mut postgres = PrivatePostgres::start().await;
    create_role_with_password(&postgres).await;
    let output = CapturedOutput::new();
    let platform = start_platform(&postgres, format, &output).await;
    let mut http = Recorder::new(&platform.gateway_url());

    let webhook_signatures = run_scenario(&mut http, &mut postgres).await;

    // The services' admin ports, after all that.
    for admin in [
        platform.catalog_admin,
        platform.order_admin,
        platform.gateway_admin,
    ] {
        for path in ["/metrics", "/health", "/ready"] {
            http.send_to(&format!("http://{admin}"), Method::GET, path, None, None)
                .await;
        }
    }
    platform.stop_cleanly().await;

    // An operator's typo in the password: the service refuses to start.
    let mut env = logging(format);
    env.extend([
        (
            "DATABASE_URL",
            database_url(&postgres, WRONG_DB_PASSWORD, "catalog"),
        ),
        ("LISTEN_ADDR", free_addr().to_string()),
        ("ADMIN_ADDR", free_addr().to_string()),
    ]);
    let limit = Duration::from_secs(30);
    let status = run_to_exit("catalog-service", &[], &env, &output, limit).await;
    assert!(!status.success(), "started with a wrong password");
    // Human-readable lines are coloured: search them without the escapes,
    // which could otherwise cut a secret in two.
    let logged = strip_ansi(&output.text());
    assert!(
        logged.contains("password authentication failed"),
        "the wrong password was not what stopped the service:\n{logged}"
    );

    // The test saw what it meant to: debug lines (SQL statements included)
    // in the expected format.
    match format {
        LogFormat::Text => assert!(logged.contains(" DEBUG "), "no debug line"),
        LogFormat::Json => assert!(logged.contains(r#""level":"DEBUG""#), "no JSON debug line"),
    }
    assert!(
        logged.contains("sqlx::query"),
        "sqlx statement logging was not on"
    );

    if let Ok(dir) = std::env::var("SECRETS_TEST_DUMP") {
        // For a person checking what the test saw.
        let name = format!("{format:?}").to_lowercase();
        std::fs::write(format!("{dir}/{name}-output.log"), &logged).expect("dump output");
        std::fs::write(format!("{dir}/{name}-responses.txt"), &http.transcript)
            .expect("dump responses");
    }

    let mut secrets = vec![
        ("webhook secret (old)", OLD_WEBHOOK_SECRET.to_owned()),
        ("webhook secret (new)", NEW_WEBHOOK_SECRET.to_owned()),
        ("API key", API_KEY.to_owned()),
        ("wrong API key", WRONG_API_KEY.to_owned()),
        ("database password", DB_PASSWORD.to_owned()),
        ("wrong database password", WRONG_DB_PASSWORD.to_owned()),
    ];
    secrets.extend(webhook_signatures);
    let places = [
        ("process output", logged),
        ("HTTP responses", http.transcript),
    ];
    let mut found = Vec::new();
    for (what, secret) in &secrets {
        for (form, needle) in forms(secret) {
            for (place, haystack) in &places {
                if let Some(at) = haystack.find(&needle) {
                    found.push(format!(
                        "{what} ({form}) in {place}: ...{}...",
                        excerpt(haystack, at, needle.len())
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// The scenario, through the gateway. Returns the webhook signatures that a
/// log must not show (name, value): the one sent with a valid request, and
/// the right one for a request that was sent with a wrong one.
async fn run_scenario(
    http: &mut Recorder,
    postgres: &mut PrivatePostgres,
) -> Vec<(&'static str, String)> {
    http.wait_ready(StatusCode::OK).await;
    // (`/metrics` is on the admin port: read at the end, with the services'.)
    for path in ["/health", "/", "/openapi.json"] {
        http.send(Method::GET, path, None, None).await;
    }

    // Products: with the key, with a wrong one, with none.
    let mut products = Vec::new();
    for (n, quantity) in [(1, 10), (2, 1)] {
        let body = json!({"name": format!("Secret-test product {n}"), "price": "12.50", "quantity": quantity});
        let (status, product) = http
            .send(Method::POST, "/api/products", Some(&body), Some(API_KEY))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{product}");
        products.push(product["id"].as_str().expect("product id").to_owned());
    }
    let body = json!({"name": "Refused", "price": "1.00", "quantity": 1});
    http.send(
        Method::POST,
        "/api/products",
        Some(&body),
        Some(WRONG_API_KEY),
    )
    .await;
    http.send(Method::POST, "/api/products", Some(&body), None)
        .await;
    let path = format!("/api/products/{}", products[0]);
    http.send(
        Method::PUT,
        &path,
        Some(&json!({"price": "13.00"})),
        Some(API_KEY),
    )
    .await;
    http.send(Method::GET, &path, None, None).await;

    // Orders: created, refused (no stock, unknown product, invalid), canceled.
    let mut orders = Vec::new();
    for _ in 0..2 {
        let (status, created) = http.order(&products[0], 2).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        orders.push(created["id"].as_str().expect("order id").to_owned());
    }
    http.order(&products[1], 5).await;
    let unknown = Uuid::new_v4().to_string();
    http.order(&unknown, 1).await;
    http.send(
        Method::POST,
        "/api/orders",
        Some(&json!({"customer_id": 0})),
        None,
    )
    .await;
    let cancel = json!({"status": "canceled"});
    let status_path = format!("/api/orders/{}/status", orders[0]);
    http.send(
        Method::PUT,
        &status_path,
        Some(&cancel),
        Some(WRONG_API_KEY),
    )
    .await;
    let (status, canceled) = http
        .send(Method::PUT, &status_path, Some(&cancel), Some(API_KEY))
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    http.send(Method::GET, "/api/orders?page=1&page_size=10", None, None)
        .await;

    // Payment webhooks: signed (both forms), wrongly signed, unsigned.
    let paid = serde_json::to_vec(&json!({"order_id": orders[1], "payment_status": "paid"}))
        .expect("serialisable");
    let signature = sign(NEW_WEBHOOK_SECRET, &paid);
    let (status, answer) = http.webhook(&paid, Some(&signature)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let timestamped = sign_timestamped(NEW_WEBHOOK_SECRET, now_unix(), &paid);
    http.webhook(&paid, Some(&timestamped)).await;
    let failed = serde_json::to_vec(&json!({"order_id": orders[1], "payment_status": "failed"}))
        .expect("serialisable");
    let right_for_failed = sign(NEW_WEBHOOK_SECRET, &failed);
    let wrong = sign("not-the-secret", &failed);
    let (status, answer) = http.webhook(&failed, Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    http.webhook(&failed, None).await;

    // The database goes away: errors are logged and answered.
    postgres.stop().await;
    http.wait_backends("down").await;
    http.send(Method::GET, "/api/products", None, None).await;
    http.order(&products[0], 1).await;
    http.send(Method::PUT, &status_path, Some(&cancel), Some(API_KEY))
        .await;
    http.webhook(&paid, Some(&signature)).await;
    postgres.start_server().await;
    http.wait_backends("up").await;
    let (status, created) = http.order(&products[0], 1).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    vec![
        ("webhook signature of an applied request", signature),
        (
            "right signature of a wrongly signed request",
            right_for_failed,
        ),
    ]
}

/// `CREATE ROLE` with a password, allowed to create the services' databases.
async fn create_role_with_password(postgres: &PrivatePostgres) {
    let mut admin = PgConnection::connect(&format!("{}/postgres", postgres.url()))
        .await
        .expect("private cluster reachable");
    // Neither value holds a quote: safe to splice (roles cannot be bound).
    let statement = format!("CREATE ROLE {DB_ROLE} LOGIN CREATEDB PASSWORD '{DB_PASSWORD}'");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut admin)
        .await
        .expect("create role");
    let _ = admin.close().await;
}

/// `postgres://shop_owner:<percent-encoded password>@127.0.0.1:<port>/t_<service>_<uuid>`
fn database_url(postgres: &PrivatePostgres, password: &str, service: &str) -> String {
    format!(
        "postgres://{DB_ROLE}:{}@127.0.0.1:{}/{}",
        percent_encode(password, true),
        postgres.port(),
        database_name(service)
    )
}

/// Debug logging in `format`, for every process.
fn logging(format: LogFormat) -> Vec<(&'static str, String)> {
    vec![
        ("RUST_LOG", "debug".to_owned()),
        ("LOG_FORMAT", format.env_value()),
    ]
}

impl LogFormat {
    /// `LOG_FORMAT`: `json`, or anything else for human-readable lines.
    fn env_value(self) -> String {
        match self {
            Self::Text => "text".to_owned(),
            Self::Json => "json".to_owned(),
        }
    }
}

/// The three binaries on the private cluster, as the role with a password,
/// logging at debug level, everything they write in `output`.
async fn start_platform(
    postgres: &PrivatePostgres,
    format: LogFormat,
    output: &CapturedOutput,
) -> ChildPlatform {
    let databases = (
        database_url(postgres, DB_PASSWORD, "catalog"),
        database_url(postgres, DB_PASSWORD, "order"),
    );
    let mut gateway = vec![
        (
            "WEBHOOK_SECRET",
            format!("{OLD_WEBHOOK_SECRET},{NEW_WEBHOOK_SECRET}"),
        ),
        // `name=key:rights` at the time of writing; a gateway that does not
        // know API_KEYS ignores it, one that does must never log the key.
        // (If the format changes and the gateway refuses this value, it
        // exits at start and the test says so with its output.)
        (
            "API_KEYS",
            format!("secrets-test={API_KEY}:products,orders"),
        ),
    ];
    gateway.extend(env("GRPC_TIMEOUT=3000ms"));
    ChildPlatform::start(PlatformEnv {
        databases: Some(databases),
        all: logging(format),
        catalog: env("HEALTH_CHECK_INTERVAL=200ms"),
        order: env(
            "HEALTH_CHECK_INTERVAL=200ms GRPC_TIMEOUT=1000ms RECONCILE_INTERVAL=1s \
             RESERVING_GRACE=3s OUTBOX_RETRY_BASE=50ms",
        ),
        gateway,
        output: Some(output),
    })
    .await
}

/// An HTTP client that keeps every response it got (status line, headers,
/// body) in `transcript`.
struct Recorder {
    http: Client,
    base_url: String,
    transcript: String,
}

impl Recorder {
    fn new(base_url: &str) -> Self {
        Self {
            http: http_client(),
            base_url: base_url.to_owned(),
            transcript: String::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        api_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let base_url = self.base_url.clone();
        self.send_to(&base_url, method, path, body, api_key).await
    }

    async fn send_to(
        &mut self,
        base_url: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        api_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{base_url}{path}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        self.record(&method, path, request).await
    }

    /// POST /api/orders of `quantity` of `product` (no key: orders need none).
    async fn order(&mut self, product: &str, quantity: i64) -> (StatusCode, Value) {
        let body = json!({"customer_id": 4242, "products": [{"product_id": product, "quantity": quantity}]});
        self.send(Method::POST, "/api/orders", Some(&body), None)
            .await
    }

    async fn webhook(&mut self, body: &[u8], signature: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/api/payment-webhook", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        self.record(&Method::POST, "/api/payment-webhook", request)
            .await
    }

    async fn record(
        &mut self,
        method: &Method,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> (StatusCode, Value) {
        let response = request.send().await.expect("server reachable");
        let status = response.status();
        self.transcript
            .push_str(&format!("{method} {path} -> {status}\n"));
        for (name, value) in response.headers() {
            self.transcript.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        let body = response.bytes().await.expect("body readable");
        self.transcript.push_str(&String::from_utf8_lossy(&body));
        self.transcript.push_str("\n\n");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Polls `/ready` (recording every answer) until it is `status`, 30 s at most.
    /// Until `/ready` is 200 with both services `state` (`up` / `down`).
    async fn wait_backends(&mut self, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (now, body) = self.send(Method::GET, "/ready", None, None).await;
            if now == StatusCode::OK
                && body["backends"]["catalog"] == state
                && body["backends"]["order"] == state
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/ready is {now}, not every backend {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&mut self, status: StatusCode) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (now, body) = self.send(Method::GET, "/ready", None, None).await;
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/ready is {now}, not {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The forms a secret could be shown in: as is, percent-encoded (upper- and
/// lower-case escapes), hex of its bytes (both cases). Deduplicated (a secret with no character to
/// escape is its own percent-encoding).
fn forms(secret: &str) -> Vec<(&'static str, String)> {
    let mut forms = vec![
        ("as is", secret.to_owned()),
        ("percent-encoded", percent_encode(secret, true)),
        (
            "percent-encoded, lower-case escapes",
            percent_encode(secret, false),
        ),
        ("hex", hex::encode(secret)),
        ("hex, upper-case", hex::encode_upper(secret)),
    ];
    let mut seen = std::collections::BTreeSet::new();
    forms.retain(|(_, form)| seen.insert(form.clone()));
    forms
}

/// Every byte but the unreserved ones (RFC 3986: A-Z a-z 0-9 - . _ ~) as `%XX`.
fn percent_encode(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// The text around a match, on one line, for the failure message.
fn excerpt(haystack: &str, at: usize, len: usize) -> String {
    let mut start = at.saturating_sub(120);
    while !haystack.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + 120).min(haystack.len());
    while !haystack.is_char_boundary(end) {
        end += 1;
    }
    haystack[start..end].replace('\n', "\\n")
}

#[test]
fn the_search_sees_every_form_of_a_secret_even_in_coloured_lines() {
    let password: Vec<String> = forms(DB_PASSWORD).into_iter().map(|(_, f)| f).collect();
    assert!(password.contains(&"Pg%2Fs3cr3t%40pw%3A7KqRz".to_owned()));
    assert!(password.contains(&"Pg%2fs3cr3t%40pw%3a7KqRz".to_owned()));
    assert!(password.contains(&hex::encode(DB_PASSWORD)));
    // A secret with nothing to escape is searched once as is.
    assert_eq!(forms(API_KEY).len(), 3);
    for form in &password {
        let line = format!("\u{1b}[2mcause\u{1b}[0m=\u{1b}[3m{form}\u{1b}[0m trailing");
        assert!(strip_ansi(&line).contains(form.as_str()), "{line:?}");
    }
}
