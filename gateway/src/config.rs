//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine where the two services run on their default ports.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

use platform::{
    renamed::{Renamed, Unit},
    settings::parse_duration,
};

use crate::security::api_keys::{ApiKeys, ApiKeysError};

/// Used when `WEBHOOK_SECRET` is not set in development mode (`DEV_MODE`), so
/// a developer machine works out of the box; outside it, the gateway refuses
/// to start without a real secret (and refuses this one).
pub const DEVELOPMENT_WEBHOOK_SECRET: &str = "development-webhook-secret-change-me";

/// Shortest webhook secret accepted outside development mode, in bytes.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// Words that mark a value copied from an example, a template or this
/// repository rather than generated: a secret holding one is refused outside
/// development mode.
const PLACEHOLDER_MARKS: [&str; 8] = [
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "placeholder",
    "example",
    "development",
    "insecure",
];

/// Whether `secret` looks like a placeholder rather than a generated value.
pub fn is_placeholder(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    PLACEHOLDER_MARKS.iter().any(|mark| lower.contains(mark))
        // one character repeated: "xxxxxxxx...", "00000000..."
        || secret
            .chars()
            .next()
            .is_some_and(|first| secret.chars().all(|c| c == first))
}

#[derive(Clone, Parser)]
#[command(
    name = "gateway",
    version,
    about = "The public REST API, over the gRPC services"
)]
pub struct Config {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen_addr: SocketAddr,

    /// Address of the admin HTTP server: `/metrics` (Prometheus), `/health`,
    /// `/ready`, as the services have (port 0 picks a free port). Kept off
    /// the public port, where clients should not read the metrics.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:9100")]
    pub admin_addr: SocketAddr,

    /// Check the health of the gateway running at LISTEN_ADDR (`/health`) and
    /// exit 0 if it answers 200, 1 otherwise (for container health checks).
    #[arg(long)]
    pub probe: bool,

    /// gRPC endpoint of the catalog service.
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:50051")]
    pub catalog_url: String,

    /// gRPC endpoint of the order service.
    #[arg(long, env = "ORDER_URL", default_value = "http://127.0.0.1:50052")]
    pub order_url: String,

    /// Development mode: what an operator must set may be left unset (a
    /// built-in development webhook secret; writes open without API keys),
    /// with a warning at start. For a developer machine, never production.
    #[arg(long = "dev", env = "DEV_MODE", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub dev_mode: bool,

    /// Payment webhook HMAC secret(s), comma-separated: every one is accepted,
    /// so a secret can be rotated without downtime. Required outside
    /// development mode: at least 32 bytes each (`openssl rand -hex 32`), no
    /// placeholder. Set but empty: the gateway refuses to start.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Serve product writes and order status changes without API keys, on
    /// purpose (logged at start). Without it, outside development mode,
    /// API_KEYS is required.
    #[arg(long, env = "OPEN_WRITES", default_value_t = false, action = clap::ArgAction::Set)]
    pub open_writes: bool,

    /// Refuse the plain, untimestamped `X-Signature: <hex>` form, which a
    /// captured request can be replayed with forever.
    #[arg(long, env = "WEBHOOK_REQUIRE_TIMESTAMP", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_require_timestamp: bool,

    /// How far a timestamped signature may be from the gateway's clock. (Was
    /// WEBHOOK_TOLERANCE_SECS.)
    #[arg(long, env = "WEBHOOK_TOLERANCE", default_value = "300s", value_parser = parse_duration)]
    pub webhook_tolerance: Duration,

    /// Deadline of every gRPC call. (Was GRPC_TIMEOUT_MS.)
    #[arg(long, env = "GRPC_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub grpc_timeout: Duration,

    /// How long to wait for a TCP connection to a service. (Was
    /// GRPC_CONNECT_TIMEOUT_MS.)
    #[arg(long, env = "GRPC_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub grpc_connect_timeout: Duration,

    /// Spread calls over every address each service URL resolves to (a
    /// headless Kubernetes Service: every ready pod), re-resolved every
    /// GRPC_REFRESH_INTERVAL. Off: one lazily connected endpoint per service.
    #[arg(long, env = "GRPC_BALANCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub grpc_balance: bool,

