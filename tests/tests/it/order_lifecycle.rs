//! Orders over real gRPC, with a real catalog and real PostgreSQL behind them:
//! create (stock taken, prices captured, exact total), get, list with every
//! filter, complete keeps stock, cancel restores it; the catalog's refusals
//! passed on; validation; hidden saga states. Issue 3, acceptance 1.

use proto::{
    catalog::v1::UpdateProductRequest,
    errors::{meta, reason},
    order::v1::{Order, OrderStatus, PaymentStatus},
};
use tests::{
    RunningService,
    catalog::{
        CatalogClient, catalog_client, create_product, metadata_of, money, reason_of, release,
        spawn_catalog, stock_of, violated_fields,
    },
    order::{
        OrderClient, OrderFilter, amount, count_in_status, create_order, dec, get_order, ids,
        list_orders, order_client, orders_database, pay, set_status, spawn_order, stored_status,
    },
};
use tonic::Code;

struct World {
    // Kept alive for the test's duration.
    _catalog: RunningService,
    orders: RunningService,
    catalog_client: CatalogClient,
    client: OrderClient,
}

async fn world() -> World {
    let catalog = spawn_catalog().await;
    let orders = spawn_order(&catalog.url()).await;
    World {
        catalog_client: catalog_client(&catalog).await,
        client: order_client(&orders).await,
        _catalog: catalog,
        orders,
    }
}

fn item_of<'a>(order: &'a Order, product_id: &str) -> &'a proto::order::v1::OrderItem {
    order
        .items
        .iter()
        .find(|item| item.product_id == product_id)
        .unwrap_or_else(|| panic!("no line for {product_id} in {order:?}"))
}

#[tokio::test]
async fn create_takes_stock_captures_prices_and_totals_exactly() {
    let mut w = world().await;
    let laptop = create_product(&mut w.catalog_client, "Laptop", "999.99", 10).await;
    let pen = create_product(&mut w.catalog_client, "Pen", "0.10", 100).await;

    let order = create_order(
        &mut w.client,
        12345,
        &[(&laptop.id, 2), (&pen.id, 1), (&pen.id, 2)],
        None,
    )
    .await
    .expect("order created");

    assert_eq!(order.customer_id, 12345);
    assert_eq!(order.status, OrderStatus::Pending as i32);
    assert_eq!(order.payment_status, PaymentStatus::Unpaid as i32);
    // 2 x 999.99 + 3 x 0.10, exactly.
    assert_eq!(amount(order.total_price.as_ref()), dec("2000.28"));
    let total = order.total_price.as_ref().unwrap();
    assert_eq!(
        (total.units, total.nanos, total.currency_code.as_str()),
        (2000, 280_000_000, "USD")
    );
    // The two pen lines are one line, as the catalog reserved them.
    assert_eq!(order.items.len(), 2);
    let laptop_line = item_of(&order, &laptop.id);
    assert_eq!(laptop_line.quantity, 2);
    assert_eq!(
        amount(laptop_line.price_at_purchase.as_ref()),
        dec("999.99")
    );
    let pen_line = item_of(&order, &pen.id);
    assert_eq!(pen_line.quantity, 3);
    assert_eq!(amount(pen_line.price_at_purchase.as_ref()), dec("0.10"));
    assert!(order.items.iter().all(|item| item.id > 0));
    assert!(order.created_at.is_some() && order.updated_at.is_some());

    assert_eq!(stock_of(&mut w.catalog_client, &laptop.id).await, 8);
    assert_eq!(stock_of(&mut w.catalog_client, &pen.id).await, 97);

    // Later price changes never alter an order.
    w.catalog_client
        .update_product(UpdateProductRequest {
            id: laptop.id.clone(),
            price: Some(money("1299.00")),
            ..Default::default()
        })
        .await
        .expect("price changed");
    let fetched = get_order(&mut w.client, &order.id)
        .await
        .expect("order found");
    assert_eq!(fetched, order);
}

