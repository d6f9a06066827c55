//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine with local PostgreSQL and a catalog on its default port.
//! The settings every service shares (database URL and addresses among them,
//! with this service's defaults, given in `lib.rs`) are
//! `platform::settings::ServiceSettings`, flattened here.
//! `Config::parse_with_defaults`, `for_database` and `db_settings` come with
//! `platform::grpc_service!` (in `lib.rs`).

use std::time::Duration;

use clap::Parser;
use platform::{
    renamed::{Renamed, Unit},
    settings::{ServiceSettings, parse_duration},
};

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
    /// that resolves to every ready pod), re-resolved every
    /// GRPC_REFRESH_INTERVAL. Off: one lazily connected endpoint. (Was
    /// CATALOG_BALANCE.)
    #[arg(long, env = "GRPC_BALANCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub grpc_balance: bool,

    /// How often the catalog's addresses are re-resolved and probed. (Was
    /// CATALOG_REFRESH_MS.)
    #[arg(long, env = "GRPC_REFRESH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub grpc_refresh_interval: Duration,

    /// Deadline of every call to the catalog. (Was CATALOG_TIMEOUT_MS.)
    #[arg(long, env = "GRPC_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub grpc_timeout: Duration,

    /// How long connecting to the catalog may take. (Was
    /// CATALOG_CONNECT_TIMEOUT_MS.)
    #[arg(long, env = "GRPC_CONNECT_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub grpc_connect_timeout: Duration,

    /// Time between two reconciler passes (one also runs at start); at
    /// least 1s. (Was RECONCILE_INTERVAL_SECS.)
    #[arg(long, env = "RECONCILE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub reconcile_interval: Duration,

    /// Age from which the reconciler treats an order still in the saga's
    /// `reserving` state as abandoned. Must exceed the longest saga (two
    /// catalog deadlines), or the reconciler would race live requests. (Was
    /// RESERVING_GRACE_SECS.)
    #[arg(long, env = "RESERVING_GRACE", default_value = "60s", value_parser = parse_duration)]
    pub reserving_grace: Duration,

    /// How long a payment event id is remembered (a repeated delivery within
    /// it is a no-op), 1 to 3650 days; the reconciler forgets older ones.
    /// Keep it above the longest a payment processor retries a delivery.
    /// (Was PAYMENT_EVENT_RETENTION_DAYS.)
    #[arg(long, env = "PAYMENT_EVENT_RETENTION", default_value = "30d",
          value_parser = parse_payment_event_retention)]
    pub payment_event_retention: Duration,

    /// Cancel an order still pending and not paid this long after it was
    /// created (reason `payment_timeout`; its stock goes back), e.g. `30m`,
    /// `2h`, `90s`. Checked on each reconciler pass, so an order expires up to
    /// RECONCILE_INTERVAL late. Unset (the default): orders wait for payment
    /// for ever, as in the original contract.
    #[arg(long, env = "PENDING_PAYMENT_TIMEOUT", value_parser = parse_payment_timeout)]
    pub pending_payment_timeout: Option<Duration>,

    /// How long an order event is kept for WatchOrderEvents consumers, at
    /// least 1h; older ones are deleted, and a consumer that resumes from
    /// before them is told so (OUT_OF_RANGE). Keep it above the longest a
    /// consumer may be down.
    #[arg(long, env = "ORDER_EVENT_RETENTION", default_value = "7d",
          value_parser = parse_order_event_retention)]
    pub order_event_retention: Duration,

    /// First retry delay of an undelivered outbox row; doubles with each
    /// failure, up to five minutes. (Was OUTBOX_RETRY_BASE_MS.)
    #[arg(long, env = "OUTBOX_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub outbox_retry_base: Duration,

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

/// The order service's renamed settings: the old names are still read, with
/// a warning (see `platform::renamed`).
pub const RENAMED: &[Renamed] = &[
    Renamed::new(
        "CATALOG_BALANCE",
        "GRPC_BALANCE",
        "grpc-balance",
        Unit::Same,
    ),
    Renamed::new(
        "CATALOG_REFRESH_MS",
        "GRPC_REFRESH_INTERVAL",
        "grpc-refresh-interval",
        Unit::Millis,
    ),
    Renamed::new(
        "CATALOG_TIMEOUT_MS",
        "GRPC_TIMEOUT",
        "grpc-timeout",
        Unit::Millis,
    ),
    Renamed::new(
        "CATALOG_CONNECT_TIMEOUT_MS",
        "GRPC_CONNECT_TIMEOUT",
        "grpc-connect-timeout",
        Unit::Millis,
    ),
    Renamed::new(
        "RECONCILE_INTERVAL_SECS",
        "RECONCILE_INTERVAL",
        "reconcile-interval",
        Unit::Secs,
    ),
    Renamed::new(
        "RESERVING_GRACE_SECS",
        "RESERVING_GRACE",
        "reserving-grace",
        Unit::Secs,
    ),
    Renamed::new(
        "PAYMENT_EVENT_RETENTION_DAYS",
        "PAYMENT_EVENT_RETENTION",
        "payment-event-retention",
        Unit::Days,
    ),
    Renamed::new(
        "OUTBOX_RETRY_BASE_MS",
        "OUTBOX_RETRY_BASE",
        "outbox-retry-base",
        Unit::Millis,
    ),
];

impl Config {
    pub fn reconcile_interval(&self) -> Duration {
        // A zero interval would spin; one second is the floor.
        self.reconcile_interval.max(Duration::from_secs(1))
    }
}

/// A duration of at least `min` and at most `max`.
fn bounded(value: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration < min || duration > max {
        return Err(format!(
            "must be from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(duration)
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn parse_payment_event_retention(value: &str) -> Result<Duration, String> {
    bounded(value, DAY, DAY * 3650)
}

fn parse_order_event_retention(value: &str) -> Result<Duration, String> {
    bounded(value, Duration::from_secs(60 * 60), DAY * 3650)
}

/// PENDING_PAYMENT_TIMEOUT: a duration of at least one second (`30m`, `1h`).
fn parse_payment_timeout(value: &str) -> Result<Duration, String> {
    let timeout = parse_duration(value)?;
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