    /// How often balanced channels re-resolve and probe their addresses.
    /// (Was GRPC_REFRESH_MS.)
    #[arg(long, env = "GRPC_REFRESH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub grpc_refresh_interval: Duration,

    /// Largest request body (bytes) on the API routes: 64 KiB holds a product
    /// with a long description or an order of over a thousand lines.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,

    /// Largest payment webhook body (bytes).
    #[arg(long, env = "WEBHOOK_BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub webhook_body_limit_bytes: usize,

    /// Upper bound on one HTTP request, body upload included; past it the
    /// client gets 408. Calls to the services have their own, shorter
    /// deadline (GRPC_TIMEOUT). (Was REQUEST_TIMEOUT_SECS.)
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Most requests served at once by this process; past it a request is
    /// answered at once with 503 and `Retry-After` rather than queued.
    /// `/health` and `/ready` (and the admin port) are never refused.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,

    /// How long a client may take to send a request's headers; past it the
    /// connection is closed (slowloris). Bodies are bounded by
    /// REQUEST_TIMEOUT. (Was HEADER_READ_TIMEOUT_SECS.)
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s",
          value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,

    /// API keys for product writes and order status changes, with their
    /// rights: `name=key:right[,right]` entries separated by `;` (or new
    /// lines); rights are `products` and `orders`. Unset: those operations are
    /// open to anyone (with a warning at start). See `crate::security::api_keys`.
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// Products kept by the read cache of `GET /api/products/{id}` (see
    /// `crate::upstream::product_cache`); 0 turns the cache off. The cache is used only
    /// while the catalog's change feed is live, which drops every changed
    /// product from it.
    #[arg(long, env = "PRODUCT_CACHE_CAPACITY", default_value_t = 10_000)]
    pub product_cache_capacity: usize,

    /// Longest time a product stays in the read cache, changes or not. (Was
    /// PRODUCT_CACHE_TTL_MS.)
    #[arg(long, env = "PRODUCT_CACHE_TTL", default_value = "10s",
          value_parser = parse_positive_duration)]
    pub product_cache_ttl: Duration,

    /// How long in-flight requests may run after SIGTERM (and the drain
    /// delay) before the process exits. (Was SHUTDOWN_GRACE_SECS.)
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    // DRAIN_DELAY: after SIGTERM, serve on while
    // `/ready` answers 503, before stopping to accept (see `platform::drain`).
    #[command(flatten)]
    pub drain: platform::drain::DrainSettings,

    /// ISO 4217 code of the platform's single currency.
    #[arg(long, env = "CURRENCY", default_value = proto::money::DEFAULT_CURRENCY)]
    pub currency: String,

    // ---- Mutual TLS to the services (see `platform::tls`) ------------------------
    // GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE: with them,
    // CATALOG_URL and ORDER_URL are https:// and the gateway presents its
    // client certificate; all unset: plaintext. Used by `crate::upstream`.
    #[command(flatten)]
    pub grpc_tls: platform::tls::ClientTlsSettings,

    // ---- Resource bounds (see `crate::http::limit::Bounds`) ------------------------
    // BODY_BUDGET_BYTES, MAX_CONNECTIONS, IDLE_CONNECTION_TIMEOUT,
    // HTTP2_MAX_CONCURRENT_STREAMS, HTTP2_KEEPALIVE_INTERVAL,
    // HTTP2_KEEPALIVE_TIMEOUT, PRODUCT_CACHE_MAX_BYTES.
    #[command(flatten)]
    pub bounds: crate::http::limit::Bounds,
}

/// A duration setting that must not be zero.
pub fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(duration)
}

