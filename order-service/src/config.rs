//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine with local PostgreSQL and a catalog on its default port.
//! The settings every service shares (database URL and addresses among them,
//! with this service's defaults, given in `lib.rs`) are
//! `platform::settings::ServiceSettings`, flattened here.
//! `Config::parse_with_defaults`, `for_database` and `db_settings` come with
//! `platform::grpc_service!` (in `lib.rs`).

use std::time::Duration;

use clap::Parser;
use platform::settings::ServiceSettings;

#[derive(Clone, Debug, Parser)]
#[command(
    name = "order-service",
    version,
    about = "Orders, payments and the reservation saga over gRPC"
)]
pub struct Config {
    /// gRPC URL of the catalog service. The service starts even when the
    /// catalog is down: the connection is made on first use.
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:50051")]
    pub catalog_url: String,

    /// Spread catalog calls over every address CATALOG_URL resolves to (a
    /// comma-separated list of URLs, or a headless Kubernetes Service name
    /// that resolves to every ready pod), re-resolved every CATALOG_REFRESH_MS.
    /// Off: one lazily connected endpoint.
    #[arg(long, env = "CATALOG_BALANCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub catalog_balance: bool,

    /// How often the catalog's addresses are re-resolved and probed (ms).
    #[arg(long, env = "CATALOG_REFRESH_MS", default_value_t = 5_000)]
    pub catalog_refresh_ms: u64,

    /// Deadline of every call to the catalog, in milliseconds.
    #[arg(long, env = "CATALOG_TIMEOUT_MS", default_value_t = 3000)]
    pub catalog_timeout_ms: u64,

    /// How long connecting to the catalog may take, in milliseconds.
    #[arg(long, env = "CATALOG_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub catalog_connect_timeout_ms: u64,

    /// Seconds between two reconciler passes (one also runs at start).
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 30)]
    pub reconcile_interval_secs: u64,

    /// Age, in seconds, from which the reconciler treats an order still in the
    /// saga's `reserving` state as abandoned. Must exceed the longest saga
    /// (two catalog deadlines), or the reconciler would race live requests.
    #[arg(long, env = "RESERVING_GRACE_SECS", default_value_t = 60)]
    pub reserving_grace_secs: u64,

    /// Days a payment event id is remembered (a repeated delivery within it is
    /// a no-op); the reconciler forgets older ones. Keep it above the longest
    /// a payment processor retries a delivery.
    #[arg(long, env = "PAYMENT_EVENT_RETENTION_DAYS",
          default_value_t = crate::app::reconciler::DEFAULT_PAYMENT_EVENT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub payment_event_retention_days: u64,

    /// Cancel an order still pending and not paid this long after it was
    /// created (reason `payment_timeout`; its stock goes back), e.g. `30m`,
    /// `2h`, `90s`. Checked on each reconciler pass, so an order expires up to
    /// RECONCILE_INTERVAL_SECS late. Unset (the default): orders wait for
    /// payment for ever, as in the original contract.
    #[arg(long, env = "PENDING_PAYMENT_TIMEOUT", value_parser = parse_payment_timeout)]
    pub pending_payment_timeout: Option<Duration>,

    /// Hours an order event is kept for WatchOrderEvents consumers; older ones
    /// are deleted, and a consumer that resumes from before them is told so
    /// (OUT_OF_RANGE). Keep it above the longest a consumer may be down.
    #[arg(long, env = "ORDER_EVENT_RETENTION_HOURS",
          default_value_t = crate::app::reconciler::DEFAULT_ORDER_EVENT_RETENTION_HOURS,
          value_parser = clap::value_parser!(u64).range(1..=87_600))]
    pub order_event_retention_hours: u64,

    /// First retry delay of an undelivered outbox row, in milliseconds;
    /// doubles with each failure, up to five minutes.
    #[arg(long, env = "OUTBOX_RETRY_BASE_MS", default_value_t = 1000)]
    pub outbox_retry_base_ms: u64,

    // ---- Resource bounds ----------------------------------------------------
    /// Most lines one order may have (counted as sent); more is refused with
    /// INVALID_ARGUMENT on `items` (422 on `products` through the gateway).
    #[arg(long, env = "MAX_ORDER_LINES",
          default_value_t = crate::domain::new_order::DEFAULT_MAX_ORDER_LINES as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_order_lines: u32,

    // Database, addresses, probe, migrations, pool, drain, currency, paging
    // bound, and TLS: the
    // gRPC server's (TLS_*) and the catalog channel's (GRPC_TLS_*; CATALOG_URL
    // then https://), which is also what `--probe` presents to this service.
    #[command(flatten)]
    pub service: ServiceSettings,
}

impl Config {
    pub fn catalog_timeout(&self) -> Duration {
        Duration::from_millis(self.catalog_timeout_ms)
    }

    pub fn catalog_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.catalog_connect_timeout_ms)
    }

    pub fn reconcile_interval(&self) -> Duration {
        // A zero interval would spin; one second is the floor.
        Duration::from_secs(self.reconcile_interval_secs.max(1))
    }

    pub fn reserving_grace(&self) -> Duration {
        Duration::from_secs(self.reserving_grace_secs)
    }

    pub fn payment_event_retention(&self) -> Duration {
        Duration::from_secs(self.payment_event_retention_days * 24 * 60 * 60)
    }

    pub fn outbox_retry_base(&self) -> Duration {
        Duration::from_millis(self.outbox_retry_base_ms)
    }

    pub fn order_event_retention(&self) -> Duration {
        Duration::from_secs(self.order_event_retention_hours * 60 * 60)
    }
}

/// PENDING_PAYMENT_TIMEOUT: a duration of at least one second (`30m`, `1h`).
fn parse_payment_timeout(value: &str) -> Result<Duration, String> {
    let timeout = platform::settings::parse_duration(value)?;
    if timeout < Duration::from_secs(1) {
        return Err("must be at least 1s (unset it to never expire orders)".into());
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payment_timeout_is_off_unless_set_and_reads_human_durations() {
        let config = Config::parse_with_defaults(["order-service"]);
        assert_eq!(config.pending_payment_timeout, None);
        let config =
            Config::parse_with_defaults(["order-service", "--pending-payment-timeout", "30m"]);
        assert_eq!(
            config.pending_payment_timeout,
            Some(Duration::from_secs(30 * 60))
        );
        assert_eq!(
            parse_payment_timeout("1h 30m"),
            Ok(Duration::from_secs(90 * 60))
        );
        for bad in ["0s", "500ms"] {
            let error = parse_payment_timeout(bad).unwrap_err();
            assert!(error.contains("at least 1s"), "{bad}: {error}");
        }
        let error = parse_payment_timeout("soon").unwrap_err();
        assert!(error.contains("such as 500ms, 3s, 30m"), "{error}");
        let error = parse_payment_timeout("90").unwrap_err();
        assert!(error.contains("no unit"), "{error}");
    }

    #[test]
    fn debug_output_hides_the_database_url() {
        let config = Config::for_database(
            "postgres://user:secret@db/orders",
            "127.0.0.1:0".parse().unwrap(),
        );
        assert!(!format!("{config:?}").contains("secret"));
    }
}
