//! Database bootstrap shared by both services: create the service's database
//! if it is missing, open a pool, apply the service's migrations.
//!
//! Replicas starting together are safe: a concurrent `CREATE DATABASE` loses
//! with `duplicate_database` (ignored), and sqlx's migrator holds an advisory
//! lock while it migrates.

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// A pooled connection idle at least this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(2);

/// How a service reaches its database.
#[derive(Clone)]
pub struct DbSettings {
    /// e.g. `postgres://postgres@127.0.0.1:5432/catalog`
    pub url: String,
    pub max_connections: u32,
    /// Create the database when it does not exist.
    pub create_if_missing: bool,
    /// Apply migrations at start (operators who migrate separately turn it off).
    pub migrate: bool,
}

// The URL may hold a password: never print it.
impl std::fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSettings")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("create_if_missing", &self.create_if_missing)
            .field("migrate", &self.migrate)
            .finish()
    }
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

/// Opens the pool, creating the database and migrating it first if asked.
pub async fn connect(settings: &DbSettings, migrator: &Migrator) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(&settings.url)
        .map_err(DbError::InvalidUrl)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    if settings.create_if_missing {
        create_database_if_missing(&options).await?;
    }
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
        .connect_with(options)
        .await
        .map_err(DbError::Connect)?;
    if settings.migrate {
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
    }
    Ok(pool)
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
    connect(&settings, migrator).await?.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// Whether the database answers `SELECT 1` within `timeout`: what gRPC
/// health and `/ready` follow.
pub async fn is_up(pool: PgPool, timeout: Duration) -> bool {
    let ping = sqlx::query("SELECT 1").execute(&pool);
    matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)))
}
