//! The `order-service` binary: read config, set up telemetry, serve until
//! SIGTERM / Ctrl-C. With `--probe`, check a running instance's health
//! instead; with `--migrate-only`, migrate the database and exit.

use std::time::Duration;

use clap::Parser;
use order_service::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.probe {
        let serving = proto::grpc::probe(config.listen_addr, Duration::from_secs(2)).await;
        std::process::exit(if serving { 0 } else { 1 });
    }
    let telemetry = proto::telemetry::init("order-service");
    if config.migrate_only {
        proto::db::migrate_only(&config.db_settings(), &order_service::MIGRATOR).await?;
        return Ok(());
    }
    tracing::info!(?config, "starting order-service");
    let app = Application::build(config).await?;
    let result = app.run_until(proto::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
