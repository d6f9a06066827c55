//! CreateOrder with an idempotency key: the same request again, in sequence or
//! at once, gives one order and one reservation; another request under the
//! same key is refused; a definite refusal is replayed; an unknown outcome
//! frees the key for a retry; keys are kept a day, then pruned.

use futures::future::join_all;
use proto::{errors::reason, order::v1::OrderStatus};
use tests::{
    catalog::{create_product, reason_of, stock_of, violated_fields},
    order::{ProxyMode, World, create_order, orders_database, set_status, world, world_with},
};
use tonic::{Code, Status};

/// Orders written to the database, hidden ones included.
async fn orders_written(w: &World) -> i64 {
    let mut db = orders_database(&w.orders.service).await;
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

/// The one unit of a product asked for twice under `key`: refused for
/// stock. Returns the product's id and the refusal.
async fn refused_for_stock(w: &mut World, key: &str) -> (String, Status) {
    let product = create_product(&mut w.catalog_client, "Rare", "5.00", 1).await;
    let refused = create_order(&mut w.client, 8, &[(&product.id, 2)], Some(key))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&refused), reason::INSUFFICIENT_STOCK);
    (product.id, refused)
}

/// The same request again is `refused` again (code, message, detail bytes),
/// and the replay took no stock and wrote no order.
async fn assert_replayed(w: &mut World, key: &str, product_id: &str, refused: &Status) {
    let replayed = create_order(&mut w.client, 8, &[(product_id, 2)], Some(key))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), refused.code());
    assert_eq!(replayed.message(), refused.message());
    assert_eq!(replayed.details(), refused.details());
    assert_eq!(stock_of(&mut w.catalog_client, product_id).await, 1);
    assert_eq!(orders_written(w).await, 1);
}

#[tokio::test]
async fn a_repeated_request_returns_the_same_order_and_reserves_nothing_more() {
    let mut w = world().await;
    let a = create_product(&mut w.catalog_client, "A", "10.00", 20).await;
    let b = create_product(&mut w.catalog_client, "B", "2.50", 20).await;

    let first = create_order(&mut w.client, 8, &[(&a.id, 2), (&b.id, 1)], Some("key-1"))
        .await
        .unwrap();
    // The same request, lines reordered and split: still the same request.
    let second = create_order(
        &mut w.client,
        8,
        &[(&b.id, 1), (&a.id, 1), (&a.id, 1)],
        Some("key-1"),
    )
    .await
    .unwrap();

    assert_eq!(second, first);
    assert_eq!(stock_of(&mut w.catalog_client, &a.id).await, 18);
    assert_eq!(stock_of(&mut w.catalog_client, &b.id).await, 19);
    assert_eq!(orders_written(&w).await, 1);

    // Later, the key still answers with the order as it is now.
    let canceled = set_status(&mut w.client, &first.id, OrderStatus::Canceled)
        .await
        .unwrap();
    let third = create_order(&mut w.client, 8, &[(&a.id, 2), (&b.id, 1)], Some("key-1"))
        .await
        .unwrap();
    assert_eq!(third, canceled);
    assert_eq!(stock_of(&mut w.catalog_client, &a.id).await, 20);

    // Another key is another order.
    let other = create_order(&mut w.client, 8, &[(&a.id, 2), (&b.id, 1)], Some("key-2"))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(stock_of(&mut w.catalog_client, &a.id).await, 18);
}

