//! Failures between the order service and the catalog never leak or
//! double-restore stock: the catalog unreachable at create (acceptance 2), a
//! crash between reserve and confirm (acceptance 3), cancel while the catalog
//! is down (acceptance 4). The catalog is cut off by a proxy the order service
//! talks through; the test's own catalog client talks to it directly.

use std::time::{Duration, Instant};

use proto::{errors::reason, order::v1::OrderStatus};
use tests::{
    catalog::{
        catalog_client, create_product, reason_of, release, reserve, spawn_catalog, stock_of,
    },
    order::{
        CatalogProxy, ProxyMode, count_in_status, create_order, get_order, order_client,
        order_config, orders_database, outbox_rows, set_status, start_order, stored_status, world,
        world_with,
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

#[tokio::test]
async fn catalog_unreachable_at_create_is_unavailable_and_leaves_no_stock_taken() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Kettle", "30.00", 10).await;
    w.proxy.set(ProxyMode::Down);

    let refused = create_order(&mut w.client, 3, &[(&product.id, 2)], None)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // The saga abandoned the order before answering: rejected (hidden), its
    // release queued in the outbox, since the catalog cannot take it now.
    let mut db = orders_database(&w.orders.service).await;
    let order_id = only_order_id(&mut db).await;
    assert_eq!(
        stored_status(&mut db, &order_id).await.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        get_order(&mut w.client, &order_id)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        outbox_rows(&mut db).await,
        vec![(order_id.clone(), "release".to_owned(), 1)]
    );
    // A pass while the catalog is still down only tries again.
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!((report.delivered, report.delivery_failed), (0, 1));

    w.proxy.set(ProxyMode::Up);
    let report = w.orders.reconciler.reconcile_once().await.unwrap();

    assert_eq!((report.delivered, report.delivery_failed), (1, 0));
    assert!(outbox_rows(&mut db).await.is_empty());
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    // The release left a tombstone: a reserve under that id arriving late
    // takes nothing.
    let late = reserve(&mut w.catalog_client, &order_id, &[(&product.id, 2)])
        .await
        .unwrap_err();
    assert_eq!(reason_of(&late), reason::RESERVATION_RELEASED);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    // And the service works again over the same channel.
    create_order(&mut w.client, 3, &[(&product.id, 2)], None)
        .await
        .expect("catalog is back");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 8);
}

#[tokio::test]
async fn a_reserve_whose_answer_is_lost_is_released_and_answered_unavailable() {
    let mut w = world_with(|config| config.catalog_timeout_ms = 500).await;
    let product = create_product(&mut w.catalog_client, "Toaster", "25.00", 10).await;
    // Warm the channel, then let requests through but hold every answer: the
    // reserve takes stock at the catalog, and the order service never hears.
    create_order(&mut w.client, 4, &[(&product.id, 1)], None)
        .await
        .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 9);
    w.proxy.set(ProxyMode::Stall);

    let started = Instant::now();
    let refused = create_order(&mut w.client, 4, &[(&product.id, 3)], None)
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
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!((report.rejected, report.delivered), (0, 1));
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 9);
    let mut db = orders_database(&w.orders.service).await;
    assert_eq!(count_in_status(&mut db, "rejected").await, 1);
    assert_eq!(count_in_status(&mut db, "reserving").await, 0);
}

#[tokio::test]
async fn a_crash_between_reserve_and_confirm_is_released_by_the_reconciler() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Blender", "80.00", 10).await;
    // Arrange what a crash after saga step 2 leaves: the reservation held at
    // the catalog, the order still `reserving`.
    let order_id = uuid::Uuid::now_v7();
    reserve(
        &mut w.catalog_client,
        &order_id.to_string(),
        &[(&product.id, 3)],
    )
    .await
    .expect("reserved");
    let mut db = orders_database(&w.orders.service).await;
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, created_at) \
         VALUES ($1, 11, 'reserving', now() - interval '10 minutes')",
    )
    .bind(order_id)
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 7);

    let report = w.orders.reconciler.reconcile_once().await.unwrap();

    assert_eq!(report.rejected, 1);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    assert_eq!(
        stored_status(&mut db, &order_id.to_string())
            .await
            .as_deref(),
        Some("rejected")
    );
    // Exactly once: later passes find nothing, the stock stays.
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    let again = release(&mut w.catalog_client, &order_id.to_string()).await;
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
    let mut w = world_with(|config| config.catalog_timeout_ms = 10_000).await;
    let product = create_product(&mut w.catalog_client, "Grinder", "45.00", 10).await;
    create_order(&mut w.client, 5, &[(&product.id, 1)], None)
        .await
        .expect("the channel is warm");
    w.proxy.set(ProxyMode::Stall);
    let mut client = w.client.clone();
    let product_id = product.id.clone();
    let saga =
        tokio::spawn(async move { create_order(&mut client, 5, &[(&product_id, 3)], None).await });
    // The reserve took the stock; its answer is held back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stock_of(&mut w.catalog_client, &product.id).await != 6 {
        assert!(Instant::now() < deadline, "the reserve never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Past the grace period (0 here): the reconciler abandons the saga.
    let reconciler = w.orders.reconciler.clone();
    let pass = tokio::spawn(async move { reconciler.reconcile_once().await });
    let mut db = orders_database(&w.orders.service).await;
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
    assert_eq!(
        stored_status(&mut db, &order_id).await.as_deref(),
        Some("rejected")
    );
    assert!(outbox_rows(&mut db).await.is_empty(), "release delivered");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 9);
    let again = release(&mut w.catalog_client, &order_id).await.unwrap();
    assert!(!again, "released exactly once");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 9);
}

