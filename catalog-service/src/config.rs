//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine with local PostgreSQL. The settings every service shares
//! are `platform::settings::ServiceSettings`, flattened here.

use std::net::SocketAddr;

use clap::Parser;
use platform::{db::DbSettings, settings::ServiceSettings};

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

    // Probe, migrations, pool, drain, currency, paging bound, TLS (the
    // catalog calls no service: GRPC_TLS_* is only what `--probe` presents).
    #[command(flatten)]
    pub service: ServiceSettings,
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
        self.service.database(&self.database_url)
    }
}

// The database URL may carry a password: keep it out of any log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &"<redacted>")
            .field("listen_addr", &self.listen_addr)
            .field("admin_addr", &self.admin_addr)
            .field("service", &self.service)
            .finish()
    }
}