/// The gateway's renamed settings: the old names are still read, with a
/// warning (see `platform::renamed`).
pub const RENAMED: &[Renamed] = &[
    Renamed::new(
        "WEBHOOK_TOLERANCE_SECS",
        "WEBHOOK_TOLERANCE",
        "webhook-tolerance",
        Unit::Secs,
    ),
    Renamed::new(
        "GRPC_TIMEOUT_MS",
        "GRPC_TIMEOUT",
        "grpc-timeout",
        Unit::Millis,
    ),
    Renamed::new(
        "GRPC_CONNECT_TIMEOUT_MS",
        "GRPC_CONNECT_TIMEOUT",
        "grpc-connect-timeout",
        Unit::Millis,
    ),
    Renamed::new(
        "GRPC_REFRESH_MS",
        "GRPC_REFRESH_INTERVAL",
        "grpc-refresh-interval",
        Unit::Millis,
    ),
    Renamed::new(
        "REQUEST_TIMEOUT_SECS",
        "REQUEST_TIMEOUT",
        "request-timeout",
        Unit::Secs,
    ),
    Renamed::new(
        "HEADER_READ_TIMEOUT_SECS",
        "HEADER_READ_TIMEOUT",
        "header-read-timeout",
        Unit::Secs,
    ),
    Renamed::new(
        "PRODUCT_CACHE_TTL_MS",
        "PRODUCT_CACHE_TTL",
        "product-cache-ttl",
        Unit::Millis,
    ),
    Renamed::new(
        "SHUTDOWN_GRACE_SECS",
        "SHUTDOWN_GRACE",
        "shutdown-grace",
        Unit::Secs,
    ),
    Renamed::new(
        "IDLE_CONNECTION_TIMEOUT_SECS",
        "IDLE_CONNECTION_TIMEOUT",
        "idle-connection-timeout",
        Unit::Secs,
    ),
    Renamed::new(
        "HTTP2_KEEPALIVE_INTERVAL_SECS",
        "HTTP2_KEEPALIVE_INTERVAL",
        "http2-keepalive-interval",
        Unit::Secs,
    ),
    Renamed::new(
        "HTTP2_KEEPALIVE_TIMEOUT_SECS",
        "HTTP2_KEEPALIVE_TIMEOUT",
        "http2-keepalive-timeout",
        Unit::Secs,
    ),
];

/// Why a configuration cannot be used. Each message names the setting and
/// how to make a good value; none ever quotes a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "WEBHOOK_SECRET is set but empty (or has an empty entry between commas): \
         refusing to start, since anyone could sign webhooks; set a real secret or unset it"
    )]
    EmptyWebhookSecret,
    #[error(
        "WEBHOOK_SECRET is not set: refusing to start, since payment webhooks could not be \
         verified. Set it to the secret your payment processor signs with (at least \
         {MIN_WEBHOOK_SECRET_BYTES} bytes, e.g. `openssl rand -hex 32`), or run with \
         DEV_MODE=true on a development machine"
    )]
    MissingWebhookSecret,
    #[error(
        "WEBHOOK_SECRET entry {entry} is shorter than {MIN_WEBHOOK_SECRET_BYTES} bytes: \
         refusing to start; use a longer secret (e.g. `openssl rand -hex 32`)"
    )]
    ShortWebhookSecret { entry: usize },
    #[error(
        "WEBHOOK_SECRET entry {entry} is a placeholder (the development secret or an example \
         value), not a secret: refusing to start; generate one (e.g. `openssl rand -hex 32`)"
    )]
    PlaceholderWebhookSecret { entry: usize },
    #[error(
        "API_KEYS is not set: refusing to start, since product writes and order status changes \
         would be open to anyone. Set API_KEYS (`name=key:right[,right]`, e.g. \
         `admin=<openssl rand -hex 24>:products,orders`), or OPEN_WRITES=true to serve them \
         without keys on purpose"
    )]
    MissingApiKeys,
    #[error(transparent)]
    ApiKeys(#[from] ApiKeysError),
}

/// Who may call the operations that need a right.
#[derive(Debug, Clone)]
pub enum WriteAccess {
    /// A key holding the right (API_KEYS).
    Keys(ApiKeys),
    /// Anyone: OPEN_WRITES, or development mode without API_KEYS.
    Open,
}

/// The secrets a webhook signature may be made with. `Debug` never shows them.
#[derive(Clone)]
pub struct WebhookSecrets {
    secrets: Vec<Vec<u8>>,
    /// True when no secret was configured and the development one is in use.
    pub is_development: bool,
}

impl WebhookSecrets {
    pub fn as_slices(&self) -> impl Iterator<Item = &[u8]> {
        self.secrets.iter().map(Vec::as_slice)
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("count", &self.secrets.len())
            .field("is_development", &self.is_development)
            .finish()
    }
}

