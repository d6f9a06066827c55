//! Failures between the order service and the catalog never leak or
//! double-restore stock: the catalog unreachable at create, a crash between
//! reserve and confirm (the reconciler's grace period included), a status
//! change while the catalog is down (its inventory call delivered later,
//! after a backoff). The catalog is cut off by a proxy the order service
//! talks through; the test's own catalog client talks to it directly.

use std::time::{Duration, Instant};

use proto::{errors::reason, order::v1::OrderStatus};
use tests::{
    catalog::{catalog_client, create_product, reason_of, release, reserve, spawn_catalog},
    order::{
        CatalogProxy, ProxyMode, World, count_in_status, create_order, order_client, order_config,
        outbox_rows, start_order, stored_status, world, world_with,
    },
};
use tonic::Code;

/// The one order the database holds, whatever its state.
async fn only_order_id(db: &mut sqlx::PgConnection) -> String {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM orders")
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids.into_iter().next().unwrap()
}

/// What a saga that crashed after its reserve leaves: `quantity` of a new
/// product held at the catalog for a new order id, the order still
/// `reserving`, created `age` ago. Returns the product and the order id.
async fn crashed_saga(w: &mut World, quantity: i32, age: &str) -> (String, String) {
    let product = w.product("Blender", "80.00", 10).await;
    let order_id = uuid::Uuid::now_v7().to_string();
    reserve(&mut w.catalog_client, &order_id, &[(&product, quantity)])
        .await
        .expect("reserved");
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, created_at) \
         VALUES ($1::uuid, 11, 'reserving', now() - $2::interval)",
    )
    .bind(&order_id)
    .bind(age)
    .execute(&mut w.orders_db().await)
    .await
    .unwrap();
    (product, order_id)
}

/// A pending order of `quantity` of a new product (stock 10), then the
/// catalog cut off, then the status changed to `to`, which stands; its
/// inventory call waits in the outbox (one attempt made). Returns the
/// product and the order id.
async fn changed_while_the_catalog_is_down(
    w: &mut World,
    quantity: i32,
    to: OrderStatus,
) -> (String, String) {
    let product = w.product("Heater", "60.00", 10).await;
    let order = w.order(5, &product, quantity).await;
    assert_eq!(w.stock(&product).await, 10 - quantity);
    w.proxy.set(ProxyMode::Down);

    let changed = w.set_status(&order.id, to).await;
    let changed = changed.expect("the change stands without the catalog");

    assert_eq!(changed.status, to as i32);
    let action = if to == OrderStatus::Canceled {
        "release"
    } else {
        "commit"
    };
    let pending = [(order.id.clone(), action.to_owned(), 1)];
    assert_eq!(outbox_rows(&mut w.orders_db().await).await, pending);
    (product, order.id)
}

#[tokio::test]
async fn catalog_unreachable_at_create_is_unavailable_and_leaves_no_stock_taken() {
    let mut w = world().await;
    let product = w.product("Kettle", "30.00", 10).await;
    w.proxy.set(ProxyMode::Down);

    let refused = create_order(&mut w.client, 3, &[(&product, 2)], None)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // The saga abandoned the order before answering: rejected (hidden), its
    // release queued in the outbox, since the catalog cannot take it now.
    let mut db = w.orders_db().await;
    let order_id = only_order_id(&mut db).await;
    let stored = stored_status(&mut db, &order_id).await;
    assert_eq!(stored.as_deref(), Some("rejected"));
    assert_eq!(w.get(&order_id).await.unwrap_err().code(), Code::NotFound);
    let pending = vec![(order_id.clone(), "release".to_owned(), 1)];
    assert_eq!(outbox_rows(&mut db).await, pending);
    // A pass while the catalog is still down only tries again.
    let report = w.reconcile().await;
    assert_eq!((report.delivered, report.delivery_failed), (0, 1));

    w.proxy.set(ProxyMode::Up);
    let report = w.reconcile().await;

    assert_eq!((report.delivered, report.delivery_failed), (1, 0));
    assert!(outbox_rows(&mut db).await.is_empty());
    assert_eq!(w.stock(&product).await, 10);
    // The release left a tombstone: a reserve under that id arriving late
    // takes nothing.
    let late = reserve(&mut w.catalog_client, &order_id, &[(&product, 2)])
        .await
        .unwrap_err();
    assert_eq!(reason_of(&late), reason::RESERVATION_RELEASED);
    assert_eq!(w.stock(&product).await, 10);
    // And the service works again over the same channel.
    w.order(3, &product, 2).await;
    assert_eq!(w.stock(&product).await, 8);
}

