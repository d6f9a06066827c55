//! Group commit of reservations (catalog-service `app::reservations`: its
//! lane and `reserve_batch`): many ReserveInventory calls decided in one
//! transaction, each caller still getting its own all-or-nothing answer, with
//! idempotency and tombstones honoured inside a batch.
//!
//! Batches are made deterministic by holding a product's row lock from a
//! separate connection: the worker's first transaction blocks on it, the calls
//! sent meanwhile queue up, and the next transaction takes them all.

use std::{net::SocketAddr, time::Duration};

use catalog_service::{
    app::reserve_batch,
    domain::{
        Refusal,
        reservation::{ReservationRequest, Reserved},
    },
    store::Store,
};
use proto::{
    catalog::v1::ReserveInventoryResponse,
    errors::{meta, reason},
};
use sqlx::{Connection, PgConnection, postgres::PgPoolOptions};
use tests::{
    RunningService,
    catalog::{
        CatalogClient, CatalogHarness, catalog_client, catalog_config, create_product, metadata_of,
        reason_of, release, reserve, start_catalog, stock_of,
    },
    concurrently,
};
use tokio::task::JoinHandle;
use tonic::Code;
use uuid::Uuid;

/// A catalog service (its admin address serves the batch-size series) and a
/// client of it.
async fn catalog_and_client() -> (CatalogHarness, CatalogClient) {
    let catalog = start_catalog(catalog_config()).await;
    let client = catalog_client(&catalog.service).await;
    (catalog, client)
}

/// The service's store, on a pool of our own, to hand it batches directly.
async fn store_of(service: &RunningService) -> Store {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&service.database_url)
        .await
        .expect("catalog database reachable");
    Store::new(pool)
}

fn uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("a UUID")
}

fn request(id: Uuid, items: &[(&str, i32)]) -> ReservationRequest {
    ReservationRequest::new(id, items.iter().map(|&(p, q)| (uuid(p), q)))
}

/// The reservation worker held up: the row lock of a product, held by a
/// connection of the test's, and a call for one unit of that product, which
/// the worker's transaction is waiting with when [`Held::up`] returns; calls
/// sent meanwhile queue up behind it.
struct Held {
    lock: PgConnection,
    first: JoinHandle<Result<ReserveInventoryResponse, tonic::Status>>,
}

impl Held {
    async fn up(service: &RunningService, client: &CatalogClient, product_id: &str) -> Self {
        let mut lock = PgConnection::connect(&service.database_url)
            .await
            .expect("catalog database reachable");
        sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
        sqlx::query("SELECT 1 FROM products WHERE id = $1 FOR UPDATE")
            .bind(uuid(product_id))
            .execute(&mut lock)
            .await
            .unwrap();
        let (mut client, product) = (client.clone(), product_id.to_owned());
        let first = tokio::spawn(async move {
            reserve(&mut client, &new_id().to_string(), &[(&product, 1)]).await
        });
        // Until a transaction of this database waits for a lock: the worker.
        for _ in 0..200 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut lock)
            .await
            .unwrap();
            if waiting > 0 {
                return Self { lock, first };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the reservation worker never waited for the locked product");
    }

    /// Lets the worker go (after `queueing`, time for calls sent just before
    /// to queue up): the first call gets its unit. The test's connection, for
    /// reading what was decided.
    async fn go(mut self, queueing: Duration) -> PgConnection {
        tokio::time::sleep(queueing).await;
        sqlx::query("ROLLBACK")
            .execute(&mut self.lock)
            .await
            .unwrap();
        let first = self
            .first
            .await
            .unwrap()
            .expect("the first call gets a unit");
        assert_eq!(first.lines[0].quantity, 1);
        self.lock
    }
}

/// (transactions, calls decided) of the group-commit batch-size histogram.
async fn batches(admin: SocketAddr) -> (u64, u64) {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("admin reachable")
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().parse::<f64>().expect("a number") as u64)
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    (
        value("catalog_reservation_batch_size_count"),
        value("catalog_reservation_batch_size_sum"),
    )
}

