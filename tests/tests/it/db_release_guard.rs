//! The pool's release guard (`platform::db`): a connection that comes back to the
//! pool inside a transaction block is closed, never handed to the next
//! borrower, and counted; a clean one goes back and is not counted.
//!
//! The dirty connections are made for real: a `BEGIN` sent behind sqlx's back,
//! a block aborted by an error, and sqlx 0.9's own bug (a `Pool::begin()`
//! dropped while its `BEGIN` is in flight leaves the session inside a
//! transaction). Each test runs on a fresh database of its own.
//!
//! `guard_cost_per_release` (ignored: a measurement, not a check) prints what
//! the guard costs per released connection:
//! `cargo nextest run --workspace -E 'test(guard_cost_per_release)' --run-ignored only --no-capture`.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgPool, postgres::PgPoolOptions};
use tests::{TestDatabase, admin_connection};

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

/// A guarded pool of `size` connections on a fresh database (held as long
/// as the pool is used).
async fn guarded_pool(size: u32) -> (platform::db::Database, TestDatabase) {
    let database = TestDatabase::fresh("guard");
    let settings = platform::db::DbSettings {
        url: database.url().into(),
        max_connections: size,
        create_if_missing: true,
        migrate: false,
    };
    let pool = platform::db::connect(&settings, &NO_MIGRATIONS)
        .await
        .expect("database reachable");
    (pool, database)
}

/// A guarded pool and an observer: a connection of its own, outside the pool,
/// that reads the server's view of the pool's sessions.
struct Fixture {
    db: platform::db::Database,
    observer: sqlx::PgConnection,
    _database: TestDatabase,
}

impl Fixture {
    async fn new() -> Self {
        // One connection: every borrower gets the one the last one returned.
        let (db, database) = guarded_pool(1).await;
        let observer = sqlx::PgConnection::connect(&database.url()).await.unwrap();
        Self {
            db,
            observer,
            _database: database,
        }
    }

    /// Whether the next borrower gets a session inside a transaction block,
    /// as the server sees it (`idle in transaction`, aborted or not).
    async fn next_borrower_is_in_a_transaction(&mut self) -> bool {
        let mut conn = self.db.pool.acquire().await.expect("a connection");
        let Ok(pid) = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await
        else {
            // An aborted block refuses every statement (25P02).
            return true;
        };
        let state: String = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(&mut self.observer)
            .await
            .unwrap();
        state.starts_with("idle in transaction")
    }

    /// Gives back a connection inside a transaction block: `BEGIN` sent
    /// behind sqlx's back (its own rollback-on-drop has nothing to undo),
    /// then `statement`, whose result is returned. Then checks that the
    /// guard caught it and the next borrower is not in a transaction.
    async fn leave_inside_a_transaction(&mut self, statement: &'static str) -> sqlx::Result<()> {
        let db = self.db.clone();
        let done = {
            let mut conn = db.pool.acquire().await.unwrap();
            conn.execute("BEGIN").await.unwrap();
            conn.execute(statement).await.map(|_| ())
        };
        wait_for_caught(&db.release_guard, 1).await;
        assert!(!self.next_borrower_is_in_a_transaction().await);
        done
    }
}

/// Waits (bounded) until the guard's count reaches `expected`: sqlx releases
/// connections in a task of its own, after the borrower dropped them.
async fn wait_for_caught(guard: &platform::db::ReleaseGuard, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while guard.caught() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(guard.caught(), expected);
}

#[tokio::test]
async fn clean_connections_go_back_to_the_pool_uncounted() {
    let mut fixture = Fixture::new().await;
    let db = fixture.db.clone();
    for _ in 0..20 {
        sqlx::query("SELECT 1").execute(&db.pool).await.unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        drop(tx); // rolled back by sqlx: clean too
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(db.release_guard.caught(), 0);
    assert!(!fixture.next_borrower_is_in_a_transaction().await);
    // Still the one connection: none was closed.
    assert_eq!(db.pool.size(), 1);
}

#[tokio::test]
async fn a_connection_left_inside_a_transaction_is_closed_and_counted() {
    let mut fixture = Fixture::new().await;
    fixture
        .leave_inside_a_transaction("CREATE TABLE left_open (id int)")
        .await
        .unwrap();

    // The open transaction died with its session: nothing it did remains.
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('left_open')::text")
        .fetch_one(&fixture.db.pool)
        .await
        .unwrap();
    assert_eq!(table, None);
}

#[tokio::test]
async fn a_connection_left_inside_an_aborted_transaction_is_closed_and_counted() {
    let mut fixture = Fixture::new().await;
    let refused = fixture.leave_inside_a_transaction("SELECT 1 / 0").await;
    assert!(refused.is_err());

    sqlx::query("SELECT 1")
        .execute(&fixture.db.pool)
        .await
        .expect("the next borrower works");
}

/// sqlx 0.9's bug, caused for real: `Pool::begin()` futures dropped at every
/// moment of their `BEGIN` round trip. Some land inside the window; each of
/// those is caught, and no borrower ever finds itself inside a transaction.
#[tokio::test]
async fn begins_cancelled_mid_flight_never_leak_a_transaction_to_the_next_borrower() {
    let mut fixture = Fixture::new().await;
    let db = fixture.db.clone();
    let mut leaked = 0;
    for attempt in 0..400_u64 {
        // Cut after 0..~200 µs: spans "not sent yet" .. "answered".
        let cut = Duration::from_micros(attempt % 200);
        let pool = db.pool.clone();
        let _ = tokio::time::timeout(cut, async move {
            let tx = pool.begin().await;
            // Held a moment, then dropped (rolled back) if it got this far.
            tokio::task::yield_now().await;
            drop(tx);
        })
        .await;
        if fixture.next_borrower_is_in_a_transaction().await {
            leaked += 1;
        }
    }
    assert_eq!(leaked, 0, "borrowers found themselves inside a transaction");
    eprintln!(
        "connections caught coming back inside a transaction: {}",
        db.release_guard.caught()
    );
}

/// What the guard costs: the same sequence of short statements, each on a
/// freshly borrowed connection, through a pool without the guard and through
/// the guarded one. Prints microseconds per release.
#[tokio::test]
#[ignore = "a measurement: run on demand (see the module header)"]
async fn guard_cost_per_release() {
    const ROUNDS: u32 = 20_000;
    let (guarded, _guarded_database) = guarded_pool(1).await;
    // Created here: only the guarded pool's bootstrap creates its own.
    let database = TestDatabase::fresh("guard");
    admin_connection()
        .await
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{}\"",
            database.name()
        )))
        .await
        .unwrap();
    let plain = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database.url())
        .await
        .unwrap();
    let time = |pool: PgPool| async move {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        }
        started.elapsed()
    };
    let _ = time(plain.clone()).await; // warm both
    let _ = time(guarded.pool.clone()).await;
    let without = time(plain).await;
    let with = time(guarded.pool.clone()).await;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(ROUNDS);
    println!(
        "one statement per borrowed connection, {ROUNDS} rounds, one connection: \
         without guard {:.1} µs, with guard {:.1} µs, guard {:.1} µs per release",
        per(without),
        per(with),
        per(with) - per(without)
    );
    assert_eq!(guarded.release_guard.caught(), 0);
}
