//! # Test harness
//!
//! Starts the real services in-process on port 0, each against a fresh
//! PostgreSQL database of its own, and hands out clients. The integration
//! tests (`tests/tests/it/`, one binary, a module per area) use it:
//! - `catalog_*.rs`: the catalog service over gRPC;
//! - `order_*.rs`: the order service over gRPC with a real catalog behind it;
//! - `api_*.rs`: the gateway over HTTP with both services behind it.
//!
//! Databases are named `t_<service>_<uuid>`, each held by a
//! [`TestDatabase`] that drops it when the test ends, passed or failed
//! (`.ci/run` still drops what a killed run left). Pools are kept small: the
//! machine's PostgreSQL allows 100 connections and tests run in parallel.

pub mod catalog;
pub mod chaos;
pub mod gateway;
pub mod order;
pub mod otlp;
pub mod pgcluster;
pub mod process;
pub mod tls;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{sync::oneshot, task::JoinHandle};

/// Where tests find PostgreSQL (the server, not a database).
pub fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of the test's own on the shared server: its URL names a
/// database that does not exist yet (the service given it creates it). When
/// the last clone is dropped, at the end of the test whether it passed or
/// panicked, the database is dropped (`WITH (FORCE)`: sessions still open
/// are cut). Keep one for as long as anything uses the database, e.g. across
/// the restart of the service that owns it.
#[derive(Clone)]
#[must_use = "the database is dropped with its last TestDatabase"]
pub struct TestDatabase(Arc<DroppedDatabase>);

impl TestDatabase {
    /// [`database_name`] on the shared server.
    pub fn fresh(service: &str) -> Self {
        Self(Arc::new(DroppedDatabase {
            server_url: postgres_server_url(),
            name: database_name(service),
        }))
    }

    /// `postgres://...:port/t_<service>_<uuid>`.
    pub fn url(&self) -> String {
        format!("{}/{}", self.0.server_url, self.0.name)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether the server has it (a service creates it when missing).
    pub async fn exists(&self) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(self.name())
            .fetch_one(&mut admin_connection().await)
            .await
            .expect("pg_database readable")
    }
}

/// `t_<service>_<uuid>`: a database name no one uses yet.
pub fn database_name(service: &str) -> String {
    format!("t_{service}_{}", uuid::Uuid::new_v4().simple())
}

/// A connection to the shared server's `postgres` database, for what only
/// the server's administrator sees.
pub async fn admin_connection() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server_url()))
        .await
        .expect("PostgreSQL reachable")
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// What a [`TestDatabase`] drops when it goes.
struct DroppedDatabase {
    server_url: String,
    name: String,
}

impl Drop for DroppedDatabase {
    /// On a thread of its own with a runtime of its own: a `Drop` may run on
    /// the test's runtime (even one shutting down, or unwinding a panic),
    /// which must not be blocked on from inside. Never panics; a failure is
    /// reported and the database left to `.ci/run`.
    fn drop(&mut self) {
        let admin_url = format!("{}/postgres", self.server_url);
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let drop_it = async {
                    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                };
                match tokio::time::timeout(Duration::from_secs(30), drop_it).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(_) => Err("no answer within 30 s".to_owned()),
                }
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("test database {} not dropped: {error}", self.name),
            Err(_) => eprintln!(
                "test database {} not dropped: the thread panicked",
                self.name
            ),
        }
    }
}

/// Connections each in-process service may open in tests.
pub const TEST_POOL_SIZE: u32 = 4;

/// A service's configuration for a test and the [`TestDatabase`] its
/// `database_url` names; read and changed as the configuration itself
/// (`config.shutdown_grace = Duration::from_secs(5)`). The service started
/// with it holds the database.
pub struct TestConfig<C> {
    pub config: C,
    pub database: TestDatabase,
}

impl<C> TestConfig<C> {
    /// What the service started with it holds: the database URL it is
    /// configured with (parameters included) and the database.
    pub fn held(&self, database_url: &str) -> Option<(String, TestDatabase)> {
        Some((database_url.to_owned(), self.database.clone()))
    }
}

