//! The `gateway` binary: read config, set up telemetry, serve until SIGTERM /
//! Ctrl-C. With `--probe`, check a running instance's health instead.

use std::time::Duration;

use clap::Parser;
use gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let renamed = [platform::renamed::EVERY_PROCESS, gateway::config::RENAMED].concat();
    let (args, renamed) = platform::renamed::apply_to_process(&renamed);
    let config = Config::parse_from(args);
    if config.probe {
        let healthy =
            platform::runtime::http_probe(config.listen_addr, "/health", Duration::from_secs(2))
                .await;
        std::process::exit(if healthy { 0 } else { 1 });
    }
    let telemetry = platform::telemetry::init("gateway")?;
    platform::renamed::warn(&renamed);
    tracing::info!(?config, "starting gateway");
    let app = Application::build(config).await?;
    let result = app.run_until(platform::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
