//! ApplyPayment: every transition of the payment rules (unpaid -> paid,
//! unpaid -> failed, failed -> paid; paid is final; the same status again is a
//! no-op), only pending orders take payments, a repeated event id is a no-op,
//! the same id for another order or status is refused (ALREADY_EXISTS,
//! EVENT_ID_REUSED), and the reconciler forgets event ids past their
//! retention.

use proto::{
    errors::{meta, reason},
    order::v1::{
        Order, OrderStatus,
        PaymentStatus::{self, Failed, Paid, Unpaid},
    },
};
use tests::{
    catalog::{metadata_of, reason_of, violated_fields},
    metric_sample,
    order::{World, pay, world},
};
use tonic::{Code, Status};

/// A world with a product to order, and a new pending order of it.
async fn world_with_an_order() -> (World, String, Order) {
    let mut w = world().await;
    let product = w.product("Paid thing", "19.99", 1_000).await;
    let order = w.order(31, &product, 1).await;
    (w, product, order)
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

/// The order's payment status as GetOrder shows it.
async fn payment_of(w: &mut World, order: &Order) -> i32 {
    w.get(&order.id).await.unwrap().payment_status
}

#[tokio::test]
async fn unpaid_to_paid_and_paid_is_final() {
    let (mut w, _, order) = world_with_an_order().await;
    assert_eq!(order.payment_status, Unpaid as i32);

    let paid = w.pay(&order.id, Paid, None).await.unwrap();
    assert_eq!(paid.payment_status, Paid as i32);
    assert_eq!(paid.status, OrderStatus::Pending as i32);
    let at = |order: &Order| proto::time::from_timestamp(order.updated_at.as_ref().unwrap());
    assert!(at(&paid) > at(&order), "a change moves updated_at");

    // The same status again: success, nothing changes (not even updated_at).
    let again = w.pay(&order.id, Paid, None).await.unwrap();
    assert_eq!(again, paid);

    // paid -> failed is refused.
    let refused = w.pay(&order.id, Failed, None).await.unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
    assert_eq!(w.get(&order.id).await.unwrap(), paid);
}

#[tokio::test]
async fn unpaid_to_failed_then_failed_to_paid() {
    let (mut w, _, order) = world_with_an_order().await;

    let failed = w.pay(&order.id, Failed, None).await.unwrap();
    assert_eq!(failed.payment_status, Failed as i32);
    let again = w.pay(&order.id, Failed, None).await.unwrap();
    assert_eq!(again, failed);

    // A retried payment succeeded.
    let paid = w.pay(&order.id, Paid, None).await.unwrap();
    assert_eq!(paid.payment_status, Paid as i32);
    assert_eq!(paid.status, OrderStatus::Pending as i32);
}

#[tokio::test]
async fn only_paid_or_failed_can_be_applied() {
    let (mut w, _, order) = world_with_an_order().await;
    for status in [Unpaid, PaymentStatus::Unspecified] {
        let refused = w.pay(&order.id, status, None).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), ["payment_status"]);
    }
    let malformed = w.pay("not-an-id", Paid, Some("")).await.unwrap_err();
    assert_eq!(violated_fields(&malformed), ["order_id", "event_id"]);
    assert_eq!(payment_of(&mut w, &order).await, Unpaid as i32);
}

#[tokio::test]
async fn orders_that_are_not_pending_take_no_payment() {
    let (mut w, product, completed) = world_with_an_order().await;
    w.set_status(&completed.id, OrderStatus::Completed)
        .await
        .unwrap();
    let canceled = w.order(31, &product, 1).await;
    w.set_status(&canceled.id, OrderStatus::Canceled)
        .await
        .unwrap();

    for (order, current) in [(&completed, "completed"), (&canceled, "canceled")] {
        for to in [Paid, Failed] {
            let refused = w
                .pay(&order.id, to, Some("evt-not-pending"))
                .await
                .unwrap_err();
            assert_not_pending(&refused, current);
        }
        assert_eq!(payment_of(&mut w, order).await, Unpaid as i32);
    }
    // A paid order that was completed still refuses, even the same status.
    let paid = w.order(31, &product, 1).await;
    w.pay(&paid.id, Paid, None).await.unwrap();
    w.set_status(&paid.id, OrderStatus::Completed)
        .await
        .unwrap();
    let refused = w.pay(&paid.id, Paid, None).await.unwrap_err();
    assert_not_pending(&refused, "completed");
}

#[tokio::test]
async fn a_repeated_event_is_a_no_op() {
    let (mut w, _, order) = world_with_an_order().await;

    let failed = w.pay(&order.id, Failed, Some("evt-1")).await.unwrap();
    assert_eq!(failed.payment_status, Failed as i32);
    let paid = w.pay(&order.id, Paid, Some("evt-2")).await.unwrap();
    assert_eq!(paid.payment_status, Paid as i32);

    // evt-1 delivered again, late: not a paid -> failed refusal, a no-op that
    // returns the order as it is.
    let replayed = w.pay(&order.id, Failed, Some("evt-1")).await.unwrap();
    assert_eq!(replayed, paid);
    // A new event with that status is refused by the rules.
    let refused = w.pay(&order.id, Failed, Some("evt-3")).await.unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");

    // Seen events stay no-ops after the order completes; new ones are refused.
    w.set_status(&order.id, OrderStatus::Completed)
        .await
        .unwrap();
    let replayed = w.pay(&order.id, Paid, Some("evt-2")).await.unwrap();
    assert_eq!(replayed.status, OrderStatus::Completed as i32);
    assert_eq!(replayed.payment_status, Paid as i32);
    let refused = w.pay(&order.id, Paid, Some("evt-4")).await.unwrap_err();
    assert_not_pending(&refused, "completed");
}

