//! The `catalog-service` binary: read config, set up tracing, serve until
//! SIGTERM / Ctrl-C.

use catalog_service::{Application, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    proto::runtime::init_tracing();
    let config = Config::parse();
    tracing::info!(?config, "starting catalog-service");
    let app = Application::build(config).await?;
    app.run_until(proto::runtime::shutdown_signal()).await
}
