//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine where the two services run on their default ports.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

/// Used when `WEBHOOK_SECRET` is not set, so a developer machine works out of
/// the box; the gateway warns about it at start.
pub const DEVELOPMENT_WEBHOOK_SECRET: &str = "development-webhook-secret-change-me";

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

    /// Payment webhook HMAC secret(s), comma-separated: every one is accepted,
    /// so a secret can be rotated without downtime. Unset: a development secret
    /// (with a warning). Set but empty: the gateway refuses to start.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Refuse the original, untimestamped `X-Signature: <hex>` form, which a
    /// captured request can be replayed with forever.
    #[arg(long, env = "WEBHOOK_REQUIRE_TIMESTAMP", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_require_timestamp: bool,

    /// How far (seconds) a timestamped signature may be from the gateway's clock.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,

    /// Deadline of every gRPC call, in milliseconds.
    #[arg(long, env = "GRPC_TIMEOUT_MS", default_value_t = 5_000)]
    pub grpc_timeout_ms: u64,

    /// How long to wait for a TCP connection to a service, in milliseconds.
    #[arg(long, env = "GRPC_CONNECT_TIMEOUT_MS", default_value_t = 2_000)]
    pub grpc_connect_timeout_ms: u64,

    /// Spread calls over every address each service URL resolves to (a
    /// headless Kubernetes Service: every ready pod), re-resolved every
    /// GRPC_REFRESH_MS. Off: one lazily connected endpoint per service.
    #[arg(long, env = "GRPC_BALANCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub grpc_balance: bool,

    /// How often balanced channels re-resolve and probe their addresses (ms).
    #[arg(long, env = "GRPC_REFRESH_MS", default_value_t = 5_000)]
    pub grpc_refresh_ms: u64,

    /// Largest request body (bytes) on the API routes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Largest payment webhook body (bytes).
    #[arg(long, env = "WEBHOOK_BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub webhook_body_limit_bytes: usize,

    /// Upper bound on one HTTP request, body upload included (seconds); past
    /// it the client gets 408. Calls to the services have their own, shorter
    /// deadline (GRPC_TIMEOUT_MS).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Most requests served at once by this process; past it a request is
    /// answered at once with 503 and `Retry-After` rather than queued.
    /// `/health`, `/ready` and `/metrics` are never refused.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,

    /// How long a client may take to send a request's headers (seconds);
    /// past it the connection is closed (slowloris). Bodies are bounded by
    /// REQUEST_TIMEOUT_SECS.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// API keys for product writes and order status changes, with their
    /// rights: `name=key:right[,right]` entries separated by `;` (or new
    /// lines); rights are `products` and `orders`. Unset: those operations are
    /// open to anyone (with a warning at start). See `crate::auth`.
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// Products kept by the read cache of `GET /api/products/{id}` (see
    /// `crate::product_cache`); 0 turns the cache off. The cache is used only
    /// while the catalog's change feed is live, which drops every changed
    /// product from it.
    #[arg(long, env = "PRODUCT_CACHE_CAPACITY", default_value_t = 10_000)]
    pub product_cache_capacity: usize,

    /// Longest time a product stays in the read cache (ms), changes or not.
    #[arg(long, env = "PRODUCT_CACHE_TTL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub product_cache_ttl_ms: u64,

    /// How long in-flight requests may run after SIGTERM before the process exits.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// ISO 4217 code of the platform's single currency.
    #[arg(long, env = "CURRENCY", default_value = proto::money::DEFAULT_CURRENCY)]
    pub currency: String,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "WEBHOOK_SECRET is set but empty (or has an empty entry between commas): \
         refusing to start, since anyone could sign webhooks; set a real secret or unset it"
    )]
    EmptyWebhookSecret,
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
    /// Defaults for everything but the two services and the address; what tests use.
    pub fn for_services(
        catalog_url: impl Into<String>,
        order_url: impl Into<String>,
        listen_addr: SocketAddr,
    ) -> Self {
        let mut config = Self::parse_from(["gateway"]);
        config.catalog_url = catalog_url.into();
        config.order_url = order_url.into();
        config.listen_addr = listen_addr;
        config
    }

    /// The configured secrets, or the development one when none is set.
    /// Entries are trimmed (so `a, b` works); an empty entry is an error, never
    /// "no check".
    pub fn webhook_secrets(&self) -> Result<WebhookSecrets, ConfigError> {
        let Some(raw) = &self.webhook_secret else {
            return Ok(WebhookSecrets {
                secrets: vec![DEVELOPMENT_WEBHOOK_SECRET.as_bytes().to_vec()],
                is_development: true,
            });
        };
        let secrets: Vec<Vec<u8>> = raw
            .split(',')
            .map(|secret| secret.trim().as_bytes().to_vec())
            .collect();
        if secrets.iter().any(Vec::is_empty) {
            return Err(ConfigError::EmptyWebhookSecret);
        }
        Ok(WebhookSecrets {
            secrets,
            is_development: false,
        })
    }

    pub fn grpc_timeout(&self) -> Duration {
        Duration::from_millis(self.grpc_timeout_ms)
    }

    pub fn grpc_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.grpc_connect_timeout_ms)
    }

    pub fn webhook_tolerance(&self) -> Duration {
        Duration::from_secs(self.webhook_tolerance_secs)
    }

    /// The configured API keys; `None` when API_KEYS is unset (access
    /// control off). Set but empty or malformed is an error, never "off".
    pub fn api_keys(&self) -> Result<Option<crate::auth::ApiKeys>, crate::auth::ApiKeysError> {
        self.api_keys
            .as_deref()
            .map(crate::auth::ApiKeys::parse)
            .transpose()
    }
}