#[tokio::test]
async fn the_reconciler_leaves_young_sagas_alone() {
    let mut w = world_with(|config| config.reserving_grace_secs = 3_600).await;
    let product = create_product(&mut w.catalog_client, "Grill", "99.00", 10).await;
    let order_id = uuid::Uuid::now_v7();
    reserve(
        &mut w.catalog_client,
        &order_id.to_string(),
        &[(&product.id, 3)],
    )
    .await
    .expect("reserved");
    let mut db = orders_database(&w.orders.service).await;
    sqlx::query("INSERT INTO orders (id, customer_id, status) VALUES ($1, 11, 'reserving')")
        .bind(order_id)
        .execute(&mut db)
        .await
        .unwrap();

    let report = w.orders.reconciler.reconcile_once().await.unwrap();

    // Within the grace period the saga may still be running: not touched.
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 7);
    assert_eq!(
        stored_status(&mut db, &order_id.to_string())
            .await
            .as_deref(),
        Some("reserving")
    );
}

#[tokio::test]
async fn cancel_while_the_catalog_is_down_restores_stock_once_it_returns() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Heater", "60.00", 10).await;
    let order = create_order(&mut w.client, 5, &[(&product.id, 3)], None)
        .await
        .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 7);
    w.proxy.set(ProxyMode::Down);

    let canceled = set_status(&mut w.client, &order.id, OrderStatus::Canceled)
        .await
        .expect("the cancel stands without the catalog");

    assert_eq!(canceled.status, OrderStatus::Canceled as i32);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 7);
    let mut db = orders_database(&w.orders.service).await;
    assert_eq!(
        outbox_rows(&mut db).await,
        [(order.id.clone(), "release".to_owned(), 1)]
    );
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!((report.delivered, report.delivery_failed), (0, 1));
    assert_eq!(
        outbox_rows(&mut db).await,
        [(order.id.clone(), "release".to_owned(), 2)]
    );

    w.proxy.set(ProxyMode::Up);
    let report = w.orders.reconciler.reconcile_once().await.unwrap();

    assert_eq!((report.delivered, report.delivery_failed), (1, 0));
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    assert_eq!(outbox_rows(&mut db).await, []);
    // Exactly once: more passes and a repeated cancel move nothing.
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    set_status(&mut w.client, &order.id, OrderStatus::Canceled)
        .await
        .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    assert_eq!(
        get_order(&mut w.client, &order.id).await.unwrap().status,
        OrderStatus::Canceled as i32
    );
}

#[tokio::test]
async fn complete_while_the_catalog_is_down_commits_once_it_returns() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Fan", "15.00", 10).await;
    let order = create_order(&mut w.client, 5, &[(&product.id, 4)], None)
        .await
        .unwrap();
    w.proxy.set(ProxyMode::Down);

    let completed = set_status(&mut w.client, &order.id, OrderStatus::Completed)
        .await
        .expect("the completion stands without the catalog");
    assert_eq!(completed.status, OrderStatus::Completed as i32);
    let mut db = orders_database(&w.orders.service).await;
    assert_eq!(
        outbox_rows(&mut db).await,
        [(order.id.clone(), "commit".to_owned(), 1)]
    );

    w.proxy.set(ProxyMode::Up);
    let report = w.orders.reconciler.reconcile_once().await.unwrap();

    assert_eq!(report.delivered, 1);
    assert_eq!(outbox_rows(&mut db).await, []);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 6);
    let refused = release(&mut w.catalog_client, &order.id).await.unwrap_err();
    assert_eq!(reason_of(&refused), reason::RESERVATION_COMMITTED);
}

#[tokio::test]
async fn failed_deliveries_wait_for_their_backoff() {
    let mut w = world_with(|config| config.outbox_retry_base_ms = 60_000).await;
    let product = create_product(&mut w.catalog_client, "Rug", "45.00", 10).await;
    let order = create_order(&mut w.client, 5, &[(&product.id, 2)], None)
        .await
        .unwrap();
    w.proxy.set(ProxyMode::Down);
    set_status(&mut w.client, &order.id, OrderStatus::Canceled)
        .await
        .unwrap();
    w.proxy.set(ProxyMode::Up);

    // Not due for another minute: the pass leaves it.
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!((report.delivered, report.delivery_failed), (0, 0));
    let mut db = orders_database(&w.orders.service).await;
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM outbox",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!((50.0..=60.0).contains(&wait), "{wait}");
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 8);

    // Once due, it goes.
    sqlx::query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&mut db)
        .await
        .unwrap();
    let report = w.orders.reconciler.reconcile_once().await.unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
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

    let refused = create_order(&mut client, 1, &[(&product.id, 1)], None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);

    proxy.set(ProxyMode::Up);
    orders.reconciler.reconcile_once().await.unwrap();
    create_order(&mut client, 1, &[(&product.id, 1)], None)
        .await
        .expect("works once the catalog is up");
    assert_eq!(stock_of(&mut catalog_client, &product.id).await, 1);
}