fn new_id() -> Uuid {
    Uuid::new_v4()
}

// ------------------------------------------------------------ one batch, direct

#[tokio::test]
async fn one_batch_judges_each_reservation_on_the_stock_the_ones_before_it_left() {
    let (catalog, mut client) = catalog_and_client().await;
    let service = &catalog.service;
    let store = store_of(service).await;
    let a = create_product(&mut client, "A", "2.50", 3).await;
    let b = create_product(&mut client, "B", "4.00", 5).await;
    let missing = new_id().to_string();
    let ids: Vec<Uuid> = (0..6).map(|_| new_id()).collect();

    let outcomes = reserve_batch(
        &store,
        &[
            request(ids[0], &[(&a.id, 2)]),
            // Only 1 of A is left: refused whole, B keeps its unit.
            request(ids[1], &[(&b.id, 1), (&a.id, 2)]),
            request(ids[2], &[(&b.id, 5)]),
            request(ids[3], &[(&a.id, 1)]),
            request(ids[4], &[(&a.id, 1), (&missing, 1)]),
            request(ids[5], &[(&a.id, 1)]),
        ],
    )
    .await
    .expect("the batch transaction commits");

    let taken = |outcome: &Result<Reserved, Refusal>| -> Vec<(Uuid, i32)> {
        let reserved = outcome.as_ref().expect("reserved");
        assert!(!reserved.replayed);
        reserved
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity))
            .collect()
    };
    assert_eq!(taken(&outcomes[0]), vec![(uuid(&a.id), 2)]);
    assert_eq!(
        outcomes[1].as_ref().unwrap_err(),
        &Refusal::InsufficientStock {
            product_id: uuid(&a.id),
            product_name: "A".into(),
            available: 1,
            requested: 2
        }
    );
    assert_eq!(taken(&outcomes[2]), vec![(uuid(&b.id), 5)]);
    assert_eq!(taken(&outcomes[3]), vec![(uuid(&a.id), 1)]);
    assert_eq!(
        outcomes[4].as_ref().unwrap_err(),
        &Refusal::ProductsNotFound(vec![uuid(&missing)])
    );
    assert!(matches!(
        outcomes[5],
        Err(Refusal::InsufficientStock { available: 0, .. })
    ));
    assert_eq!(stock_of(&mut client, &a.id).await, 0);
    assert_eq!(stock_of(&mut client, &b.id).await, 0);

    // Refused calls left no claim: their ids are as free as if never sent.
    let mut db = tests::catalog::catalog_database(service).await;
    let claims: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM reservations WHERE id = ANY($1) ORDER BY id")
            .bind(&ids)
            .fetch_all(&mut db)
            .await
            .unwrap();
    let mut kept = vec![ids[0], ids[2], ids[3]];
    kept.sort();
    assert_eq!(claims, kept);
    let lines: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservation_lines WHERE reservation_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(lines, 3);
}