#[tokio::test]
async fn a_reserve_whose_answer_is_lost_is_released_and_answered_unavailable() {
    let mut w =
        world_with(|config| config.grpc_timeout = std::time::Duration::from_millis(500)).await;
    let product = w.product("Toaster", "25.00", 10).await;
    // Warm the channel, then let requests through but hold every answer: the
    // reserve takes stock at the catalog, and the order service never hears.
    w.order(4, &product, 1).await;
    assert_eq!(w.stock(&product).await, 9);
    w.proxy.set(ProxyMode::Stall);

    let started = Instant::now();
    let refused = create_order(&mut w.client, 4, &[(&product, 3)], None)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // Two deadlines (reserve, then release), not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    w.proxy.set(ProxyMode::Up);
    // The saga abandoned the order before answering; its release (stalled
    // too) is delivered by the next pass.
    let report = w.reconcile().await;
    assert_eq!((report.rejected, report.delivered), (0, 1));
    assert_eq!(w.stock(&product).await, 9);
    let mut db = w.orders_db().await;
    assert_eq!(count_in_status(&mut db, "rejected").await, 1);
    assert_eq!(count_in_status(&mut db, "reserving").await, 0);
}

#[tokio::test]
async fn a_crash_between_reserve_and_confirm_is_released_by_the_reconciler() {
    let mut w = world().await;
    let (product, order_id) = crashed_saga(&mut w, 3, "10 minutes").await;
    assert_eq!(w.stock(&product).await, 7);

    let report = w.reconcile().await;

    assert_eq!(report.rejected, 1);
    assert_eq!(w.stock(&product).await, 10);
    let stored = stored_status(&mut w.orders_db().await, &order_id).await;
    assert_eq!(stored.as_deref(), Some("rejected"));
    // Exactly once: later passes find nothing, the stock stays.
    let report = w.reconcile().await;
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(w.stock(&product).await, 10);
    let again = release(&mut w.catalog_client, &order_id).await;
    assert_eq!(again.ok(), Some(false));
}

