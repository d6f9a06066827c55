//! The `catalog-service` binary: read config, set up telemetry, serve until
//! SIGTERM / Ctrl-C. With `--probe`, check a running instance's health instead.

use std::time::Duration;

use catalog_service::{Application, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.probe {
        let serving = proto::grpc::probe(config.listen_addr, Duration::from_secs(2)).await;
        std::process::exit(if serving { 0 } else { 1 });
    }
    let telemetry = proto::telemetry::init("catalog-service");
    if config.migrate_only {
        proto::db::migrate_only(&config.db_settings(), &catalog_service::MIGRATOR).await?;
        return Ok(());
    }
    tracing::info!(?config, "starting catalog-service");
    let app = Application::build(config).await?;
    let result = app.run_until(proto::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