#[tokio::test]
async fn in_one_batch_a_tombstoned_id_is_refused_a_known_id_replays_and_a_changed_one_is_a_mismatch()
 {
    let (catalog, mut client) = catalog_and_client().await;
    let service = &catalog.service;
    let store = store_of(service).await;
    let a = create_product(&mut client, "A", "1.00", 10).await;
    let (tombstoned, known, changed, fresh) = (new_id(), new_id(), new_id(), new_id());
    assert!(!release(&mut client, &tombstoned.to_string()).await.unwrap());
    let first = reserve(&mut client, &known.to_string(), &[(&a.id, 1)])
        .await
        .unwrap();
    reserve(&mut client, &changed.to_string(), &[(&a.id, 1)])
        .await
        .unwrap();

    let outcomes = reserve_batch(
        &store,
        &[
            request(tombstoned, &[(&a.id, 1)]),
            request(known, &[(&a.id, 1)]),
            request(changed, &[(&a.id, 2)]),
            request(fresh, &[(&a.id, 1)]),
        ],
    )
    .await
    .expect("the batch transaction commits");

    assert_eq!(
        outcomes[0].as_ref().unwrap_err(),
        &Refusal::ReservationReleased(tombstoned)
    );
    let replayed = outcomes[1].as_ref().expect("replayed");
    assert!(replayed.replayed);
    assert_eq!(replayed.lines.len(), 1);
    assert_eq!(replayed.lines[0].quantity, first.lines[0].quantity);
    assert_eq!(
        outcomes[2].as_ref().unwrap_err(),
        &Refusal::ReservationMismatch(changed)
    );
    assert!(!outcomes[3].as_ref().expect("reserved").replayed);
    // 10 - known - changed - fresh; the tombstone and the replays took nothing.
    assert_eq!(stock_of(&mut client, &a.id).await, 7);
    // The tombstone still stands.
    let late = reserve(&mut client, &tombstoned.to_string(), &[(&a.id, 1)])
        .await
        .unwrap_err();
    assert_eq!(reason_of(&late), reason::RESERVATION_RELEASED);
}