#[tokio::test]
async fn a_refused_event_is_not_remembered() {
    let (mut w, product, first) = world_with_an_order().await;
    let second = w.order(31, &product, 1).await;
    w.pay(&first.id, Paid, None).await.unwrap();

    // Refused on the first order: the event id is not taken...
    let refused = w.pay(&first.id, Failed, Some("evt-x")).await.unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
    // ...so it is applied when it comes for an order that takes it.
    let applied = w.pay(&second.id, Failed, Some("evt-x")).await.unwrap();
    assert_eq!(applied.payment_status, Failed as i32);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_once() {
    let (mut w, product, _) = world_with_an_order().await;
    for event in (0..20).map(|round| format!("evt-{round}")) {
        let order = w.order(31, &product, 1).await;
        let (mut one, mut two) = (w.client.clone(), w.client.clone());
        let (first, second) = tokio::join!(
            pay(&mut one, &order.id, Paid, Some(&event)),
            pay(&mut two, &order.id, Paid, Some(&event)),
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first, second, "{event}");
        assert_eq!(first.payment_status, Paid as i32);
    }
}

#[tokio::test]
async fn an_event_id_reused_for_another_order_or_status_is_refused() {
    let (mut w, product, a) = world_with_an_order().await;
    let b = w.order(31, &product, 1).await;
    w.pay(&a.id, Paid, Some("evt-a")).await.unwrap();

    // Another order, another status, or both: refused, nothing applied.
    for (order, status) in [(&b, Paid), (&b, Failed), (&a, Failed)] {
        let refused = w.pay(&order.id, status, Some("evt-a")).await.unwrap_err();
        assert_event_id_reused(&refused);
    }
    assert_eq!(w.get(&b.id).await.unwrap(), b, "b untouched");
    // The same delivery again is still a no-op.
    let again = w.pay(&a.id, Paid, Some("evt-a")).await.unwrap();
    assert_eq!(again.payment_status, Paid as i32);
    // A refusal records nothing: b's event under its own id applies.
    let paid = w.pay(&b.id, Paid, Some("evt-b")).await.unwrap();
    assert_eq!(paid.payment_status, Paid as i32);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_id_for_two_orders_apply_one() {
    let (mut w, product, _) = world_with_an_order().await;
    for round in 0..10 {
        let (a, b) = (
            w.order(31, &product, 1).await,
            w.order(31, &product, 1).await,
        );
        let event = format!("evt-race-{round}");
        let (mut one, mut two) = (w.client.clone(), w.client.clone());
        let (first, second) = tokio::join!(
            pay(&mut one, &a.id, Paid, Some(&event)),
            pay(&mut two, &b.id, Paid, Some(&event)),
        );
        let (applied, refused) = match (first, second) {
            (Ok(_), Err(refused)) => (&a, refused),
            (Err(refused), Ok(_)) => (&b, refused),
            other => panic!("round {round}: exactly one applies, got {other:?}"),
        };
        assert_event_id_reused(&refused);
        for order in [&a, &b] {
            let expected = if order.id == applied.id { Paid } else { Unpaid };
            assert_eq!(
                payment_of(&mut w, order).await,
                expected as i32,
                "round {round}"
            );
        }
    }
}

#[tokio::test]
async fn events_recorded_before_statuses_were_kept_are_judged_by_order() {
    let (mut w, product, a) = world_with_an_order().await;
    let b = w.order(31, &product, 1).await;
    // A row as the previous version wrote it: no payment status.
    sqlx::query("INSERT INTO payment_events (event_id, order_id) VALUES ('evt-legacy', $1::uuid)")
        .bind(&a.id)
        .execute(&mut w.orders_db().await)
        .await
        .unwrap();
    let repeat = w.pay(&a.id, Failed, Some("evt-legacy")).await.unwrap();
    assert_eq!(repeat, a, "a repeat: nothing applied");
    let refused = w.pay(&b.id, Paid, Some("evt-legacy")).await.unwrap_err();
    assert_event_id_reused(&refused);
}

#[tokio::test]
async fn payment_events_past_the_retention_are_pruned_by_the_reconciler() {
    let (mut w, _, order) = world_with_an_order().await;
    w.pay(&order.id, Failed, Some("evt-old")).await.unwrap();
    w.pay(&order.id, Paid, Some("evt-recent")).await.unwrap();
    let mut db = w.orders_db().await;
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
    assert_eq!(w.reconcile().await.events_pruned, 1);
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
    assert_eq!(w.reconcile().await.events_pruned, 2_500);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(w.reconcile().await.events_pruned, 0);

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
    let refused = w.pay(&order.id, Failed, Some("evt-old")).await.unwrap_err();
    assert_payment_refused(&refused, "paid", "failed");
}