impl Config {
    /// Defaults for everything but the two services and the address, in
    /// development mode (what a developer's machine runs); what tests use.
    pub fn for_services(
        catalog_url: impl Into<String>,
        order_url: impl Into<String>,
        listen_addr: SocketAddr,
    ) -> Self {
        let mut config = Self::parse_from(["gateway"]);
        config.catalog_url = catalog_url.into();
        config.order_url = order_url.into();
        config.listen_addr = listen_addr;
        config.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.dev_mode = true;
        config
    }

    /// The configured secrets; in development mode, the development one when
    /// none is set. Entries are trimmed (so `a, b` works); an empty entry is an
    /// error, never "no check". Outside development mode a missing, short or
    /// placeholder secret is refused.
    pub fn webhook_secrets(&self) -> Result<WebhookSecrets, ConfigError> {
        let Some(raw) = &self.webhook_secret else {
            if !self.dev_mode {
                return Err(ConfigError::MissingWebhookSecret);
            }
            return Ok(WebhookSecrets {
                secrets: vec![DEVELOPMENT_WEBHOOK_SECRET.as_bytes().to_vec()],
                is_development: true,
            });
        };
        let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
        if entries.iter().any(|secret| secret.is_empty()) {
            return Err(ConfigError::EmptyWebhookSecret);
        }
        if !self.dev_mode {
            for (index, secret) in entries.iter().enumerate() {
                let entry = index + 1;
                if is_placeholder(secret) {
                    return Err(ConfigError::PlaceholderWebhookSecret { entry });
                }
                if secret.len() < MIN_WEBHOOK_SECRET_BYTES {
                    return Err(ConfigError::ShortWebhookSecret { entry });
                }
            }
        }
        Ok(WebhookSecrets {
            secrets: entries
                .iter()
                .map(|secret| secret.as_bytes().to_vec())
                .collect(),
            is_development: false,
        })
    }

    /// Who may call the operations that need a right: API_KEYS when set;
    /// otherwise anyone if OPEN_WRITES or development mode says so, and no
    /// start at all if neither does.
    pub fn write_access(&self) -> Result<WriteAccess, ConfigError> {
        match self.api_keys()? {
            Some(keys) => Ok(WriteAccess::Keys(keys)),
            None if self.open_writes || self.dev_mode => Ok(WriteAccess::Open),
            None => Err(ConfigError::MissingApiKeys),
        }
    }

    pub fn grpc_timeout(&self) -> Duration {
        self.grpc_timeout
    }

    pub fn grpc_connect_timeout(&self) -> Duration {
        self.grpc_connect_timeout
    }

    pub fn webhook_tolerance(&self) -> Duration {
        self.webhook_tolerance
    }

    /// The configured API keys; `None` when API_KEYS is unset. Set but empty
    /// or malformed is an error, never "off"; so is, outside development
    /// mode, a key that is a placeholder.
    pub fn api_keys(&self) -> Result<Option<ApiKeys>, ApiKeysError> {
        let Some(raw) = self.api_keys.as_deref() else {
            return Ok(None);
        };
        let keys = ApiKeys::parse(raw)?;
        if !self.dev_mode
            && let Some(entry) = ApiKeys::placeholder_entry(raw)
        {
            return Err(ApiKeysError::Placeholder { entry });
        }
        Ok(Some(keys))
    }
}

// The webhook secrets must never reach a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("dev_mode", &self.dev_mode)
            .field("open_writes", &self.open_writes)
            .field("listen_addr", &self.listen_addr)
            .field("admin_addr", &self.admin_addr)
            .field("catalog_url", &self.catalog_url)
            .field("order_url", &self.order_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_require_timestamp", &self.webhook_require_timestamp)
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("grpc_timeout", &self.grpc_timeout)
            .field("grpc_connect_timeout", &self.grpc_connect_timeout)
            .field("grpc_balance", &self.grpc_balance)
            .field("grpc_refresh_interval", &self.grpc_refresh_interval)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("webhook_body_limit_bytes", &self.webhook_body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("api_keys", &self.api_keys.as_ref().map(|_| "<redacted>"))
            .field("product_cache_capacity", &self.product_cache_capacity)
            .field("product_cache_ttl", &self.product_cache_ttl)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("drain_delay", &self.drain.delay())
            .field("currency", &self.currency)
            .field("bounds", &self.bounds)
            .field("grpc_tls", &self.grpc_tls)
            .finish()
    }
}

#[cfg(test)]
mod tests;
