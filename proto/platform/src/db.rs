//! Database plumbing shared by both services: create the service's database
//! if it is missing, open a pool, apply the service's migrations; the release
//! guard that keeps a connection left inside a transaction out of the pool;
//! and the one classifier of database errors into "unavailable, retry" and
//! the rest.
//!
//! Replicas starting together are safe: a concurrent `CREATE DATABASE` loses
//! with `duplicate_database` (ignored), and sqlx's migrator holds an advisory
//! lock while it migrates.
//!
//! Cancel safety: a future that begins, uses or ends a transaction must never
//! be dropped half-way (sqlx 0.9's `begin()` leaves the session inside a
//! transaction if it is). The services make sure of that by running every
//! call, and every background step, to its end in a task of its own
//! ([`crate::server::RunToCompletionLayer`],
//! [`crate::runtime::run_to_completion`]); the
//! release guard here is the net under that rule: should a connection still
//! come back inside a transaction, it is closed (the server rolls back), never
//! reused, and counted.

use std::{str::FromStr, time::Duration};

use prometheus_client::{metrics::counter::Counter, registry::Registry};
use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool, Row,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// A pooled connection idle at least this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(2);

/// How a service reaches its database.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// e.g. `postgres://postgres@127.0.0.1:5432/catalog` (never printed).
    pub url: crate::settings::DatabaseUrl,
    pub max_connections: u32,
    /// Create the database when it does not exist.
    pub create_if_missing: bool,
    /// Apply migrations at start (operators who migrate separately turn it off).
    pub migrate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("database URL names no database")]
    NoDatabaseName,
    #[error("cannot create database {name:?}")]
    Create {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// A service's pool and the guard watching what comes back to it.
#[derive(Clone)]
pub struct Database {
    pub pool: PgPool,
    pub release_guard: ReleaseGuard,
}

/// Counts connections that came back to the pool inside a transaction (and
/// were closed instead of reused). Should read 0 for ever: anything else is a
/// code path that dropped a transaction's future half-way.
#[derive(Clone, Default, Debug)]
pub struct ReleaseGuard {
    returned_in_transaction: Counter,
}

impl ReleaseGuard {
    /// Exposes the count as `db_connections_returned_in_transaction_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "db_connections_returned_in_transaction",
            "Database connections that came back to the pool inside a transaction and were closed instead of reused (should stay 0)",
            self.returned_in_transaction.clone(),
        );
    }

    /// How many connections were caught so far.
    pub fn caught(&self) -> u64 {
        self.returned_in_transaction.get()
    }

    /// Whether `conn`, just released, may go back to the pool: `false` when
    /// its session is inside a transaction block (open or aborted), which is
    /// then counted and logged. One simple-protocol round trip: a simple query
    /// is its own transaction outside a block, so its statement and
    /// transaction start times are equal there, and differ inside a block
    /// begun by an earlier statement; in an aborted block it fails (25P02).
    async fn check(&self, conn: &mut PgConnection) -> bool {
        let clean = match sqlx::raw_sql(
            "SELECT pg_catalog.statement_timestamp() = pg_catalog.transaction_timestamp()",
        )
        .fetch_one(&mut *conn)
        .await
        {
            Ok(row) => row.try_get::<bool, _>(0).unwrap_or(false),
            Err(_) => false,
        };
        if !clean {
            self.returned_in_transaction.inc();
            tracing::error!(
                "a database connection came back to the pool inside a transaction: closed, not reused"
            );
        }
        clean
    }
}

/// The name of the database `pool` connects to (`db.namespace` on the
/// stores' spans); empty when the URL names none.
pub fn database_name(pool: &sqlx::PgPool) -> std::sync::Arc<str> {
    pool.connect_options()
        .get_database()
        .unwrap_or_default()
        .into()
}

/// Opens the pool, creating the database and migrating it first if asked.
pub async fn connect(settings: &DbSettings, migrator: &Migrator) -> Result<Database, DbError> {
    let options = PgConnectOptions::from_str(&settings.url)
        .map_err(DbError::InvalidUrl)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    if settings.create_if_missing {
        create_database_if_missing(&options).await?;
    }
    let release_guard = ReleaseGuard::default();
    let guard = release_guard.clone();
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        // sqlx pings every connection it hands out (a round trip to the
        // server before each statement or transaction, which profiling showed
        // as a third of a simple read's database traffic). Only a connection
        // idle for a while is pinged: one in use moments ago is known good, and
        // if the server went away since, that one statement fails as
        // UNAVAILABLE and the connection is discarded (sqlx tests it on release).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        // Runs in sqlx's own release task, after the borrower is done: costs
        // the pool one round trip per release, never the request its latency.
        .after_release(move |conn, _meta| {
            let guard = guard.clone();
            Box::pin(async move { Ok(guard.check(conn).await) })
        })
        .connect_with(options)
        .await
        .map_err(DbError::Connect)?;
    if settings.migrate {
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
    }
    Ok(Database {
        pool,
        release_guard,
    })
}

