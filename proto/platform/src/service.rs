//! The life of a gRPC service process, the same for every service: parse the
//! settings, answer `--probe` (a container health check) or `--migrate-only`
//! (an init container), or else set up telemetry, build the service and serve
//! until SIGTERM / Ctrl-C. A service's `main` is one call to [`main`].

use std::{ffi::OsString, fmt, future::Future, time::Duration};

use clap::Parser;

use crate::settings::{Defaults, ServiceSettings};

/// Parses `args` into a service's `Config`, with the service's `defaults`
/// for the settings whose default differs per service (they show in
/// `--help`). A bad or missing setting exits with clap's message.
pub fn parse_from<C, I, T>(defaults: &Defaults, args: I) -> C
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let command = <C as clap::CommandFactory>::command()
        .mut_arg("database_url", |arg| {
            arg.default_value(defaults.database_url).required(false)
        })
        .mut_arg("listen_addr", |arg| {
            arg.default_value(defaults.listen_addr).required(false)
        })
        .mut_arg("admin_addr", |arg| {
            arg.default_value(defaults.admin_addr).required(false)
        });
    let matches = command.get_matches_from(args);
    <C as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Serves `parts` as [`crate::server::serve`] does, with health following the
/// database (`pool`): reads and writes need it, and a service whose database
/// is down should get no calls. Timings come from `settings`.
pub async fn serve<S>(
    name: &'static str,
    parts: crate::server::ServiceParts<S>,
    pool: sqlx::PgPool,
    settings: &ServiceSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    use anyhow::Context;
    let interval = settings.health_check_interval();
    let database_up = move || crate::db::is_up(pool.clone(), interval);
    crate::server::serve(
        crate::server::GrpcServe {
            name,
            parts,
            health_interval: interval,
            drain_delay: settings.drain.delay(),
            grace: settings.shutdown_grace(),
        },
        database_up,
        shutdown,
    )
    .await
    .context("gRPC server failed")
}

/// A gRPC service that [`main`] runs.
pub trait Service: Sized {
    /// Its name in logs and traces.
    const NAME: &'static str;
    /// Its defaults for the database URL and the two addresses.
    const DEFAULTS: Defaults;
    /// Its settings that changed their name (see [`crate::renamed`]).
    const RENAMED: &'static [crate::renamed::Renamed] = &[];
    /// Its settings: a clap parser that flattens [`ServiceSettings`]. `Debug`
    /// is logged at start, so it must redact secrets.
    type Config: Parser + fmt::Debug;

    /// The shared settings inside `config`.
    fn settings(config: &Self::Config) -> &ServiceSettings;
    /// The service's migrations.
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
    let renamed = [
        crate::renamed::EVERY_PROCESS,
        crate::renamed::SERVICE_SETTINGS,
        S::RENAMED,
    ]
    .concat();
    let (args, renamed) = crate::renamed::apply_to_process(&renamed);
    let config: S::Config = parse_from(&S::DEFAULTS, args);
    let settings = S::settings(&config);
    if settings.probe {
        // TLS exactly when the server speaks it (TLS_* set), with the
        // GRPC_TLS_* client certificate; a setting that cannot work is an
        // error (exit 1, with the reason), not a silent failed probe.
        let tls = crate::tls::probe_tls(&settings.tls, &settings.grpc_tls)?;
        let serving =
            crate::tls::probe(settings.listen_addr, Duration::from_secs(2), tls.as_ref()).await;
        std::process::exit(if serving { 0 } else { 1 });
    }
    let telemetry = crate::telemetry::init(S::NAME)?;
    crate::renamed::warn(&renamed);
    if settings.migrate_only {
        crate::db::migrate_only(&settings.database(), S::migrator()).await?;
        return Ok(());
    }
    tracing::info!(?config, "starting {}", S::NAME);
    let service = S::build(config).await?;
    let result = service.run_until(crate::runtime::shutdown_signal()).await;
    telemetry.shutdown();
    result
}

/// Implements [`Service`] for a service's `Application`, whose inherent
/// `build` and `run_until` do the work (and gives it `local_addr` and
/// `admin_addr`, from its `listeners`), and gives its `Config` (a clap parser
/// that flattens [`ServiceSettings`] as `service`) `parse_with_defaults`,
/// `for_database` and `db_settings`:
///
/// ```ignore
/// platform::grpc_service!(Application, Config, MIGRATOR, "catalog-service", Defaults {
///     database_url: "postgres://postgres@127.0.0.1:5432/catalog",
///     listen_addr: "127.0.0.1:50051",
///     admin_addr: "127.0.0.1:9101",
/// });
/// ```
#[macro_export]
macro_rules! grpc_service {
    ($app:ty, $config:ty, $migrator:path, $name:literal, $defaults:expr) => {
        $crate::grpc_service!($app, $config, $migrator, $name, $defaults, renamed = &[]);
    };
    ($app:ty, $config:ty, $migrator:path, $name:literal, $defaults:expr, renamed = $renamed:expr) => {
        impl $config {
            /// Parses `args` with this service's defaults.
            pub fn parse_with_defaults<I, T>(args: I) -> Self
            where
                I: IntoIterator<Item = T>,
                T: Into<::std::ffi::OsString> + Clone,
            {
                $crate::service::parse_from(&$defaults, args)
            }

            /// Defaults for everything but the database and the gRPC
            /// address, the admin port picked by the system: what tests use.
            pub fn for_database(
                database_url: impl Into<String>,
                listen_addr: ::std::net::SocketAddr,
            ) -> Self {
                let mut config = Self::parse_with_defaults([$name]);
                config.service.database_url = database_url.into().into();
                config.service.listen_addr = listen_addr;
                config.service.admin_addr = ::std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                config
            }

            /// The database settings (the URL is never printed).
            pub fn db_settings(&self) -> $crate::db::DbSettings {
                self.service.database()
            }
        }

        impl $app {
            /// The gRPC address.
            pub fn local_addr(&self) -> ::std::net::SocketAddr {
                self.listeners.grpc_addr()
            }

            /// The admin HTTP address (`/metrics`, `/health`, `/ready`).
            pub fn admin_addr(&self) -> ::std::net::SocketAddr {
                self.listeners.admin_addr()
            }
        }

        impl $crate::service::Service for $app {
            const NAME: &'static str = $name;
            const DEFAULTS: $crate::settings::Defaults = $defaults;
            const RENAMED: &'static [$crate::renamed::Renamed] = $renamed;
            type Config = $config;

            fn settings(config: &$config) -> &$crate::settings::ServiceSettings {
                &config.service
            }

            fn migrator() -> &'static ::sqlx::migrate::Migrator {
                &$migrator
            }

            async fn build(config: $config) -> ::anyhow::Result<Self> {
                Self::build(config).await
            }

            async fn run_until(
                self,
                shutdown: impl ::std::future::Future<Output = ()> + Send + 'static,
            ) -> ::anyhow::Result<()> {
                Self::run_until(self, shutdown).await
            }
        }
    };
}
