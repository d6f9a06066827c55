//! `WatchOrderEvents` over real gRPC on real PostgreSQL: every change of a
//! visible order is an event, numbered one by one in commit order; a consumer
//! that resumes from the last sequence it processed misses none and sees none
//! twice, across replicas, across its own restarts, and when a transaction
//! that wrote its event first commits last.

use std::{collections::HashMap, time::Duration};

use futures::{StreamExt, stream};
use proto::order::v1::{
    CancelReason, OrderEvent, OrderEventType, OrderStatus, PaymentStatus, WatchOrderEventsRequest,
};
use tests::{
    TestConfig,
    order::{OrderClient, create_order, order_client, order_config, pay, set_status, start_order},
};
use tonic::Code;

/// Opens a stream of the events after `after`.
async fn watch(
    client: &mut OrderClient,
    after: i64,
) -> Result<tonic::Streaming<OrderEvent>, tonic::Status> {
    client
        .watch_order_events(WatchOrderEventsRequest {
            after_sequence: after,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The next `n` events of a stream, within a generous deadline.
async fn next_events(stream: &mut tonic::Streaming<OrderEvent>, n: usize) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| panic!("no event after {} of {n}", events.len()))
            .expect("stream healthy")
            .expect("stream open");
        events.push(event);
    }
    events
}

