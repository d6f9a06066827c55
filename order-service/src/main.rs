//! The `order-service` binary: serve (and reconcile) until SIGTERM / Ctrl-C;
//! with `--probe`, check a running instance's health instead (over TLS when
//! the service speaks it); with `--migrate-only`, migrate the database and
//! exit. The steps are the same for every service: `platform::service::main`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<order_service::Application>().await
}