// -------------------------------------------------- real batches over gRPC

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mixed_calls_queued_together_each_get_their_own_all_or_nothing_answer() {
    let (catalog, mut client) = catalog_and_client().await;
    let admin = catalog.admin_addr;
    let hot = create_product(&mut client, "Hot", "9.99", 10).await;
    let other = create_product(&mut client, "Other", "1.00", 100).await;
    let scarce = create_product(&mut client, "Scarce", "5.00", 1).await;
    let missing = new_id().to_string();

    // The worker's first transaction blocks on the hot row...
    let held = Held::up(&catalog.service, &client, &hot.id).await;
    let (batches_before, calls_before) = batches(admin).await;

    // ...while these queue up behind it.
    type Call = (&'static str, Vec<(String, i32)>);
    let mut calls: Vec<Call> = Vec::new();
    for _ in 0..25 {
        calls.push(("hot", vec![(hot.id.clone(), 1)]));
    }
    for _ in 0..10 {
        calls.push((
            "hot+other",
            vec![(other.id.clone(), 2), (hot.id.clone(), 1)],
        ));
    }
    for _ in 0..5 {
        calls.push(("scarce", vec![(scarce.id.clone(), 1)]));
    }
    for _ in 0..5 {
        calls.push(("missing", vec![(other.id.clone(), 1), (missing.clone(), 1)]));
    }
    let sent = calls.len() as u64;
    let running = concurrently(calls.into_iter().map(|(kind, items)| {
        let mut client: CatalogClient = client.clone();
        async move {
            let items: Vec<(&str, i32)> = items.iter().map(|(p, q)| (p.as_str(), *q)).collect();
            let id = new_id().to_string();
            (kind, reserve(&mut client, &id, &items).await)
        }
    }));

    let mut db = held.go(Duration::from_millis(500)).await;
    let answers = running.await;

    let ok = |kind: &str| {
        answers
            .iter()
            .filter(|(k, r)| *k == kind && r.is_ok())
            .count()
    };
    // 9 hot units were left after the first call, for 35 callers who want one.
    assert_eq!(ok("hot") + ok("hot+other"), 9);
    assert_eq!(ok("scarce"), 1);
    assert_eq!(ok("missing"), 0);
    for (kind, answer) in &answers {
        match (kind, answer) {
            (_, Ok(response)) => {
                let units: i32 = response.lines.iter().map(|l| l.quantity).sum();
                assert_eq!(units, if *kind == "hot+other" { 3 } else { 1 });
            }
            (&"missing", Err(status)) => {
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
                assert_eq!(metadata_of(status, meta::PRODUCT_IDS), missing);
            }
            (_, Err(status)) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason_of(status), reason::INSUFFICIENT_STOCK);
                assert_eq!(metadata_of(status, meta::AVAILABLE), "0");
            }
        }
    }
    assert_eq!(stock_of(&mut client, &hot.id).await, 0);
    assert_eq!(stock_of(&mut client, &scarce.id).await, 0);
    let other_taken = 2 * ok("hot+other") as i32;
    assert_eq!(stock_of(&mut client, &other.id).await, 100 - other_taken);

    // Every claim left is a success's; no refused call kept one.
    let claims: i64 = tests::select_value(&mut db, "SELECT count(*) FROM reservations").await;
    assert_eq!(
        claims as usize,
        1 + answers.iter().filter(|(_, r)| r.is_ok()).count()
    );

    // And they were decided in shared transactions, not one each.
    let (batches_after, calls_after) = batches(admin).await;
    assert_eq!(calls_after - calls_before, sent);
    assert!(
        batches_after - batches_before < sent,
        "{sent} calls took {} transactions",
        batches_after - batches_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_one_reservation_queued_together_move_stock_once_and_answer_identically() {
    let (catalog, mut client) = catalog_and_client().await;
    let a = create_product(&mut client, "A", "1.25", 10).await;
    let b = create_product(&mut client, "B", "7.50", 10).await;
    let c = create_product(&mut client, "C", "3.00", 10).await;
    let (copied, short) = (new_id().to_string(), new_id().to_string());

    let held = Held::up(&catalog.service, &client, &a.id).await;

    // Ten copies of one reservation, and five of one that cannot be served.
    let copies = concurrently((0..15).map(|i| {
        let mut client = client.clone();
        let (a, b, c) = (a.id.clone(), b.id.clone(), c.id.clone());
        let id = if i < 10 {
            copied.clone()
        } else {
            short.clone()
        };
        async move {
            if i < 10 {
                reserve(&mut client, &id, &[(&b, 3), (&a, 2)]).await
            } else {
                reserve(&mut client, &id, &[(&c, 11)]).await
            }
        }
    }));
    held.go(Duration::from_millis(500)).await;
    let answers = copies.await;

    let served: Vec<_> = answers[..10]
        .iter()
        .map(|answer| answer.as_ref().expect("every copy succeeds"))
        .collect();
    assert!(served.iter().all(|answer| *answer == served[0]));
    assert_eq!(served[0].lines.len(), 2);
    for refused in &answers[10..] {
        let status = refused.as_ref().unwrap_err();
        assert_eq!(reason_of(status), reason::INSUFFICIENT_STOCK);
        assert_eq!(metadata_of(status, meta::AVAILABLE), "10");
    }
    assert_eq!(stock_of(&mut client, &a.id).await, 10 - 1 - 2);
    assert_eq!(stock_of(&mut client, &b.id).await, 10 - 3);
    assert_eq!(stock_of(&mut client, &c.id).await, 10);
    // The refused id is free: released now, it is merely a tombstone.
    assert!(!release(&mut client, &short).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_deadline_passed_while_queued_takes_no_stock() {
    let (catalog, mut client) = catalog_and_client().await;
    let a = create_product(&mut client, "A", "1.00", 10).await;
    let b = create_product(&mut client, "B", "1.00", 10).await;

    let held = Held::up(&catalog.service, &client, &a.id).await;

    let gave_up = new_id().to_string();
    let mut request = tonic::Request::new(proto::catalog::v1::ReserveInventoryRequest {
        reservation_id: gave_up.clone(),
        items: vec![proto::catalog::v1::ReservationItem {
            product_id: b.id.clone(),
            quantity: 4,
        }],
    });
    request.set_timeout(Duration::from_millis(100));
    let status = client.reserve_inventory(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    held.go(Duration::ZERO).await;

    // A call after it in the queue is served, so the dropped one was passed.
    reserve(&mut client, &new_id().to_string(), &[(&b.id, 1)])
        .await
        .unwrap();
    assert_eq!(stock_of(&mut client, &b.id).await, 9);
    assert!(!release(&mut client, &gave_up).await.unwrap());
}
