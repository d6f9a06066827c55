//! Orders over real gRPC, with a real catalog and real PostgreSQL behind them:
//! create (stock taken, prices captured, exact total), get, list with every
//! filter, complete keeps stock, cancel restores it; the catalog's refusals
//! passed on; validation; hidden saga states.

use proto::{
    catalog::v1::UpdateProductRequest,
    errors::{meta, reason},
    order::v1::{Order, OrderStatus, PaymentStatus},
};
use tests::{
    catalog::{metadata_of, money, reason_of, release, violated_fields},
    order::{
        OrderFilter, World, amount, count_in_status, create_order, dec, ids, list_orders,
        outbox_rows, stored_status, world,
    },
};
use tonic::{Code, Status};

fn item_of<'a>(order: &'a Order, product_id: &str) -> &'a proto::order::v1::OrderItem {
    order
        .items
        .iter()
        .find(|item| item.product_id == product_id)
        .unwrap_or_else(|| panic!("no line for {product_id} in {order:?}"))
}

/// A status change the status machine refuses, from `from` to `to`.
#[track_caller]
fn assert_invalid_transition(refused: &Status, from: &str, to: &str) {
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(refused), reason::INVALID_TRANSITION);
    assert_eq!(
        refused.message(),
        format!("Cannot transition order status from '{from}' to '{to}'")
    );
    assert_eq!(metadata_of(refused, meta::FROM), from);
    assert_eq!(metadata_of(refused, meta::TO), to);
}

/// A world and a pending order of `quantity` of a new product of stock
/// `stock`, which it took; the product and the order.
async fn pending_order(stock: i32, quantity: i32) -> (World, String, Order) {
    let mut w = world().await;
    let product = w.product("Chair", "49.50", stock).await;
    let order = w.order(7, &product, quantity).await;
    assert_eq!(w.stock(&product).await, stock - quantity);
    (w, product, order)
}

/// UpdateOrderStatus of `order` to `to`, which must succeed; the order as
/// it is now.
async fn moved(w: &mut World, order: &Order, to: OrderStatus) -> Order {
    let moved = w.set_status(&order.id, to).await.expect("status changed");
    assert_eq!(moved.status, to as i32);
    moved
}

/// Every inventory call of the order service was delivered.
async fn assert_outbox_empty(w: &World) {
    assert_eq!(outbox_rows(&mut w.orders_db().await).await, vec![]);
}

#[tokio::test]
async fn create_takes_stock_captures_prices_and_totals_exactly() {
    let mut w = world().await;
    let laptop = w.product("Laptop", "999.99", 10).await;
    let pen = w.product("Pen", "0.10", 100).await;

    let lines = [(laptop.as_str(), 2), (&pen, 1), (&pen, 2)];
    let order = create_order(&mut w.client, 12345, &lines, None)
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
    let laptop_line = item_of(&order, &laptop);
    assert_eq!(laptop_line.quantity, 2);
    assert_eq!(
        amount(laptop_line.price_at_purchase.as_ref()),
        dec("999.99")
    );
    let pen_line = item_of(&order, &pen);
    assert_eq!(pen_line.quantity, 3);
    assert_eq!(amount(pen_line.price_at_purchase.as_ref()), dec("0.10"));
    assert!(order.items.iter().all(|item| item.id > 0));
    assert!(order.created_at.is_some() && order.updated_at.is_some());

    assert_eq!(w.stock(&laptop).await, 8);
    assert_eq!(w.stock(&pen).await, 97);

    // Later price changes never alter an order.
    let repriced = UpdateProductRequest {
        id: laptop.clone(),
        price: Some(money("1299.00")),
        ..Default::default()
    };
    w.catalog_client
        .update_product(repriced)
        .await
        .expect("price changed");
    assert_eq!(w.get(&order.id).await.expect("order found"), order);
}

#[tokio::test]
async fn complete_keeps_the_stock_taken() {
    let (mut w, product, order) = pending_order(5, 2).await;

    let completed = moved(&mut w, &order, OrderStatus::Completed).await;
    assert_eq!(w.stock(&product).await, 3);
    // The reservation is final at the catalog: it can no longer be released.
    let refused = release(&mut w.catalog_client, &order.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&refused), reason::RESERVATION_COMMITTED);

    // The same status again is a successful no-op.
    let again = w.set_status(&order.id, OrderStatus::Completed).await;
    assert_eq!(again.expect("repeat is harmless"), completed);
    // Terminal.
    for (to, to_name) in [
        (OrderStatus::Canceled, "canceled"),
        (OrderStatus::Pending, "pending"),
    ] {
        let refused = w.set_status(&order.id, to).await.unwrap_err();
        assert_invalid_transition(&refused, "completed", to_name);
    }
    assert_eq!(w.stock(&product).await, 3);
    assert_outbox_empty(&w).await;
}

