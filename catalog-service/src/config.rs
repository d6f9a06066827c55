//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine with local PostgreSQL.

use std::net::SocketAddr;

use clap::Parser;
use platform::db::DbSettings;

#[derive(Clone, Parser)]
#[command(
    name = "catalog-service",
    version,
    about = "Products and inventory over gRPC"
)]
pub struct Config {
    /// PostgreSQL URL of the catalog database (created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/catalog",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// Address of the admin HTTP server: `/metrics`, `/health`, `/ready`.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:9101")]
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

    // ---- Resource bounds ----------------------------------------------------
    /// Deepest row a ListProducts page may start at ((page - 1) x page_size);
    /// deeper pages are refused on `page`. `total` is exact up to this plus
    /// 100 matching products, an estimate past that (see `proto::paging`).
    #[arg(long, env = "MAX_LIST_OFFSET", default_value_t = proto::paging::DEFAULT_MAX_LIST_OFFSET)]
    pub max_list_offset: u32,

    // ---- Mutual TLS (see `platform::tls`) ----------------------------------------
    // The gRPC server's certificate, key and client CA (TLS_CERT_FILE,
    // TLS_KEY_FILE, TLS_CLIENT_CA_FILE); all unset: plaintext.
    #[command(flatten)]
    pub tls: platform::tls::ServerTlsSettings,

    // What `--probe` presents when the server speaks TLS (GRPC_TLS_CA_FILE,
    // GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE); the catalog calls no service.
    #[command(flatten)]
    pub grpc_tls: platform::tls::ClientTlsSettings,
}

impl Config {
    /// Defaults for everything but the database and address; what tests use.
    pub fn for_database(database_url: impl Into<String>, listen_addr: SocketAddr) -> Self {
        let mut config = Self::parse_from(["catalog-service"]);
        config.database_url = database_url.into();
        config.listen_addr = listen_addr;
        config.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    pub fn db_settings(&self) -> DbSettings {
        DbSettings {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections,
            create_if_missing: self.run_migrations,
            migrate: self.run_migrations,
        }
    }
}

// The database URL may carry a password: keep it out of any log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &"<redacted>")
            .field("listen_addr", &self.listen_addr)
            .field("admin_addr", &self.admin_addr)
            .field("health_check_interval_ms", &self.health_check_interval_ms)
            .field("db_max_connections", &self.db_max_connections)
            .field("run_migrations", &self.run_migrations)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("currency", &self.currency)
            .field("max_list_offset", &self.max_list_offset)
            .field("tls", &self.tls)
            .field("grpc_tls", &self.grpc_tls)
            .finish()
    }
}
