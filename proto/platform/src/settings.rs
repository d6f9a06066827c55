//! The settings both gRPC services share, as one clap argument group that
//! each service's `Config` flattens: one spelling, one default and one help
//! text per setting, whichever service reads it. What differs between the
//! services (the database URL's default, the ports, the catalog channel, the
//! order-only bounds) stays in the service's own `Config`.

use std::time::Duration;

use crate::tls::{ClientTlsSettings, ServerTlsSettings};

#[derive(Clone, Debug, clap::Args)]
pub struct ServiceSettings {
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
    #[arg(long, env = "HEALTH_CHECK_INTERVAL_MS", default_value_t = 2000)]
    pub health_check_interval_ms: u64,

    /// Largest number of database connections this process opens.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Apply migrations (and create the database) at start. Turn off when
    /// operators migrate separately.
    #[arg(long, env = "RUN_MIGRATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_migrations: bool,

    /// How long in-flight calls may run after SIGTERM before the process exits.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

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
        Duration::from_millis(self.health_check_interval_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The database settings for `url` (which may hold a password: it is
    /// never printed).
    #[cfg(feature = "db")]
    pub fn database(&self, url: &str) -> crate::db::DbSettings {
        crate::db::DbSettings {
            url: url.to_owned(),
            max_connections: self.db_max_connections,
            create_if_missing: self.run_migrations,
            migrate: self.run_migrations,
        }
    }
}