// The webhook secrets must never reach a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("catalog_url", &self.catalog_url)
            .field("order_url", &self.order_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_require_timestamp", &self.webhook_require_timestamp)
            .field("webhook_tolerance_secs", &self.webhook_tolerance_secs)
            .field("grpc_timeout_ms", &self.grpc_timeout_ms)
            .field("grpc_connect_timeout_ms", &self.grpc_connect_timeout_ms)
            .field("grpc_balance", &self.grpc_balance)
            .field("grpc_refresh_ms", &self.grpc_refresh_ms)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("webhook_body_limit_bytes", &self.webhook_body_limit_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("api_keys", &self.api_keys.as_ref().map(|_| "<redacted>"))
            .field("product_cache_capacity", &self.product_cache_capacity)
            .field("product_cache_ttl_ms", &self.product_cache_ttl_ms)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("currency", &self.currency)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret(secret: Option<&str>) -> Config {
        let mut config = Config::parse_from(["gateway"]);
        config.webhook_secret = secret.map(str::to_owned);
        config
    }

    #[test]
    fn no_secret_means_the_development_secret() {
        let secrets = with_secret(None).webhook_secrets().unwrap();
        assert!(secrets.is_development);
        assert_eq!(secrets.as_slices().count(), 1);
    }

    #[test]
    fn an_empty_secret_is_refused() {
        for raw in ["", "  ", "a,,b", "a,", ","] {
            assert_eq!(
                with_secret(Some(raw)).webhook_secrets().unwrap_err(),
                ConfigError::EmptyWebhookSecret,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn several_secrets_are_all_kept() {
        let secrets = with_secret(Some("old-secret, new-secret"))
            .webhook_secrets()
            .unwrap();
        let all: Vec<&[u8]> = secrets.as_slices().collect();
        assert_eq!(
            all,
            vec![b"old-secret".as_slice(), b"new-secret".as_slice()]
        );
        assert!(!secrets.is_development);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = with_secret(Some("s3cr3t-value"));
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
        let secrets = config.webhook_secrets().unwrap();
        assert!(!format!("{secrets:?}").contains("s3cr3t-value"));
        let mut config = with_secret(None);
        config.api_keys = Some("admin=an-api-key-0123456789:products".into());
        assert!(!format!("{config:?}").contains("an-api-key-0123456789"));
        let keys = config.api_keys().unwrap().unwrap();
        assert!(!format!("{keys:?}").contains("an-api-key-0123456789"));
    }

    #[test]
    fn access_control_is_off_unless_configured() {
        assert!(with_secret(None).api_keys().unwrap().is_none());
        let mut config = with_secret(None);
        config.api_keys = Some(String::new());
        assert!(config.api_keys().is_err());
    }
}
