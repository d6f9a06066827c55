//! ApplyPayment: every transition of the payment rules (unpaid -> paid,
//! unpaid -> failed, failed -> paid; paid is final; the same status again is a
//! no-op), only pending orders take payments, a repeated event id is a no-op,
//! the same id for another order or status is refused (ALREADY_EXISTS,
//! EVENT_ID_REUSED), and the reconciler forgets event ids past their
//! retention.

use proto::{
    errors::{meta, reason},
    order::v1::{Order, OrderStatus, PaymentStatus},
};
use tests::{
    RunningService,
    catalog::{
        catalog_client, create_product, metadata_of, reason_of, spawn_catalog, violated_fields,
    },
    metric_sample,
    order::{
        OrderClient, create_order, get_order, order_client, orders_database, pay, set_status,
        spawn_order,
    },
};
use tonic::{Code, Status};

struct World {
    _catalog: RunningService,
    _orders: RunningService,
    client: OrderClient,
    product_id: String,
}

async fn world() -> World {
    let catalog = spawn_catalog().await;
    let orders = spawn_order(&catalog.url()).await;
    let mut catalog_client = catalog_client(&catalog).await;
    let product = create_product(&mut catalog_client, "Paid thing", "19.99", 1_000).await;
    World {
        client: order_client(&orders).await,
        _catalog: catalog,
        _orders: orders,
        product_id: product.id,
    }
}

impl World {
    async fn new_order(&mut self) -> Order {
        create_order(&mut self.client, 31, &[(&self.product_id, 1)], None)
            .await
            .unwrap()
    }
}

#[track_caller]
fn assert_payment_refused(status: &Status, from: &str, to: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(status), reason::INVALID_PAYMENT_TRANSITION);
    assert_eq!(metadata_of(status, meta::FROM), from);
    assert_eq!(metadata_of(status, meta::TO), to);
}

#[track_caller]
fn assert_not_pending(status: &Status, current: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(status), reason::ORDER_NOT_PENDING);
    assert_eq!(metadata_of(status, meta::STATUS), current);
    assert!(status.message().contains("pending"), "{}", status.message());
}

#[tokio::test]
async fn unpaid_to_paid_and_paid_is_final() {
    let mut w = world().await;
    let order = w.new_order().await;
    assert_eq!(order.payment_status, PaymentStatus::Unpaid as i32);

    let paid = pay(&mut w.client, &order.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
    assert_eq!(paid.status, OrderStatus::Pending as i32);
    let at = |order: &Order| proto::time::from_timestamp(order.updated_at.as_ref().unwrap());
    assert!(at(&paid) > at(&order), "a change moves updated_at");

    // The same status again: success, nothing changes (not even updated_at).
    let again = pay(&mut w.client, &order.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    assert_eq!(again, paid);

    // paid -> failed is refused.
    let refused = pay(&mut w.client, &order.id, PaymentStatus::Failed, None)
        .await
        .unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
    assert_eq!(get_order(&mut w.client, &order.id).await.unwrap(), paid);
}

#[tokio::test]
async fn unpaid_to_failed_then_failed_to_paid() {
    let mut w = world().await;
    let order = w.new_order().await;

    let failed = pay(&mut w.client, &order.id, PaymentStatus::Failed, None)
        .await
        .unwrap();
    assert_eq!(failed.payment_status, PaymentStatus::Failed as i32);
    let again = pay(&mut w.client, &order.id, PaymentStatus::Failed, None)
        .await
        .unwrap();
    assert_eq!(again, failed);

    // A retried payment succeeded.
    let paid = pay(&mut w.client, &order.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
    assert_eq!(paid.status, OrderStatus::Pending as i32);
}

#[tokio::test]
async fn only_paid_or_failed_can_be_applied() {
    let mut w = world().await;
    let order = w.new_order().await;
    for status in [PaymentStatus::Unpaid, PaymentStatus::Unspecified] {
        let refused = pay(&mut w.client, &order.id, status, None)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), ["payment_status"]);
    }
    let malformed = pay(&mut w.client, "not-an-id", PaymentStatus::Paid, Some(""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&malformed), ["order_id", "event_id"]);
    assert_eq!(
        get_order(&mut w.client, &order.id)
            .await
            .unwrap()
            .payment_status,
        PaymentStatus::Unpaid as i32
    );
}

#[tokio::test]
async fn orders_that_are_not_pending_take_no_payment() {
    let mut w = world().await;
    let completed = w.new_order().await;
    set_status(&mut w.client, &completed.id, OrderStatus::Completed)
        .await
        .unwrap();
    let canceled = w.new_order().await;
    set_status(&mut w.client, &canceled.id, OrderStatus::Canceled)
        .await
        .unwrap();

    for (order, current) in [(&completed, "completed"), (&canceled, "canceled")] {
        for to in [PaymentStatus::Paid, PaymentStatus::Failed] {
            let refused = pay(&mut w.client, &order.id, to, Some("evt-not-pending"))
                .await
                .unwrap_err();
            assert_not_pending(&refused, current);
        }
        assert_eq!(
            get_order(&mut w.client, &order.id)
                .await
                .unwrap()
                .payment_status,
            PaymentStatus::Unpaid as i32
        );
    }
    // A paid order that was completed still refuses, even the same status.
    let paid = w.new_order().await;
    pay(&mut w.client, &paid.id, PaymentStatus::Paid, None)
        .await
        .unwrap();
    set_status(&mut w.client, &paid.id, OrderStatus::Completed)
        .await
        .unwrap();
    let refused = pay(&mut w.client, &paid.id, PaymentStatus::Paid, None)
        .await
        .unwrap_err();
    assert_not_pending(&refused, "completed");
}

#[tokio::test]
async fn a_repeated_event_is_a_no_op() {
    let mut w = world().await;
    let order = w.new_order().await;

    let failed = pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Failed,
        Some("evt-1"),
    )
    .await
    .unwrap();
    assert_eq!(failed.payment_status, PaymentStatus::Failed as i32);
    let paid = pay(&mut w.client, &order.id, PaymentStatus::Paid, Some("evt-2"))
        .await
        .unwrap();
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);

    // evt-1 delivered again, late: not a paid -> failed refusal, a no-op that
    // returns the order as it is.
    let replayed = pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Failed,
        Some("evt-1"),
    )
    .await
    .unwrap();
    assert_eq!(replayed, paid);
    // A new event with that status is refused by the rules.
    let refused = pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Failed,
        Some("evt-3"),
    )
    .await
    .unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");

    // Seen events stay no-ops after the order completes; new ones are refused.
    set_status(&mut w.client, &order.id, OrderStatus::Completed)
        .await
        .unwrap();
    let replayed = pay(&mut w.client, &order.id, PaymentStatus::Paid, Some("evt-2"))
        .await
        .unwrap();
    assert_eq!(replayed.status, OrderStatus::Completed as i32);
    assert_eq!(replayed.payment_status, PaymentStatus::Paid as i32);
    let refused = pay(&mut w.client, &order.id, PaymentStatus::Paid, Some("evt-4"))
        .await
        .unwrap_err();
    assert_not_pending(&refused, "completed");
}