#[tokio::test]
async fn complete_keeps_the_stock_taken() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Chair", "49.50", 5).await;
    let order = create_order(&mut w.client, 7, &[(&product.id, 2)], None)
        .await
        .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 3);

    let completed = set_status(&mut w.client, &order.id, OrderStatus::Completed)
        .await
        .expect("completed");
    assert_eq!(completed.status, OrderStatus::Completed as i32);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 3);
    // The reservation is final at the catalog: it can no longer be released.
    let refused = release(&mut w.catalog_client, &order.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&refused), reason::RESERVATION_COMMITTED);

    // The same status again is a successful no-op.
    let again = set_status(&mut w.client, &order.id, OrderStatus::Completed)
        .await
        .expect("repeat is harmless");
    assert_eq!(again, completed);
    // Terminal.
    for to in [OrderStatus::Canceled, OrderStatus::Pending] {
        let refused = set_status(&mut w.client, &order.id, to).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(reason_of(&refused), reason::INVALID_TRANSITION);
        let to_name = if to == OrderStatus::Canceled {
            "canceled"
        } else {
            "pending"
        };
        assert_eq!(
            refused.message(),
            format!("Cannot transition order status from 'completed' to '{to_name}'")
        );
        assert_eq!(metadata_of(&refused, meta::FROM), "completed");
        assert_eq!(metadata_of(&refused, meta::TO), to_name);
    }
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 3);
    let mut db = orders_database(&w.orders).await;
    assert_eq!(tests::order::outbox_rows(&mut db).await, vec![]);
}

#[tokio::test]
async fn cancel_restores_the_stock_exactly_once() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Lamp", "20.00", 10).await;
    let order = create_order(&mut w.client, 7, &[(&product.id, 4)], None)
        .await
        .unwrap();
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 6);

    let canceled = set_status(&mut w.client, &order.id, OrderStatus::Canceled)
        .await
        .expect("canceled");
    assert_eq!(canceled.status, OrderStatus::Canceled as i32);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);

    let again = set_status(&mut w.client, &order.id, OrderStatus::Canceled)
        .await
        .expect("repeat is harmless");
    assert_eq!(again, canceled);
    let refused = set_status(&mut w.client, &order.id, OrderStatus::Completed)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "Cannot transition order status from 'canceled' to 'completed'"
    );
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 10);
    let mut db = orders_database(&w.orders).await;
    assert_eq!(tests::order::outbox_rows(&mut db).await, vec![]);
}

#[tokio::test]
async fn pending_to_pending_is_a_no_op() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Mug", "8.00", 3).await;
    let order = create_order(&mut w.client, 1, &[(&product.id, 1)], None)
        .await
        .unwrap();
    let same = set_status(&mut w.client, &order.id, OrderStatus::Pending)
        .await
        .expect("no-op");
    assert_eq!(same, order);
    let unspecified = set_status(&mut w.client, &order.id, OrderStatus::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&unspecified), ["status"]);
}

