//! The life of a gRPC service process, the same for every service: parse the
//! settings, answer `--probe` (a container health check) or `--migrate-only`
//! (an init container), or else set up telemetry, build the service and serve
//! until SIGTERM / Ctrl-C. A service's `main` is one call to [`main`].

use std::{fmt, future::Future, net::SocketAddr, time::Duration};

use clap::Parser;

use crate::settings::ServiceSettings;

/// A gRPC service that [`main`] runs.
pub trait Service: Sized {
    /// Its name in logs and traces.
    const NAME: &'static str;
    /// Its settings: a clap parser that flattens [`ServiceSettings`]. `Debug`
    /// is logged at start, so it must redact secrets.
    type Config: Parser + fmt::Debug;

    /// The shared settings inside `config`.
    fn settings(config: &Self::Config) -> &ServiceSettings;
    /// Where the gRPC server listens (what `--probe` checks).
    fn listen_addr(config: &Self::Config) -> SocketAddr;
    /// The service's database and its migrations.
    fn database(config: &Self::Config) -> crate::db::DbSettings;
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// Connects, binds and prepares everything; fails with a message naming
    /// the setting that cannot work.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>>;
    /// Serves until `shutdown` completes, then drains and stops.
    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>>;
}

/// Everything a service binary does; its exit status says how it went.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    let config = S::Config::parse();
    let settings = S::settings(&config);
    if settings.probe {
        // TLS exactly when the server speaks it (TLS_* set), with the
        // GRPC_TLS_* client certificate; a setting that cannot work is an
        // error (exit 1, with the reason), not a silent failed probe.
        let tls = crate::tls::probe_tls(&settings.tls, &settings.grpc_tls)?;
        let serving = crate::tls::probe(
            S::listen_addr(&config),
            Duration::from_secs(2),
            tls.as_ref(),
        )
        .await;
        std::process::exit(if serving { 0 } else { 1 });
    }
    let telemetry = crate::telemetry::init(S::NAME);
    if settings.migrate_only {
        crate::db::migrate_only(&S::database(&config), S::migrator()).await?;
        return Ok(());
    }
    tracing::info!(?config, "starting {}", S::NAME);
    let service = S::build(config).await?;
    let result = service
        .run_until(crate::runtime::shutdown_signal())
        .await;
    telemetry.shutdown();
    result
}