#[tokio::test]
async fn a_refused_event_is_not_remembered() {
    let mut w = world().await;
    let first = w.new_order().await;
    let second = w.new_order().await;
    pay(&mut w.client, &first.id, PaymentStatus::Paid, None)
        .await
        .unwrap();

    // Refused on the first order: the event id is not taken...
    let refused = pay(
        &mut w.client,
        &first.id,
        PaymentStatus::Failed,
        Some("evt-x"),
    )
    .await
    .unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
    // ...so it is applied when it comes for an order that takes it.
    let applied = pay(
        &mut w.client,
        &second.id,
        PaymentStatus::Failed,
        Some("evt-x"),
    )
    .await
    .unwrap();
    assert_eq!(applied.payment_status, PaymentStatus::Failed as i32);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_once() {
    let mut w = world().await;
    for round in 0..20 {
        let order = w.new_order().await;
        let event = format!("evt-{round}");
        let (mut one, mut two) = (w.client.clone(), w.client.clone());
        let (first, second) = tokio::join!(
            pay(&mut one, &order.id, PaymentStatus::Paid, Some(&event)),
            pay(&mut two, &order.id, PaymentStatus::Paid, Some(&event)),
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first, second, "round {round}");
        assert_eq!(first.payment_status, PaymentStatus::Paid as i32);
    }
}

#[track_caller]
fn assert_event_id_reused(status: &Status) {
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(reason_of(status), reason::EVENT_ID_REUSED);
    assert!(
        status
            .message()
            .contains("already used for another delivery"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn an_event_id_reused_for_another_order_or_status_is_refused() {
    let mut w = world().await;
    let a = w.new_order().await;
    let b = w.new_order().await;
    pay(&mut w.client, &a.id, PaymentStatus::Paid, Some("evt-a"))
        .await
        .unwrap();

    // Another order, another status, or both: refused, nothing applied.
    for (order, status) in [
        (&b, PaymentStatus::Paid),
        (&b, PaymentStatus::Failed),
        (&a, PaymentStatus::Failed),
    ] {
        let refused = pay(&mut w.client, &order.id, status, Some("evt-a"))
            .await
            .unwrap_err();
        assert_event_id_reused(&refused);
    }
    let b_now = get_order(&mut w.client, &b.id).await.unwrap();
    assert_eq!(b_now, b, "b untouched");
    // The same delivery again is still a no-op.
    let again = pay(&mut w.client, &a.id, PaymentStatus::Paid, Some("evt-a"))
        .await
        .unwrap();
    assert_eq!(again.payment_status, PaymentStatus::Paid as i32);
    // A refusal records nothing: b's event under its own id applies.
    let paid = pay(&mut w.client, &b.id, PaymentStatus::Paid, Some("evt-b"))
        .await
        .unwrap();
    assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_id_for_two_orders_apply_one() {
    let mut w = world().await;
    for round in 0..10 {
        let (a, b) = (w.new_order().await, w.new_order().await);
        let event = format!("evt-race-{round}");
        let (mut one, mut two) = (w.client.clone(), w.client.clone());
        let (first, second) = tokio::join!(
            pay(&mut one, &a.id, PaymentStatus::Paid, Some(&event)),
            pay(&mut two, &b.id, PaymentStatus::Paid, Some(&event)),
        );
        let (applied, refused) = match (first, second) {
            (Ok(_), Err(refused)) => (&a, refused),
            (Err(refused), Ok(_)) => (&b, refused),
            other => panic!("round {round}: exactly one applies, got {other:?}"),
        };
        assert_event_id_reused(&refused);
        for order in [&a, &b] {
            let expected = if order.id == applied.id {
                PaymentStatus::Paid
            } else {
                PaymentStatus::Unpaid
            };
            let now = get_order(&mut w.client, &order.id).await.unwrap();
            assert_eq!(now.payment_status, expected as i32, "round {round}");
        }
    }
}

#[tokio::test]
async fn events_recorded_before_statuses_were_kept_are_judged_by_order() {
    let mut w = world().await;
    let a = w.new_order().await;
    let b = w.new_order().await;
    // A row as the previous version wrote it: no payment status.
    let mut db = orders_database(&w._orders).await;
    sqlx::query("INSERT INTO payment_events (event_id, order_id) VALUES ('evt-legacy', $1::uuid)")
        .bind(&a.id)
        .execute(&mut db)
        .await
        .unwrap();
    let repeat = pay(
        &mut w.client,
        &a.id,
        PaymentStatus::Failed,
        Some("evt-legacy"),
    )
    .await
    .unwrap();
    assert_eq!(repeat, a, "a repeat: nothing applied");
    let refused = pay(
        &mut w.client,
        &b.id,
        PaymentStatus::Paid,
        Some("evt-legacy"),
    )
    .await
    .unwrap_err();
    assert_event_id_reused(&refused);
}

#[tokio::test]
async fn payment_events_past_the_retention_are_pruned_by_the_reconciler() {
    let mut w = tests::order::world().await;
    let product = create_product(&mut w.catalog_client, "Pruned", "1.00", 10).await;
    let order = create_order(&mut w.client, 5, &[(&product.id, 1)], None)
        .await
        .unwrap();
    pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Failed,
        Some("evt-old"),
    )
    .await
    .unwrap();
    pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Paid,
        Some("evt-recent"),
    )
    .await
    .unwrap();
    let mut db = orders_database(&w.orders.service).await;
    let age = |event: &'static str, days: i32| {
        sqlx::query(
            "UPDATE payment_events SET created_at = now() - make_interval(days => $2) \
             WHERE event_id = $1",
        )
        .bind(event)
        .bind(days)
    };
    // 29 days: kept; 31 days: past the default retention of 30.
    age("evt-recent", 29).execute(&mut db).await.unwrap();
    age("evt-old", 31).execute(&mut db).await.unwrap();
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!(report.events_pruned, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM payment_events")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(left, ["evt-recent"]);

    // Many at once: pruned in batches, all in one pass.
    sqlx::query(
        "INSERT INTO payment_events (event_id, order_id, payment_status, created_at) \
         SELECT 'evt-bulk-' || n, $1::uuid, 'paid', now() - interval '40 days' \
         FROM generate_series(1, 2500) AS n",
    )
    .bind(&order.id)
    .execute(&mut db)
    .await
    .unwrap();
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!(report.events_pruned, 2_500);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let again = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!(again.events_pruned, 0);

    // Counted like the other reconciler actions.
    let metrics = format!("http://{}/metrics", w.orders.admin_addr);
    let pruned = metric_sample(
        &tests::gateway::http_client(),
        &metrics,
        r#"order_reconciler_actions_total{action="pruned_payment_events"}"#,
    )
    .await;
    assert_eq!(pruned, Some(2_501.0));

    // A forgotten id is a new event again, judged by the rules.
    let refused = pay(
        &mut w.client,
        &order.id,
        PaymentStatus::Failed,
        Some("evt-old"),
    )
    .await
    .unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
}