#[tokio::test]
async fn list_filters_by_status_payment_and_customer_newest_first() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Book", "12.34", 100).await;
    let mut create = async |customer| {
        create_order(&mut w.client, customer, &[(&product.id, 1)], None)
            .await
            .unwrap()
            .id
    };
    // Oldest first: a (customer 1, pending unpaid), b (2, completed),
    // c (1, canceled), d (2, pending paid), e (1, pending failed).
    let a = create(1).await;
    let b = create(2).await;
    let c = create(1).await;
    let d = create(2).await;
    let e = create(1).await;
    let [a, b, c, d, e] = [&a, &b, &c, &d, &e].map(String::as_str);
    set_status(&mut w.client, b, OrderStatus::Completed)
        .await
        .unwrap();
    set_status(&mut w.client, c, OrderStatus::Canceled)
        .await
        .unwrap();
    pay(&mut w.client, d, PaymentStatus::Paid, None)
        .await
        .unwrap();
    pay(&mut w.client, e, PaymentStatus::Failed, None)
        .await
        .unwrap();

    let all = list_orders(&mut w.client, 1, 100, OrderFilter::default())
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(ids(&all), [e, d, c, b, a]);
    // Each order in a list is the same as GetOrder's.
    for order in &all.orders {
        assert_eq!(order, &get_order(&mut w.client, &order.id).await.unwrap());
    }

    let cases: Vec<(OrderFilter, Vec<&str>)> = vec![
        (
            OrderFilter {
                status: Some(OrderStatus::Pending),
                ..Default::default()
            },
            vec![e, d, a],
        ),
        (
            OrderFilter {
                status: Some(OrderStatus::Completed),
                ..Default::default()
            },
            vec![b],
        ),
        (
            OrderFilter {
                status: Some(OrderStatus::Canceled),
                ..Default::default()
            },
            vec![c],
        ),
        (
            OrderFilter {
                payment_status: Some(PaymentStatus::Unpaid),
                ..Default::default()
            },
            vec![c, b, a],
        ),
        (
            OrderFilter {
                payment_status: Some(PaymentStatus::Paid),
                ..Default::default()
            },
            vec![d],
        ),
        (
            OrderFilter {
                payment_status: Some(PaymentStatus::Failed),
                ..Default::default()
            },
            vec![e],
        ),
        (
            OrderFilter {
                customer_id: Some(1),
                ..Default::default()
            },
            vec![e, c, a],
        ),
        (
            OrderFilter {
                customer_id: Some(2),
                ..Default::default()
            },
            vec![d, b],
        ),
        (
            OrderFilter {
                customer_id: Some(3),
                ..Default::default()
            },
            vec![],
        ),
        (
            OrderFilter {
                status: Some(OrderStatus::Pending),
                payment_status: Some(PaymentStatus::Unpaid),
                customer_id: Some(1),
            },
            vec![a],
        ),
        (
            OrderFilter {
                status: Some(OrderStatus::Unspecified),
                payment_status: Some(PaymentStatus::Unspecified),
                customer_id: None,
            },
            vec![e, d, c, b, a],
        ),
    ];
    for (filter, expected) in cases {
        let page = list_orders(&mut w.client, 1, 100, filter).await.unwrap();
        assert_eq!(ids(&page), expected, "{filter:?}");
        assert_eq!(page.total, expected.len() as u64, "{filter:?}");
    }

    // Pages never overlap; a page past the end is empty with the true total.
    let first = list_orders(&mut w.client, 1, 2, OrderFilter::default())
        .await
        .unwrap();
    let second = list_orders(&mut w.client, 2, 2, OrderFilter::default())
        .await
        .unwrap();
    let third = list_orders(&mut w.client, 3, 2, OrderFilter::default())
        .await
        .unwrap();
    let past = list_orders(&mut w.client, 4, 2, OrderFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(&first), [e, d]);
    assert_eq!(ids(&second), [c, b]);
    assert_eq!(ids(&third), [a]);
    assert!(past.orders.is_empty());
    assert_eq!((first.total, past.total), (5, 5));
}

#[tokio::test]
async fn list_refuses_bad_paging_and_filters() {
    let mut w = world().await;
    let zero = list_orders(&mut w.client, 0, 0, OrderFilter::default())
        .await
        .unwrap_err();
    assert_eq!(zero.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&zero), ["page", "page_size"]);
    let too_big = list_orders(&mut w.client, 1, 101, OrderFilter::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&too_big), ["page_size"]);
    let customer = list_orders(
        &mut w.client,
        1,
        10,
        OrderFilter {
            customer_id: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&customer), ["customer_id"]);
    let unknown_status = w
        .client
        .list_orders(proto::order::v1::ListOrdersRequest {
            page: 1,
            page_size: 10,
            status: Some(42),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unknown_status), ["status"]);
}

#[tokio::test]
async fn missing_products_are_passed_on_and_take_nothing() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Desk", "150.00", 5).await;
    let ghost_a = uuid::Uuid::new_v4().to_string();
    let ghost_b = uuid::Uuid::new_v4().to_string();

    let refused = create_order(
        &mut w.client,
        9,
        &[(&ghost_a, 1), (&product.id, 1), (&ghost_b, 2)],
        None,
    )
    .await
    .unwrap_err();

    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    assert_eq!(reason_of(&refused), reason::PRODUCTS_NOT_FOUND);
    let mut named: Vec<String> = metadata_of(&refused, meta::PRODUCT_IDS)
        .split(',')
        .map(str::to_owned)
        .collect();
    named.sort();
    let mut expected = vec![ghost_a, ghost_b];
    expected.sort();
    assert_eq!(named, expected);
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 5);
    // The refused order exists only as a hidden, rejected row.
    let listed = list_orders(&mut w.client, 1, 10, OrderFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.total, 0);
    let mut db = orders_database(&w.orders).await;
    assert_eq!(count_in_status(&mut db, "rejected").await, 1);
}

