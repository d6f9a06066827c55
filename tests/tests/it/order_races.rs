//! Concurrent calls on one order serialize in the database: exactly one state
//! change wins, stock is restored at most once, and the final state agrees with
//! the answers given. Each race runs many times. Issue 3, acceptance 5.

use proto::{
    errors::reason,
    order::v1::{Order, OrderStatus, PaymentStatus},
};
use tests::{
    RunningService,
    catalog::{CatalogClient, catalog_client, create_product, reason_of, spawn_catalog, stock_of},
    order::{
        OrderClient, create_order, get_order, order_client, orders_database, outbox_rows, pay,
        set_status, spawn_order,
    },
};
use tonic::{Code, Status};

const ROUNDS: usize = 25;
const INITIAL_STOCK: i32 = 1_000;

struct World {
    _catalog: RunningService,
    orders: RunningService,
    catalog_client: CatalogClient,
    client: OrderClient,
    product_id: String,
}

async fn world() -> World {
    let catalog = spawn_catalog().await;
    let orders = spawn_order(&catalog.url()).await;
    let mut catalog_client = catalog_client(&catalog).await;
    let product = create_product(&mut catalog_client, "Contested", "5.00", INITIAL_STOCK).await;
    World {
        client: order_client(&orders).await,
        catalog_client,
        _catalog: catalog,
        orders,
        product_id: product.id,
    }
}

impl World {
    /// A fresh pending order for 2 units; returns it and the stock after it.
    async fn pending_order(&mut self) -> (Order, i32) {
        let before = stock_of(&mut self.catalog_client, &self.product_id).await;
        let order = create_order(&mut self.client, 77, &[(&self.product_id, 2)], None)
            .await
            .unwrap();
        let after = stock_of(&mut self.catalog_client, &self.product_id).await;
        assert_eq!(after, before - 2);
        (order, after)
    }

    async fn assert_settled(&mut self) {
        let mut db = orders_database(&self.orders).await;
        assert_eq!(
            outbox_rows(&mut db).await,
            [],
            "every inventory call delivered"
        );
    }
}

#[track_caller]
fn assert_invalid_transition(status: &Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(status), reason::INVALID_TRANSITION, "{status:?}");
}

#[tokio::test]
async fn cancel_and_cancel_restore_the_stock_once() {
    let mut w = world().await;
    for round in 0..ROUNDS {
        let (order, stock_taken) = w.pending_order().await;
        let (mut one, mut two) = (w.client.clone(), w.client.clone());

        let (first, second) = tokio::join!(
            set_status(&mut one, &order.id, OrderStatus::Canceled),
            set_status(&mut two, &order.id, OrderStatus::Canceled),
        );

        // One changed the order, the other found it canceled: both succeed.
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.status, OrderStatus::Canceled as i32, "round {round}");
        assert_eq!(second.status, OrderStatus::Canceled as i32, "round {round}");
        assert_eq!(
            first.updated_at, second.updated_at,
            "one change, round {round}"
        );
        let stock = stock_of(&mut w.catalog_client, &w.product_id).await;
        assert_eq!(
            stock,
            stock_taken + 2,
            "restored exactly once, round {round}"
        );
    }
    assert_eq!(
        stock_of(&mut w.catalog_client, &w.product_id).await,
        INITIAL_STOCK
    );
    w.assert_settled().await;
}

