//! # Test harness
//!
//! Starts the real services in-process on port 0, each against a fresh
//! PostgreSQL database of its own, and hands out clients. The integration
//! tests (`tests/tests/it/`, one binary, a module per area) use it:
//! - `catalog_*.rs`: the catalog service over gRPC;
//! - `order_*.rs`: the order service over gRPC with a real catalog behind it;
//! - `api_*.rs`: the gateway over HTTP with both services behind it.
//!
//! Databases are named `t_<service>_<uuid>`; `.ci/run` drops leftovers of
//! earlier runs. Pools are kept small: the machine's PostgreSQL allows 100
//! connections and tests run in parallel.

pub mod catalog;
pub mod chaos;
pub mod gateway;
pub mod order;
pub mod otlp;
pub mod pgcluster;
pub mod process;
pub mod tls;

use std::net::SocketAddr;

use tokio::{sync::oneshot, task::JoinHandle};

/// Where tests find PostgreSQL (the server, not a database).
pub fn postgres_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A URL naming a database that does not exist yet; the service creates it.
pub fn fresh_database_url(service: &str) -> String {
    format!(
        "{}/t_{service}_{}",
        postgres_server_url(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Connections each in-process service may open in tests.
pub const TEST_POOL_SIZE: u32 = 4;

/// A service running in this process; stopped (gracefully) by [`Self::stop`]
/// or, abruptly, when dropped.
pub struct RunningService {
    pub addr: SocketAddr,
    /// The database this service owns.
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningService {
    /// Spawns `run(shutdown)` on the test runtime.
    pub fn spawn<F>(
        addr: SocketAddr,
        database_url: String,
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (shutdown, rx) = oneshot::channel();
        let handle = tokio::spawn(run(rx));
        Self {
            addr,
            database_url,
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:port`, what gRPC clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: waits until the service has drained and exited.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
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
