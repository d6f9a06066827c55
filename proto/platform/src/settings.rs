//! The settings both gRPC services share, as one clap argument group that
//! each service's `Config` flattens: one spelling and one help text per
//! setting, whichever service reads it. The three whose defaults differ per
//! service (database URL, gRPC and admin addresses) take them from the
//! service's [`Defaults`] (see `crate::service::parse_from`). What only one
//! service has (the catalog channel, the order bounds) stays in its `Config`.

use std::{fmt, net::SocketAddr, time::Duration};

use crate::tls::{ClientTlsSettings, ServerTlsSettings};

/// A duration setting: a number with its unit, as `humantime` reads it
/// (`500ms`, `3s`, `30m`, `1h 30m`). A bare number is refused: its unit
/// would be a guess. The one parser of every duration setting, so all are
/// written the same way.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "'{value}' has no unit; write it with one, such as {value}ms or {value}s"
        ));
    }
    humantime::parse_duration(value)
        .map_err(|error| format!("{error}; write a duration such as 500ms, 3s, 30m or 1h"))
}

/// A PostgreSQL URL. It may hold a password, so its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A service's defaults for the settings that differ per service.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub database_url: &'static str,
    pub listen_addr: &'static str,
    pub admin_addr: &'static str,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServiceSettings {
    /// PostgreSQL URL of the service's database (created if missing).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: DatabaseUrl,

    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: SocketAddr,

    /// Address of the admin HTTP server: `/metrics`, `/health`, `/ready`.
    #[arg(long, env = "ADMIN_ADDR")]
    pub admin_addr: SocketAddr,

    /// Check the health of the service running at LISTEN_ADDR and exit 0 if
    /// it is SERVING, 1 otherwise (for container health checks).
    #[arg(long)]
    pub probe: bool,

    /// Create the database if missing, apply pending migrations, and exit
    /// (e.g. as a Kubernetes init container, with RUN_MIGRATIONS=false on the
    /// serving container).
    #[arg(long)]
    pub migrate_only: bool,

    /// How often the database is pinged to keep gRPC health up to date.
    /// (Was HEALTH_CHECK_INTERVAL_MS.)
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub health_check_interval: Duration,

    /// Largest number of database connections this process opens.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Apply migrations (and create the database) at start. Turn off when
    /// operators migrate separately.
    #[arg(long, env = "RUN_MIGRATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_migrations: bool,

    /// How long in-flight calls may run after SIGTERM (and the drain delay)
    /// before the process exits. (Was SHUTDOWN_GRACE_SECS.)
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    // DRAIN_DELAY: after SIGTERM, serve on while
    // NOT_SERVING before stopping to accept (see `crate::drain`).
    #[command(flatten)]
    pub drain: crate::drain::DrainSettings,

    /// ISO 4217 code of the platform's single currency.
    #[arg(long, env = "CURRENCY", default_value = proto::money::DEFAULT_CURRENCY)]
    pub currency: String,

    /// Deepest row a list page may start at ((page - 1) x page_size); deeper
    /// pages are refused on `page`. `total` is exact up to this plus 100
    /// matching rows, an estimate past that (see `proto::paging`).
    #[arg(long, env = "MAX_LIST_OFFSET", default_value_t = proto::paging::DEFAULT_MAX_LIST_OFFSET)]
    pub max_list_offset: u32,

    // The gRPC server's certificate, key and client CA (TLS_CERT_FILE,
    // TLS_KEY_FILE, TLS_CLIENT_CA_FILE); all unset: plaintext.
    #[command(flatten)]
    pub tls: ServerTlsSettings,

    // The client side (GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE,
    // GRPC_TLS_KEY_FILE): what `--probe` presents to this service, and the
    // channel to the services this one calls.
    #[command(flatten)]
    pub grpc_tls: ClientTlsSettings,
}

impl ServiceSettings {
    pub fn health_check_interval(&self) -> Duration {
        self.health_check_interval
    }

    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The database settings.
    #[cfg(feature = "db")]
    pub fn database(&self) -> crate::db::DbSettings {
        crate::db::DbSettings {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections,
            create_if_missing: self.run_migrations,
            migrate: self.run_migrations,
        }
    }
}