#[tokio::test]
async fn cancel_restores_the_stock_exactly_once() {
    let (mut w, product, order) = pending_order(10, 4).await;

    let canceled = moved(&mut w, &order, OrderStatus::Canceled).await;
    assert_eq!(w.stock(&product).await, 10);

    let again = w.set_status(&order.id, OrderStatus::Canceled).await;
    assert_eq!(again.expect("repeat is harmless"), canceled);
    let refused = w.set_status(&order.id, OrderStatus::Completed).await;
    assert_invalid_transition(&refused.unwrap_err(), "canceled", "completed");
    assert_eq!(w.stock(&product).await, 10);
    assert_outbox_empty(&w).await;
}

#[tokio::test]
async fn pending_to_pending_is_a_no_op() {
    let mut w = world().await;
    let product = w.product("Mug", "8.00", 3).await;
    let order = w.order(1, &product, 1).await;
    let same = w.set_status(&order.id, OrderStatus::Pending).await;
    assert_eq!(same.expect("no-op"), order);
    let unspecified = w.set_status(&order.id, OrderStatus::Unspecified).await;
    let unspecified = unspecified.unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&unspecified), ["status"]);
}

/// The ids of one page of ListOrders, and its total.
async fn page_of(
    w: &mut World,
    page: u32,
    page_size: u32,
    filter: OrderFilter,
) -> (Vec<String>, u64) {
    let listed = list_orders(&mut w.client, page, page_size, filter)
        .await
        .unwrap();
    (ids(&listed), listed.total)
}

#[tokio::test]
async fn list_filters_by_status_payment_and_customer_newest_first() {
    use OrderStatus::{Canceled, Completed, Pending};
    use PaymentStatus::{Failed, Paid, Unpaid};
    let mut w = world().await;
    let product = w.product("Book", "12.34", 100).await;
    // Oldest first: a (customer 1, pending unpaid), b (2, completed),
    // c (1, canceled), d (2, pending paid), e (1, pending failed).
    let mut created = Vec::new();
    for customer in [1, 2, 1, 2, 1] {
        created.push(w.order(customer, &product, 1).await.id);
    }
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| created[i].as_str());
    w.set_status(b, Completed).await.unwrap();
    w.set_status(c, Canceled).await.unwrap();
    w.pay(d, Paid, None).await.unwrap();
    w.pay(e, Failed, None).await.unwrap();

    let all = list_orders(&mut w.client, 1, 100, OrderFilter::default())
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(ids(&all), [e, d, c, b, a]);
    // Each order in a list is the same as GetOrder's.
    for order in &all.orders {
        assert_eq!(order, &w.get(&order.id).await.unwrap());
    }

    let filter = |status, payment_status, customer_id| OrderFilter {
        status,
        payment_status,
        customer_id,
    };
    let cases: Vec<(OrderFilter, Vec<&str>)> = vec![
        (filter(Some(Pending), None, None), vec![e, d, a]),
        (filter(Some(Completed), None, None), vec![b]),
        (filter(Some(Canceled), None, None), vec![c]),
        (filter(None, Some(Unpaid), None), vec![c, b, a]),
        (filter(None, Some(Paid), None), vec![d]),
        (filter(None, Some(Failed), None), vec![e]),
        (filter(None, None, Some(1)), vec![e, c, a]),
        (filter(None, None, Some(2)), vec![d, b]),
        (filter(None, None, Some(3)), vec![]),
        (filter(Some(Pending), Some(Unpaid), Some(1)), vec![a]),
        (
            filter(
                Some(OrderStatus::Unspecified),
                Some(PaymentStatus::Unspecified),
                None,
            ),
            vec![e, d, c, b, a],
        ),
    ];
    for (filter, expected) in cases {
        let (listed, total) = page_of(&mut w, 1, 100, filter).await;
        assert_eq!(listed, expected, "{filter:?}");
        assert_eq!(total, expected.len() as u64, "{filter:?}");
    }

    // Pages never overlap; a page past the end is empty with the true total.
    let expected: [&[&str]; 4] = [&[e, d], &[c, b], &[a], &[]];
    for (page, expected) in (1..).zip(expected) {
        let (listed, total) = page_of(&mut w, page, 2, OrderFilter::default()).await;
        assert_eq!(listed, expected, "page {page}");
        assert_eq!(total, 5, "page {page}");
    }
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
    let no_customer = OrderFilter {
        customer_id: Some(0),
        ..Default::default()
    };
    let customer = list_orders(&mut w.client, 1, 10, no_customer)
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
    let product = w.product("Desk", "150.00", 5).await;
    let ghost_a = uuid::Uuid::new_v4().to_string();
    let ghost_b = uuid::Uuid::new_v4().to_string();

    let lines = [(ghost_a.as_str(), 1), (&product, 1), (&ghost_b, 2)];
    let refused = create_order(&mut w.client, 9, &lines, None)
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
    assert_eq!(w.stock(&product).await, 5);
    // The refused order exists only as a hidden, rejected row.
    let (_, listed) = page_of(&mut w, 1, 10, OrderFilter::default()).await;
    assert_eq!(listed, 0);
    assert_eq!(
        count_in_status(&mut w.orders_db().await, "rejected").await,
        1
    );
}