// `PgConnectOptions`' Debug shows the password: never log the options, nor
// `#[instrument]` a function taking them without skipping them.
async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), DbError> {
    let name = options
        .get_database()
        .ok_or(DbError::NoDatabaseName)?
        .to_owned();
    let create_error = |source| DbError::Create {
        name: name.clone(),
        source,
    };
    let mut admin: PgConnection = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(DbError::Connect)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .map_err(create_error)?;
    if !exists {
        // Identifiers cannot be bound as parameters: quote it, doubling quotes,
        // which makes any name safe to splice.
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(create_error(e)),
        }
    }
    let _ = admin.close().await;
    Ok(())
}

/// What `--migrate-only` does (e.g. in a Kubernetes init container): create
/// the database if missing, apply pending migrations, close, whatever the
/// settings say about doing so at start.
pub async fn migrate_only(settings: &DbSettings, migrator: &Migrator) -> Result<(), DbError> {
    let settings = DbSettings {
        create_if_missing: true,
        migrate: true,
        max_connections: 1,
        ..settings.clone()
    };
    connect(&settings, migrator).await?.pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// The database's part of a service's admin server: the pool gauges,
/// refreshed at each scrape, the release guard's counter, and readiness as a
/// round trip to the database.
#[derive(Clone)]
pub struct PoolWatch {
    pool: PgPool,
    gauges: crate::metrics::PoolGauges,
}

impl PoolWatch {
    /// Registers the pool's series and `guard`'s counter in `registry`.
    pub fn register(pool: PgPool, guard: &ReleaseGuard, registry: &mut Registry) -> Self {
        let gauges = crate::metrics::PoolGauges::register(registry);
        guard.register(registry);
        Self { pool, gauges }
    }

    /// Sets the gauges to the pool's state now.
    pub fn refresh(&self) {
        self.gauges.set(self.pool.size(), self.pool.num_idle());
    }

    /// Whether the database answers a round trip.
    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

impl crate::metrics::AdminHooks for PoolWatch {
    fn refresh(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { PoolWatch::refresh(self) })
    }

    fn ready(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(PoolWatch::ready(self))
    }
}

/// Whether the database answers `SELECT 1` within `timeout`: what gRPC
/// health and `/ready` follow. A slow answer is not waited for, but the
/// query still runs to its end (see [`crate::runtime::run_to_completion`]).
pub async fn is_up(pool: PgPool, timeout: Duration) -> bool {
    let ping = tokio::spawn(async move { sqlx::query("SELECT 1").execute(&pool).await });
    matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(Ok(_))))
}

/// Whether a database error means "the database cannot be reached or cannot
/// take the work right now, retry" (answered UNAVAILABLE) rather than a bug or
/// a refused statement. The one classifier both services use:
/// - I/O and TLS failures, a pool that timed out, closed, or whose worker
///   crashed;
/// - SQLSTATE class 08 (connection exception), 53300 (too many connections),
///   57P01 / 57P02 / 57P03 (admin or crash shutdown, cannot connect now).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// The SQLSTATEs [`is_unavailable`] treats as "retry later".
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, error::Error as StdError, fmt};

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A server error with only a SQLSTATE, as the server would send it.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl fmt::Display for ServerError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl StdError for ServerError {}

    impl DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn server(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(ServerError(code)))
    }

    #[test]
    fn connectivity_and_capacity_failures_are_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_unavailable(&io), "I/O");
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut), "pool timeout");
        assert!(is_unavailable(&sqlx::Error::PoolClosed), "pool closed");
        assert!(
            is_unavailable(&sqlx::Error::WorkerCrashed),
            "worker crashed"
        );
        for code in ["08000", "08001", "08003", "08004", "08006", "08P01"] {
            assert!(is_unavailable(&server(code)), "class 08: {code}");
        }
        assert!(is_unavailable(&server("53300")), "too many connections");
        assert!(is_unavailable(&server("57P01")), "admin shutdown");
        assert!(is_unavailable(&server("57P02")), "crash shutdown");
        assert!(is_unavailable(&server("57P03")), "cannot connect now");
    }

    #[test]
    fn refused_statements_and_bugs_are_not_unavailable() {
        // unique violation, FK violation, syntax error, numeric overflow,
        // query canceled, serialization failure, aborted transaction
        for code in [
            "23505", "23503", "42601", "22003", "57014", "40001", "25P02",
        ] {
            assert!(!is_unavailable(&server(code)), "{code}");
        }
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
