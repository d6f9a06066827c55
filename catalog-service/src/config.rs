//! Settings, from flags or environment variables, with defaults that work on a
//! developer machine with local PostgreSQL. The catalog has no setting of its
//! own: all are `platform::settings::ServiceSettings` (database URL and
//! addresses with the catalog's defaults, given in `lib.rs`), flattened here.
//! `Config::parse_with_defaults`, `for_database` and `db_settings` come with
//! `platform::grpc_service!` (in `lib.rs`).

use clap::Parser;
use platform::settings::ServiceSettings;

#[derive(Clone, Debug, Parser)]
#[command(
    name = "catalog-service",
    version,
    about = "Products and inventory over gRPC"
)]
pub struct Config {
    // Database, addresses, probe, migrations, pool, drain, currency, paging
    // bound, TLS (the catalog calls no service: GRPC_TLS_* is only what
    // `--probe` presents).
    #[command(flatten)]
    pub service: ServiceSettings,
}