#[tokio::test]
async fn cancel_and_complete_have_exactly_one_winner() {
    let mut w = world().await;
    let mut wins = (0, 0);
    for round in 0..ROUNDS {
        let (order, stock_taken) = w.pending_order().await;
        let (mut one, mut two) = (w.client.clone(), w.client.clone());

        let (cancel, complete) = tokio::join!(
            set_status(&mut one, &order.id, OrderStatus::Canceled),
            set_status(&mut two, &order.id, OrderStatus::Completed),
        );

        let final_order = get_order(&mut w.client, &order.id).await.unwrap();
        let stock = stock_of(&mut w.catalog_client, &w.product_id).await;
        match (cancel, complete) {
            (Ok(canceled), Err(refused)) => {
                wins.0 += 1;
                assert_invalid_transition(&refused);
                assert_eq!(
                    refused.message(),
                    "Cannot transition order status from 'canceled' to 'completed'"
                );
                assert_eq!(canceled, final_order, "round {round}");
                assert_eq!(final_order.status, OrderStatus::Canceled as i32);
                assert_eq!(stock, stock_taken + 2, "restored once, round {round}");
            }
            (Err(refused), Ok(completed)) => {
                wins.1 += 1;
                assert_invalid_transition(&refused);
                assert_eq!(
                    refused.message(),
                    "Cannot transition order status from 'completed' to 'canceled'"
                );
                assert_eq!(completed, final_order, "round {round}");
                assert_eq!(final_order.status, OrderStatus::Completed as i32);
                assert_eq!(stock, stock_taken, "stock stays taken, round {round}");
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        }
    }
    assert_eq!(wins.0 + wins.1, ROUNDS);
    w.assert_settled().await;
    println!("cancel won {} times, complete won {} times", wins.0, wins.1);
}

#[tokio::test]
async fn cancel_and_payment_agree_with_the_final_state() {
    let mut w = world().await;
    let mut orders_seen = (0, 0);
    for round in 0..ROUNDS {
        let (order, stock_taken) = w.pending_order().await;
        let (mut one, mut two) = (w.client.clone(), w.client.clone());

        let (cancel, payment) = tokio::join!(
            set_status(&mut one, &order.id, OrderStatus::Canceled),
            pay(&mut two, &order.id, PaymentStatus::Paid, None),
        );

        // Cancel always stands (a paid pending order may be canceled); the
        // payment only if it came first, while the order was still pending.
        let canceled = cancel.unwrap_or_else(|e| panic!("round {round}: cancel refused: {e:?}"));
        let final_order = get_order(&mut w.client, &order.id).await.unwrap();
        assert_eq!(
            canceled, final_order,
            "the cancel was the last change, round {round}"
        );
        assert_eq!(final_order.status, OrderStatus::Canceled as i32);
        match payment {
            Ok(paid) => {
                orders_seen.0 += 1;
                assert_eq!(paid.status, OrderStatus::Pending as i32, "round {round}");
                assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
                assert_eq!(final_order.payment_status, PaymentStatus::Paid as i32);
            }
            Err(refused) => {
                orders_seen.1 += 1;
                assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
                assert_eq!(reason_of(&refused), reason::ORDER_NOT_PENDING);
                assert!(refused.message().contains("pending"), "{refused:?}");
                assert_eq!(final_order.payment_status, PaymentStatus::Unpaid as i32);
            }
        }
        let stock = stock_of(&mut w.catalog_client, &w.product_id).await;
        assert_eq!(
            stock,
            stock_taken + 2,
            "restored exactly once, round {round}"
        );
    }
    assert_eq!(
        stock_of(&mut w.catalog_client, &w.product_id).await,
        INITIAL_STOCK
    );
    w.assert_settled().await;
    println!(
        "payment first {} times, cancel first {} times",
        orders_seen.0, orders_seen.1
    );
}

#[tokio::test]
async fn complete_and_complete_commit_once() {
    let mut w = world().await;
    for round in 0..ROUNDS {
        let (order, stock_taken) = w.pending_order().await;
        let (mut one, mut two) = (w.client.clone(), w.client.clone());

        let (first, second) = tokio::join!(
            set_status(&mut one, &order.id, OrderStatus::Completed),
            set_status(&mut two, &order.id, OrderStatus::Completed),
        );

        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first, second, "round {round}");
        assert_eq!(first.status, OrderStatus::Completed as i32);
        let stock = stock_of(&mut w.catalog_client, &w.product_id).await;
        assert_eq!(stock, stock_taken, "round {round}");
    }
    w.assert_settled().await;
}