#[tokio::test]
async fn insufficient_stock_is_passed_on_with_its_details() {
    let mut w = world().await;
    let plenty = w.product("Plenty", "1.00", 100).await;
    let scarce = w.product("Scarce", "2.00", 3).await;

    let lines = [(plenty.as_str(), 10), (&scarce, 4)];
    let refused = create_order(&mut w.client, 9, &lines, None)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason_of(&refused), reason::INSUFFICIENT_STOCK);
    assert_eq!(metadata_of(&refused, meta::PRODUCT_ID), scarce);
    assert_eq!(metadata_of(&refused, meta::PRODUCT_NAME), "Scarce");
    assert_eq!(metadata_of(&refused, meta::AVAILABLE), "3");
    assert_eq!(metadata_of(&refused, meta::REQUESTED), "4");
    assert_eq!(
        refused.message(),
        "Insufficient stock for product 'Scarce'. Available: 3, Requested: 4"
    );
    // All or nothing.
    assert_eq!(w.stock(&plenty).await, 100);
    assert_eq!(w.stock(&scarce).await, 3);
}

#[tokio::test]
async fn invalid_requests_name_every_field() {
    let mut w = world().await;
    let product = w.product("Cup", "3.00", 5).await;

    let refused = create_order(&mut w.client, 0, &[], None).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["customer_id", "items"]);

    let lines = [("not-a-uuid", 1), (&product, 0), (&product, -3)];
    let long_key = "k".repeat(256);
    let refused = create_order(&mut w.client, -1, &lines, Some(&long_key))
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
    assert_eq!(w.stock(&product).await, 5);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut w.orders_db().await)
        .await
        .unwrap();
    assert_eq!(written, 0);
}

/// GetOrder, UpdateOrderStatus and ApplyPayment of `id`: each refused.
async fn refusals_of_every_call(w: &mut World, id: &str) -> [Status; 3] {
    [
        w.get(id).await.unwrap_err(),
        w.set_status(id, OrderStatus::Canceled).await.unwrap_err(),
        w.pay(id, PaymentStatus::Paid, None).await.unwrap_err(),
    ]
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_refused() {
    let mut w = world().await;
    let id = uuid::Uuid::new_v4().to_string();
    for refused in refusals_of_every_call(&mut w, &id).await {
        assert_eq!(refused.code(), Code::NotFound);
        assert_eq!(refused.message(), format!("Order with id {id} not found"));
        assert_eq!(reason_of(&refused), reason::ORDER_NOT_FOUND);
    }
    let malformed = w.get("nope").await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&malformed), ["id"]);
    let malformed = w.set_status("nope", OrderStatus::Completed).await;
    assert_eq!(violated_fields(&malformed.unwrap_err()), ["id"]);
}

#[tokio::test]
async fn orders_in_internal_states_are_never_shown() {
    let mut w = world().await;
    let mut db = w.orders_db().await;
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
        for refused in refusals_of_every_call(&mut w, &id.to_string()).await {
            assert_eq!(refused.code(), Code::NotFound, "{id}: {refused:?}");
        }
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
        let (listed, total) = page_of(&mut w, 1, 10, filter).await;
        assert_eq!((total, listed.len()), (0, 0), "{filter:?}");
    }
    assert_eq!(
        stored_status(&mut db, &reserving.to_string())
            .await
            .as_deref(),
        Some("reserving")
    );
}