/// The window the reconciler's grace period guards: a saga whose reserve went
/// through, but whose confirmation comes after the reconciler judged it
/// abandoned. Exactly one of them may win; here the reconciler does, so the
/// saga must not confirm: it answers UNAVAILABLE, the order is rejected, and
/// the stock comes back, once.
#[tokio::test]
async fn a_confirmation_later_than_the_reconcilers_grace_loses_and_strands_nothing() {
    // A long deadline: the saga keeps waiting for its held answer.
    let mut w = world_with(|config| config.grpc_timeout = std::time::Duration::from_secs(10)).await;
    let product = w.product("Grinder", "45.00", 10).await;
    w.order(5, &product, 1).await;
    w.proxy.set(ProxyMode::Stall);
    let mut client = w.client.clone();
    let product_id = product.clone();
    let saga =
        tokio::spawn(async move { create_order(&mut client, 5, &[(&product_id, 3)], None).await });
    // The reserve took the stock; its answer is held back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.stock(&product).await != 6 {
        assert!(Instant::now() < deadline, "the reserve never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Past the grace period (0 here): the reconciler abandons the saga.
    let reconciler = w.orders.reconciler.clone();
    let pass = tokio::spawn(async move { reconciler.reconcile_once().await });
    let mut db = w.orders_db().await;
    let order_id = loop {
        let rejected: Option<String> =
            sqlx::query_scalar("SELECT id::text FROM orders WHERE status = 'rejected'")
                .fetch_optional(&mut db)
                .await
                .unwrap();
        if let Some(id) = rejected {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the reconciler did not abandon the saga"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Now the saga hears that its reserve went through, and tries to confirm.
    w.proxy.set(ProxyMode::Up);

    let answered = saga.await.unwrap().unwrap_err();
    assert_eq!(answered.code(), Code::Unavailable, "{answered:?}");
    let report = pass.await.unwrap().unwrap();
    assert_eq!(report.rejected, 1, "{report:?}");
    let stored = stored_status(&mut db, &order_id).await;
    assert_eq!(stored.as_deref(), Some("rejected"));
    assert!(outbox_rows(&mut db).await.is_empty(), "release delivered");
    assert_eq!(w.stock(&product).await, 9);
    let again = release(&mut w.catalog_client, &order_id).await.unwrap();
    assert!(!again, "released exactly once");
    assert_eq!(w.stock(&product).await, 9);
}

#[tokio::test]
async fn the_reconciler_leaves_young_sagas_alone() {
    let mut w =
        world_with(|config| config.reserving_grace = std::time::Duration::from_secs(3_600)).await;
    let (product, order_id) = crashed_saga(&mut w, 3, "0 seconds").await;

    let report = w.reconcile().await;

    // Within the grace period the saga may still be running: not touched.
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(w.stock(&product).await, 7);
    let stored = stored_status(&mut w.orders_db().await, &order_id).await;
    assert_eq!(stored.as_deref(), Some("reserving"));
}

#[tokio::test]
async fn cancel_while_the_catalog_is_down_restores_stock_once_it_returns() {
    let mut w = world().await;
    let (product, order_id) =
        changed_while_the_catalog_is_down(&mut w, 3, OrderStatus::Canceled).await;
    assert_eq!(w.stock(&product).await, 7);
    let report = w.reconcile().await;
    assert_eq!((report.delivered, report.delivery_failed), (0, 1));
    let mut db = w.orders_db().await;
    let retried = [(order_id.clone(), "release".to_owned(), 2)];
    assert_eq!(outbox_rows(&mut db).await, retried);

    w.proxy.set(ProxyMode::Up);
    let report = w.reconcile().await;

    assert_eq!((report.delivered, report.delivery_failed), (1, 0));
    assert_eq!(w.stock(&product).await, 10);
    assert_eq!(outbox_rows(&mut db).await, []);
    // Exactly once: more passes and a repeated cancel move nothing.
    let report = w.reconcile().await;
    assert!(report.is_empty(), "{report:?}");
    w.set_status(&order_id, OrderStatus::Canceled)
        .await
        .unwrap();
    assert_eq!(w.stock(&product).await, 10);
    let now = w.get(&order_id).await.unwrap();
    assert_eq!(now.status, OrderStatus::Canceled as i32);
}

#[tokio::test]
async fn complete_while_the_catalog_is_down_commits_once_it_returns() {
    let mut w = world().await;
    let (product, order_id) =
        changed_while_the_catalog_is_down(&mut w, 4, OrderStatus::Completed).await;

    w.proxy.set(ProxyMode::Up);
    let report = w.reconcile().await;

    assert_eq!(report.delivered, 1);
    assert_eq!(outbox_rows(&mut w.orders_db().await).await, []);
    assert_eq!(w.stock(&product).await, 6);
    let refused = release(&mut w.catalog_client, &order_id).await.unwrap_err();
    assert_eq!(reason_of(&refused), reason::RESERVATION_COMMITTED);
}

#[tokio::test]
async fn failed_deliveries_wait_for_their_backoff() {
    let mut w =
        world_with(|config| config.outbox_retry_base = std::time::Duration::from_secs(60)).await;
    let (product, _) = changed_while_the_catalog_is_down(&mut w, 2, OrderStatus::Canceled).await;
    w.proxy.set(ProxyMode::Up);

    // Not due for another minute: the pass leaves it.
    let report = w.reconcile().await;
    assert_eq!((report.delivered, report.delivery_failed), (0, 0));
    let mut db = w.orders_db().await;
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM outbox",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!((50.0..=60.0).contains(&wait), "{wait}");
    assert_eq!(w.stock(&product).await, 8);

    // Once due, it goes.
    sqlx::query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(w.reconcile().await.delivered, 1);
    assert_eq!(w.stock(&product).await, 10);
}

#[tokio::test]
async fn the_service_starts_while_the_catalog_is_down() {
    let catalog = spawn_catalog().await;
    let proxy = CatalogProxy::start(catalog.addr).await;
    proxy.set(ProxyMode::Down);
    let orders = start_order(order_config(&proxy.url())).await;
    let mut client = order_client(&orders.service).await;
    let mut catalog_client = catalog_client(&catalog).await;
    let product = create_product(&mut catalog_client, "Sofa", "500.00", 2).await;
    let lines = [(product.id.as_str(), 1)];

    let refused = create_order(&mut client, 1, &lines, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);

    proxy.set(ProxyMode::Up);
    orders.reconciler.reconcile_once().await.unwrap();
    create_order(&mut client, 1, &lines, None)
        .await
        .expect("works once the catalog is up");
    assert_eq!(
        tests::catalog::stock_of(&mut catalog_client, &product.id).await,
        1
    );
}