fn kind(event: &OrderEvent) -> OrderEventType {
    OrderEventType::try_from(event.r#type).expect("known event type")
}

#[tokio::test]
async fn every_change_is_an_event_with_the_state_it_left_and_a_consumer_resumes_where_it_stopped() {
    let mut world = tests::order::world().await;
    let product = world.product("Lamp", "12.50", 10).await;
    let first = world.order(7, &product, 2).await;
    world
        .pay(&first.id, PaymentStatus::Failed, None)
        .await
        .unwrap();
    world
        .pay(&first.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    // A repeated request changes nothing and announces nothing.
    world
        .pay(&first.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    world
        .set_status(&first.id, OrderStatus::Completed)
        .await
        .unwrap();
    let second = world.order(8, &product, 1).await;
    world
        .set_status(&second.id, OrderStatus::Canceled)
        .await
        .unwrap();
    world
        .set_status(&second.id, OrderStatus::Canceled)
        .await
        .unwrap();

    let mut stream = watch(&mut world.client, 0).await.unwrap();
    let events = next_events(&mut stream, 6).await;
    let seen: Vec<(i64, &str, OrderEventType)> = events
        .iter()
        .map(|e| (e.sequence, e.order_id.as_str(), kind(e)))
        .collect();
    assert_eq!(
        seen,
        [
            (1, first.id.as_str(), OrderEventType::Created),
            (2, first.id.as_str(), OrderEventType::PaymentFailed),
            (3, first.id.as_str(), OrderEventType::Paid),
            (4, first.id.as_str(), OrderEventType::Completed),
            (5, second.id.as_str(), OrderEventType::Created),
            (6, second.id.as_str(), OrderEventType::Canceled),
        ]
    );
    // Each carries the order's state as its change left it.
    let paid = &events[2];
    assert_eq!(paid.status, OrderStatus::Pending as i32);
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
    assert_eq!(paid.customer_id, 7);
    assert_eq!(
        tests::order::amount(paid.total_price.as_ref()),
        tests::order::dec("25.00")
    );
    assert_eq!(paid.cancel_reason, None);
    let canceled = &events[5];
    assert_eq!(canceled.status, OrderStatus::Canceled as i32);
    assert_eq!(canceled.cancel_reason, Some(CancelReason::Requested as i32));
    assert!(canceled.occurred_at.is_some());

    // A live stream gets the next change as it happens.
    let third = world.order(9, &product, 1).await;
    let live = next_events(&mut stream, 1).await;
    assert_eq!(
        (live[0].sequence, live[0].order_id.as_str(), kind(&live[0])),
        (7, third.id.as_str(), OrderEventType::Created)
    );
    drop(stream);

    // Resuming from the middle gives exactly the rest.
    let mut resumed = watch(&mut world.client, 4).await.unwrap();
    let rest: Vec<i64> = next_events(&mut resumed, 3)
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(rest, [5, 6, 7]);

    // A sequence the log never gave is refused, saying where it ends.
    let refused = watch(&mut world.client, 99).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("the last is 7"), "{refused:?}");
}

#[tokio::test]
async fn a_resume_from_before_the_retention_is_refused_and_says_where_to_resume() {
    let mut world =
        tests::order::world_with(|config| config.order_event_retention = Duration::from_secs(3600))
            .await;
    let product = world.product("Lamp", "1.00", 10).await;
    for customer in 1..=3 {
        world.order(customer, &product, 1).await;
    }
    // Wait for the sequencer, then age the first two events past the
    // retention and let the reconciler prune them.
    let mut stream = watch(&mut world.client, 0).await.unwrap();
    next_events(&mut stream, 3).await;
    let mut db = world.orders_db().await;
    sqlx::query(
        "UPDATE order_events SET occurred_at = now() - interval '2 hours' WHERE sequence <= 2",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let report = world.reconcile().await;
    assert_eq!(report.order_events_pruned, 2);

    let refused = watch(&mut world.client, 1).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange);
    assert!(refused.message().contains("resume from 2"), "{refused:?}");
    let mut kept = watch(&mut world.client, 2).await.unwrap();
    assert_eq!(next_events(&mut kept, 1).await[0].sequence, 3);
}

#[tokio::test]
async fn an_event_written_first_and_committed_last_gets_a_later_number_and_is_not_skipped() {
    let mut world = tests::order::world().await;
    let product = world.product("Lamp", "1.00", 10).await;
    let early = world.order(1, &product, 1).await;
    let mut stream = watch(&mut world.client, 0).await.unwrap();
    assert_eq!(next_events(&mut stream, 1).await[0].sequence, 1);

    // A writer that records its event (taking the lower id) and stalls before
    // it commits. No service path can be paused between the two, so the
    // stalled writer is made by hand, with the statement a change runs.
    let mut slow = world.orders_db().await;
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    sqlx::query(
        "INSERT INTO order_events \
             (order_id, kind, status, payment_status, cancel_reason, customer_id, total_price) \
         SELECT id, 'paid', status, 'paid', cancel_reason, customer_id, total_price \
         FROM orders WHERE id = $1::uuid",
    )
    .bind(&early.id)
    .execute(&mut slow)
    .await
    .unwrap();

    // Meanwhile a later change commits and is numbered, and the consumer
    // processes it.
    let late = world.order(2, &product, 1).await;
    let next = next_events(&mut stream, 1).await;
    assert_eq!(
        (next[0].sequence, next[0].order_id.as_str()),
        (2, late.id.as_str())
    );

    // The stalled writer commits: its event is numbered after what was
    // already given, and reaches both the live consumer and one that
    // resumes from the last sequence it processed.
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let stalled = next_events(&mut stream, 1).await;
    assert_eq!(
        (
            stalled[0].sequence,
            stalled[0].order_id.as_str(),
            kind(&stalled[0])
        ),
        (3, early.id.as_str(), OrderEventType::Paid)
    );
    let mut resumed = watch(&mut world.client, 2).await.unwrap();
    assert_eq!(next_events(&mut resumed, 1).await[0].sequence, 3);
}

/// Orders in the concurrency test; each goes through four changes.
const ORDERS: usize = 250;
const CHANGES_PER_ORDER: usize = 4;
const CONSUMER_KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_killed_five_times_during_1000_concurrent_changes_sees_every_event_once_in_order()
 {
    // Two order-service replicas on one database, in front of one catalog.
    let catalog = tests::catalog::spawn_catalog().await;
    let first = order_config(&catalog.url());
    let second = TestConfig {
        config: first.config.clone(),
        database: first.database.clone(),
    };
    let replica_a = start_order(first).await;
    let replica_b = start_order(second).await;
    let mut catalog_client = tests::catalog::catalog_client(&catalog).await;
    let product =
        tests::catalog::create_product(&mut catalog_client, "Lamp", "3.00", 1_000_000).await;
    let clients = [
        order_client(&replica_a.service).await,
        order_client(&replica_b.service).await,
    ];

    // The consumer: reads, processes (records) each event, and is killed
    // (its stream dropped mid-flow) five times; each time it resumes, on the
    // other replica, from the last sequence it processed.
    let total = ORDERS * CHANGES_PER_ORDER;
    let consumer = {
        let clients = clients.clone();
        tokio::spawn(async move {
            let mut processed: Vec<OrderEvent> = Vec::with_capacity(total);
            let mut kills = 0;
            let mut replica = 0;
            while processed.len() < total {
                let after = processed.last().map_or(0, |e| e.sequence);
                let mut client = clients[replica % 2].clone();
                replica += 1;
                let mut stream = watch(&mut client, after).await.expect("watch");
                // Killed after a share of the events, while changes go on.
                let quota = if kills < CONSUMER_KILLS {
                    total / (CONSUMER_KILLS + 2)
                } else {
                    usize::MAX
                };
                let mut taken = 0;
                while taken < quota && processed.len() < total {
                    let event = tokio::time::timeout(Duration::from_secs(60), stream.message())
                        .await
                        .expect("an event within 60 s")
                        .expect("stream healthy")
                        .expect("stream open");
                    processed.push(event);
                    taken += 1;
                }
                if taken == quota {
                    kills += 1;
                }
                drop(stream);
            }
            (processed, kills)
        })
    };

    // 1,000 changes: 250 orders, each created, its payment failed, paid,
    // then completed or canceled; orders run concurrently, spread over both
    // replicas.
    let expected: HashMap<String, Vec<OrderEventType>> = stream::iter(0..ORDERS)
        .map(|n| {
            let mut client = clients[n % 2].clone();
            let product = product.id.clone();
            async move {
                let order = create_order(&mut client, n as i64 + 1, &[(&product, 1)], None)
                    .await
                    .expect("order created");
                pay(&mut client, &order.id, PaymentStatus::Failed, None)
                    .await
                    .unwrap();
                pay(&mut client, &order.id, PaymentStatus::Paid, None)
                    .await
                    .unwrap();
                let (to, last) = if n % 3 == 0 {
                    (OrderStatus::Canceled, OrderEventType::Canceled)
                } else {
                    (OrderStatus::Completed, OrderEventType::Completed)
                };
                set_status(&mut client, &order.id, to).await.unwrap();
                let kinds = vec![
                    OrderEventType::Created,
                    OrderEventType::PaymentFailed,
                    OrderEventType::Paid,
                    last,
                ];
                (order.id, kinds)
            }
        })
        .buffer_unordered(48)
        .collect()
        .await;

    let (processed, kills) = tokio::time::timeout(Duration::from_secs(120), consumer)
        .await
        .expect("the consumer gets every event")
        .unwrap();
    assert_eq!(kills, CONSUMER_KILLS);
    // Exactly once, in order, none missing: 1, 2, ..., 1000.
    let sequences: Vec<i64> = processed.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=total as i64).collect::<Vec<_>>());
    // Every change, each order's in the order they happened.
    let mut seen: HashMap<String, Vec<OrderEventType>> = HashMap::new();
    for event in &processed {
        seen.entry(event.order_id.clone())
            .or_default()
            .push(kind(event));
    }
    assert_eq!(seen, expected);

    // Nothing more is pending: a new consumer from the end waits, and the
    // log says it ends at 1,000.
    let mut client = clients[0].clone();
    let refused = watch(&mut client, total as i64 + 1).await.unwrap_err();
    assert!(
        refused.message().contains(&format!("the last is {total}")),
        "{refused:?}"
    );
}