#[tokio::test]
async fn insufficient_stock_is_passed_on_with_its_details() {
    let mut w = world().await;
    let plenty = create_product(&mut w.catalog_client, "Plenty", "1.00", 100).await;
    let scarce = create_product(&mut w.catalog_client, "Scarce", "2.00", 3).await;

    let refused = create_order(&mut w.client, 9, &[(&plenty.id, 10), (&scarce.id, 4)], None)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason_of(&refused), reason::INSUFFICIENT_STOCK);
    assert_eq!(metadata_of(&refused, meta::PRODUCT_ID), scarce.id);
    assert_eq!(metadata_of(&refused, meta::PRODUCT_NAME), "Scarce");
    assert_eq!(metadata_of(&refused, meta::AVAILABLE), "3");
    assert_eq!(metadata_of(&refused, meta::REQUESTED), "4");
    assert_eq!(
        refused.message(),
        "Insufficient stock for product 'Scarce'. Available: 3, Requested: 4"
    );
    // All or nothing.
    assert_eq!(stock_of(&mut w.catalog_client, &plenty.id).await, 100);
    assert_eq!(stock_of(&mut w.catalog_client, &scarce.id).await, 3);
}

#[tokio::test]
async fn invalid_requests_name_every_field() {
    let mut w = world().await;
    let product = create_product(&mut w.catalog_client, "Cup", "3.00", 5).await;

    let refused = create_order(&mut w.client, 0, &[], None).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["customer_id", "items"]);

    let refused = create_order(
        &mut w.client,
        -1,
        &[("not-a-uuid", 1), (&product.id, 0), (&product.id, -3)],
        Some(&"k".repeat(256)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "customer_id",
            "items[0].product_id",
            "items[1].quantity",
            "items[2].quantity",
            "idempotency_key"
        ]
    );
    assert_eq!(stock_of(&mut w.catalog_client, &product.id).await, 5);
    let mut db = orders_database(&w.orders).await;
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(written, 0);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_refused() {
    let mut w = world().await;
    let id = uuid::Uuid::new_v4().to_string();
    for refused in [
        get_order(&mut w.client, &id).await.unwrap_err(),
        set_status(&mut w.client, &id, OrderStatus::Canceled)
            .await
            .unwrap_err(),
        pay(&mut w.client, &id, PaymentStatus::Paid, None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Code::NotFound);
        assert_eq!(refused.message(), format!("Order with id {id} not found"));
        assert_eq!(reason_of(&refused), reason::ORDER_NOT_FOUND);
    }
    let malformed = get_order(&mut w.client, "nope").await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&malformed), ["id"]);
    let malformed = set_status(&mut w.client, "nope", OrderStatus::Completed)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&malformed), ["id"]);
}

#[tokio::test]
async fn orders_in_internal_states_are_never_shown() {
    let mut w = world().await;
    let mut db = orders_database(&w.orders).await;
    let reserving = uuid::Uuid::now_v7();
    let rejected = uuid::Uuid::now_v7();
    for (id, status) in [(reserving, "reserving"), (rejected, "rejected")] {
        sqlx::query("INSERT INTO orders (id, customer_id, status) VALUES ($1, 5, $2)")
            .bind(id)
            .bind(status)
            .execute(&mut db)
            .await
            .unwrap();
    }
    for id in [reserving, rejected] {
        let id = id.to_string();
        assert_eq!(
            get_order(&mut w.client, &id).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            set_status(&mut w.client, &id, OrderStatus::Canceled)
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            pay(&mut w.client, &id, PaymentStatus::Paid, None)
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
    }
    for filter in [
        OrderFilter::default(),
        OrderFilter {
            customer_id: Some(5),
            ..Default::default()
        },
        OrderFilter {
            payment_status: Some(PaymentStatus::Unpaid),
            ..Default::default()
        },
    ] {
        let page = list_orders(&mut w.client, 1, 10, filter).await.unwrap();
        assert_eq!((page.total, page.orders.len()), (0, 0), "{filter:?}");
    }
    assert_eq!(
        stored_status(&mut db, &reserving.to_string())
            .await
            .as_deref(),
        Some("reserving")
    );
}
