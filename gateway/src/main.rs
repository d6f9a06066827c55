//! The `gateway` binary: read config, set up tracing, serve until SIGTERM /
//! Ctrl-C.

use clap::Parser;
use gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    proto::runtime::init_tracing();
    let config = Config::parse();
    tracing::info!(?config, "starting gateway");
    let app = Application::build(config).await?;
    app.run_until(proto::runtime::shutdown_signal()).await
}
