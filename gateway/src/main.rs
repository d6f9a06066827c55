//! The `gateway` binary: read config, set up telemetry, serve until SIGTERM /
//! Ctrl-C.

use clap::Parser;
use gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = proto::telemetry::init("gateway");
    tracing::info!(?config, "starting gateway");
    let app = Application::build(config).await?;
    let result = app.run_until(proto::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