#[tokio::test]
async fn concurrent_duplicates_give_one_order_and_one_reservation() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Hot item", "99.99", 50).await;
    for round in 0..5 {
        let key = format!("concurrent-{round}");
        let calls = (0..6).map(|_| {
            let mut client = w.client.clone();
            let (product_id, key) = (product.id.clone(), key.clone());
            async move { create_order(&mut client, 21, &[(&product_id, 3)], Some(&key)).await }
        });

        let answers = join_all(calls).await;

        let orders: Vec<_> = answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|e| panic!("round {round}: {e:?}")))
            .collect();
        assert!(
            orders.iter().all(|order| order == &orders[0]),
            "round {round}: {orders:?}"
        );
        assert_eq!(
            stock_of(&mut w.catalog_client, &product.id).await,
            50 - 3 * (round + 1),
            "one reservation, round {round}"
        );
    }
    assert_eq!(orders_written(&w).await, 5);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let mut w = world().await;
    let a = create_product(&mut w.catalog_client, "A", "1.00", 10).await;
    let b = create_product(&mut w.catalog_client, "B", "1.00", 10).await;
    let first = create_order(&mut w.client, 8, &[(&a.id, 1)], Some("shared"))
        .await
        .unwrap();

    for (customer, items) in [
        (8, vec![(a.id.as_str(), 2)]),
        (8, vec![(b.id.as_str(), 1)]),
        (8, vec![(a.id.as_str(), 1), (b.id.as_str(), 1)]),
        (9, vec![(a.id.as_str(), 1)]),
    ] {
        let refused = create_order(&mut w.client, customer, &items, Some("shared"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), ["idempotency_key"]);
        assert!(
            refused.message().contains("different request"),
            "{}",
            refused.message()
        );
    }
    assert_eq!(stock_of(&mut w.catalog_client, &a.id).await, 9);
    assert_eq!(stock_of(&mut w.catalog_client, &b.id).await, 10);
    assert_eq!(orders_written(&w).await, 1);
    // The key still belongs to the first order.
    let again = create_order(&mut w.client, 8, &[(&a.id, 1)], Some("shared"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
}

#[tokio::test]
async fn a_refused_request_is_refused_again_the_same_way() {
    let mut w = world().await;
    let (product_id, refused) = refused_for_stock(&mut w, "too-many").await;
    assert_replayed(&mut w, "too-many", &product_id, &refused).await;
}

#[tokio::test]
async fn a_refusal_stored_by_an_earlier_version_is_replayed_the_same_way() {
    let mut w = world().await;
    let (product_id, refused) = refused_for_stock(&mut w, "old-row").await;
    // What versions before `orders.refusal` stored: the gRPC status their
    // caller got (code, message, detail bytes), and no refusal.
    let mut db = orders_database(&w.orders.service).await;
    let rewritten = sqlx::query(
        "UPDATE orders SET refusal = NULL, rejection_code = $1, rejection_message = $2, \
         rejection_details = $3 WHERE status = 'rejected'",
    )
    .bind(refused.code() as i32)
    .bind(refused.message())
    .bind(refused.details().to_vec())
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(rewritten.rows_affected(), 1);
    assert_replayed(&mut w, "old-row", &product_id, &refused).await;
}

#[tokio::test]
async fn an_unknown_outcome_frees_the_key_for_a_retry() {
    let mut w =
        world_with(|config| config.grpc_timeout = std::time::Duration::from_millis(300)).await;
    let product = create_product(&mut w.catalog_client, "Retry", "7.00", 10).await;
    w.proxy.set(ProxyMode::Down);

    let unavailable = create_order(&mut w.client, 8, &[(&product.id, 4)], Some("retry-me"))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable);
    // The saga abandoned the first attempt before answering (its release
    // waits in the outbox) and freed the key: a retry starts afresh at once.
    w.proxy.set(ProxyMode::Up);
    let order = create_order(&mut w.client, 8, &[(&product.id, 4)], Some("retry-me"))
        .await
        .expect("the retry goes through");

    assert_eq!(order.status, OrderStatus::Pending as i32);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 6);
    let again = create_order(&mut w.client, 8, &[(&product.id, 4)], Some("retry-me"))
        .await
        .unwrap();
    assert_eq!(again.id, order.id);
    // The first attempt's release, delivered now, moves nothing: that
    // reserve never arrived (a tombstone is left instead).
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 6);
}

/// Moves every idempotency key's creation back by `age`, then runs a
/// reconciler pass; how many keys it pruned.
async fn age_keys_and_reconcile(w: &World, age: &str) -> u64 {
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - $1::interval")
        .bind(age)
        .execute(&mut w.orders_db().await)
        .await
        .unwrap();
    w.reconcile().await.keys_pruned
}

#[tokio::test]
async fn keys_are_kept_a_day_and_then_pruned() {
    let mut w = world().await;
    let product = w.product("Old", "1.00", 10).await;
    let lines = [(product.as_str(), 1)];
    let first = create_order(&mut w.client, 8, &lines, Some("old-key"))
        .await
        .unwrap();

    // 23 hours old: kept.
    assert_eq!(age_keys_and_reconcile(&w, "23 hours").await, 0);
    let again = create_order(&mut w.client, 8, &lines, Some("old-key"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);

    // Older than a day: pruned, and the key is free again.
    assert_eq!(age_keys_and_reconcile(&w, "25 hours").await, 1);
    let fresh = create_order(&mut w.client, 8, &lines, Some("old-key"))
        .await
        .unwrap();
    assert_ne!(fresh.id, first.id);
    assert_eq!(w.stock(&product).await, 8);
}
