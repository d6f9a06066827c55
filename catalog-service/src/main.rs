//! The `catalog-service` binary: read config, set up telemetry, serve until
//! SIGTERM / Ctrl-C. With `--probe`, check a running instance's health instead
//! (over TLS when the service is configured for it).

use std::time::Duration;

use catalog_service::{Application, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.probe {
        // TLS exactly when the server speaks it (TLS_* set), with the
        // GRPC_TLS_* client certificate; a setting that cannot work is an
        // error (exit 1, with the reason), not a silent failed probe.
        let tls = platform::tls::probe_tls(&config.tls, &config.grpc_tls)?;
        let serving =
            platform::tls::probe(config.listen_addr, Duration::from_secs(2), tls.as_ref()).await;
        std::process::exit(if serving { 0 } else { 1 });
    }
    let telemetry = platform::telemetry::init("catalog-service");
    if config.migrate_only {
        platform::db::migrate_only(&config.db_settings(), &catalog_service::MIGRATOR).await?;
        return Ok(());
    }
    tracing::info!(?config, "starting catalog-service");
    let app = Application::build(config).await?;
    let result = app.run_until(platform::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