impl<C> std::ops::Deref for TestConfig<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.config
    }
}

impl<C> std::ops::DerefMut for TestConfig<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.config
    }
}

/// A service running in this process; stopped (gracefully) by [`Self::stop`]
/// or, abruptly, when dropped (and then its database goes too, unless a
/// clone of [`Self::database`] is kept).
pub struct RunningService {
    pub addr: SocketAddr,
    /// Its admin HTTP address (`/metrics`, `/health`, `/ready`), when the
    /// test asked for it ([`Self::with_admin`]; the gateway's always).
    pub admin_addr: Option<SocketAddr>,
    /// The URL of the database this service owns (empty for the gateway).
    pub database_url: String,
    /// That database, dropped after the service (fields drop after `drop`).
    pub database: Option<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningService {
    /// Spawns `run(shutdown)` on the test runtime. A service with a
    /// database gets its URL (as configured, parameters included) and holds
    /// its [`TestDatabase`] until it is dropped.
    pub fn spawn<F>(
        addr: SocketAddr,
        database: Option<(String, TestDatabase)>,
        run: impl FnOnce(Shutdown) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (shutdown, rx) = oneshot::channel();
        let handle = tokio::spawn(run(Shutdown(rx)));
        let (database_url, database) = match database {
            Some((url, database)) => (url, Some(database)),
            None => (String::new(), None),
        };
        Self {
            addr,
            admin_addr: None,
            database_url,
            database,
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// Records where the service serves its admin HTTP.
    pub fn with_admin(mut self, admin_addr: SocketAddr) -> Self {
        self.admin_addr = Some(admin_addr);
        self
    }

    /// `http://<admin>/metrics`; panics when no admin address was recorded.
    pub fn metrics_url(&self) -> String {
        let admin = self.admin_addr.expect("an admin address (with_admin)");
        format!("http://{admin}/metrics")
    }

    /// `http://127.0.0.1:port`, what gRPC clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: waits until the service has drained and exited. Its
    /// database goes too (unless a clone of [`Self::database`] is kept),
    /// dropped off the test's runtime: the processes still running in it
    /// (a gateway, say) go on meanwhile, as they would with the service gone.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let stopped = match self.handle.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        };
        if let Some(database) = self.database.take() {
            let _ = tokio::task::spawn_blocking(move || drop(database)).await;
        }
        stopped
    }
}

/// Resolves when the test stops its [`RunningService`] gracefully (or drops
/// it): what the service's `run_until` waits for.
pub struct Shutdown(oneshot::Receiver<()>);

impl std::future::Future for Shutdown {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Every row `sql` selects (no parameters), as `T` (a tuple of columns).
pub async fn select<T>(db: &mut sqlx::PgConnection, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let rows = sqlx::query_as(sql).fetch_all(db).await;
    rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one value `sql` selects (no parameters).
pub async fn select_value<T>(db: &mut sqlx::PgConnection, sql: &'static str) -> T
where
    (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: Send + Unpin,
{
    let value = sqlx::query_scalar(sql).fetch_one(db).await;
    value.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Spawns every call as a task of its own, at once (they run from now on);
/// awaited, their outputs, in the order given.
pub fn concurrently<F>(
    calls: impl IntoIterator<Item = F>,
) -> impl std::future::Future<Output = Vec<F::Output>>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    async move {
        let joined = futures::future::join_all(tasks).await;
        joined
            .into_iter()
            .map(|task| task.expect("task completed"))
            .collect()
    }
}

/// An address on loopback with port 0: the OS picks a free port at bind time.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The value of the first sample in a Prometheus text page at `url` whose
/// line starts with `series` (name and labels exactly as exposed, e.g.
/// `catalog_reservations_total{outcome="reserved"}`); `None` if absent.
pub async fn metric_sample(http: &reqwest::Client, url: &str, series: &str) -> Option<f64> {
    let text = http
        .get(url)
        .send()
        .await
        .expect("metrics endpoint reachable")
        .text()
        .await
        .expect("metrics page readable");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
}
