//! Concurrent calls on one order serialize in the database: exactly one state
//! change wins, stock is restored at most once, and the final state agrees with
//! the answers given. Each race runs many times.

use proto::{
    errors::reason,
    order::v1::{Order, OrderStatus, PaymentStatus},
};
use tests::{
    catalog::reason_of,
    order::{OrderClient, World, outbox_rows, pay, set_status, world},
};
use tonic::{Code, Status};

const ROUNDS: usize = 25;
const INITIAL_STOCK: i32 = 1_000;

/// A world and the one product every race orders.
struct Race {
    w: World,
    product: String,
}

async fn race() -> Race {
    let mut w = world().await;
    let product = w.product("Contested", "5.00", INITIAL_STOCK).await;
    Race { w, product }
}

impl Race {
    /// A fresh pending order for 2 units; returns it and the stock after it.
    async fn pending_order(&mut self) -> (Order, i32) {
        let before = self.stock().await;
        let order = self.w.order(77, &self.product, 2).await;
        let after = self.stock().await;
        assert_eq!(after, before - 2);
        (order, after)
    }

    /// A fresh pending order (2 units), then `a` and `b` sent on it at
    /// once: the order, the stock after it was taken, both answers.
    async fn at_once(&mut self, a: Call, b: Call) -> (Order, i32, Answer, Answer) {
        let (order, stock_taken) = self.pending_order().await;
        let (mut one, mut two) = (self.w.client.clone(), self.w.client.clone());
        let (first, second) =
            tokio::join!(a.send(&mut one, &order.id), b.send(&mut two, &order.id));
        (order, stock_taken, first, second)
    }

    /// [`Self::at_once`] with `call` twice; both must succeed. The stock
    /// after the order took it, both answers.
    async fn twice_at_once(&mut self, call: Call) -> (i32, Order, Order) {
        let (_, stock_taken, first, second) = self.at_once(call, call).await;
        (
            stock_taken,
            first.expect("succeeds"),
            second.expect("succeeds"),
        )
    }

    async fn stock(&mut self) -> i32 {
        self.w.stock(&self.product).await
    }

    /// After a round: the stock is back, exactly once, to what it was
    /// before the round's order took it.
    async fn assert_restored_once(&mut self, stock_taken: i32, round: usize) {
        let stock = self.stock().await;
        assert_eq!(
            stock,
            stock_taken + 2,
            "restored exactly once, round {round}"
        );
    }

    /// After every round: all the stock is back and every inventory call
    /// was delivered.
    async fn assert_all_restored_and_settled(&mut self) {
        assert_eq!(self.stock().await, INITIAL_STOCK);
        self.assert_settled().await;
    }

    async fn assert_settled(&mut self) {
        let mut db = self.w.orders_db().await;
        assert_eq!(
            outbox_rows(&mut db).await,
            [],
            "every inventory call delivered"
        );
    }
}

type Answer = Result<Order, Status>;

/// What a racer sends.
#[derive(Debug, Clone, Copy)]
enum Call {
    Cancel,
    Complete,
    Pay,
}

impl Call {
    async fn send(self, client: &mut OrderClient, order_id: &str) -> Answer {
        match self {
            Call::Cancel => set_status(client, order_id, OrderStatus::Canceled).await,
            Call::Complete => set_status(client, order_id, OrderStatus::Completed).await,
            Call::Pay => pay(client, order_id, PaymentStatus::Paid, None).await,
        }
    }
}

#[track_caller]
fn assert_invalid_transition(status: &Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(status), reason::INVALID_TRANSITION, "{status:?}");
}

#[tokio::test]
async fn cancel_and_cancel_restore_the_stock_once() {
    let mut r = race().await;
    for round in 0..ROUNDS {
        // One changed the order, the other found it canceled: both succeed.
        let (stock_taken, first, second) = r.twice_at_once(Call::Cancel).await;
        assert_eq!(first.status, OrderStatus::Canceled as i32, "round {round}");
        assert_eq!(second.status, OrderStatus::Canceled as i32, "round {round}");
        assert_eq!(
            first.updated_at, second.updated_at,
            "one change, round {round}"
        );
        r.assert_restored_once(stock_taken, round).await;
    }
    r.assert_all_restored_and_settled().await;
}

#[tokio::test]
async fn cancel_and_complete_have_exactly_one_winner() {
    let mut r = race().await;
    let mut wins = (0, 0);
    for round in 0..ROUNDS {
        let (order, stock_taken, cancel, complete) = r.at_once(Call::Cancel, Call::Complete).await;

        let final_order = r.w.get(&order.id).await.unwrap();
        let stock = r.stock().await;
        // The winner's answer is the final order; the loser is refused,
        // from the winner's status to its own.
        let (winner, refused, won, lost) = match (cancel, complete) {
            (Ok(canceled), Err(refused)) => {
                wins.0 += 1;
                assert_eq!(stock, stock_taken + 2, "restored once, round {round}");
                (canceled, refused, OrderStatus::Canceled, "completed")
            }
            (Err(refused), Ok(completed)) => {
                wins.1 += 1;
                assert_eq!(stock, stock_taken, "stock stays taken, round {round}");
                (completed, refused, OrderStatus::Completed, "canceled")
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        assert_invalid_transition(&refused);
        let from = if won == OrderStatus::Canceled {
            "canceled"
        } else {
            "completed"
        };
        assert_eq!(
            refused.message(),
            format!("Cannot transition order status from '{from}' to '{lost}'")
        );
        assert_eq!(winner, final_order, "round {round}");
        assert_eq!(final_order.status, won as i32);
    }
    assert_eq!(wins.0 + wins.1, ROUNDS);
    r.assert_settled().await;
    println!("cancel won {} times, complete won {} times", wins.0, wins.1);
}

#[tokio::test]
async fn cancel_and_payment_agree_with_the_final_state() {
    let mut r = race().await;
    let (mut payment_first, mut cancel_first) = (0, 0);
    for round in 0..ROUNDS {
        let (order, stock_taken, cancel, payment) = r.at_once(Call::Cancel, Call::Pay).await;

        // Cancel always stands (a paid pending order may be canceled); the
        // payment only if it came first, while the order was still pending.
        let canceled = cancel.unwrap_or_else(|e| panic!("round {round}: cancel refused: {e:?}"));
        let final_order = r.w.get(&order.id).await.unwrap();
        assert_eq!(
            canceled, final_order,
            "the cancel was the last change, round {round}"
        );
        assert_eq!(final_order.status, OrderStatus::Canceled as i32);
        match payment {
            Ok(paid) => {
                payment_first += 1;
                assert_eq!(paid.status, OrderStatus::Pending as i32, "round {round}");
                assert_eq!(paid.payment_status, PaymentStatus::Paid as i32);
                assert_eq!(final_order.payment_status, PaymentStatus::Paid as i32);
            }
            Err(refused) => {
                cancel_first += 1;
                assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
                assert_eq!(reason_of(&refused), reason::ORDER_NOT_PENDING);
                assert!(refused.message().contains("pending"), "{refused:?}");
                assert_eq!(final_order.payment_status, PaymentStatus::Unpaid as i32);
            }
        }
        r.assert_restored_once(stock_taken, round).await;
    }
    r.assert_all_restored_and_settled().await;
    println!("payment first {payment_first} times, cancel first {cancel_first} times");
}

#[tokio::test]
async fn complete_and_complete_commit_once() {
    let mut r = race().await;
    for round in 0..ROUNDS {
        let (stock_taken, first, second) = r.twice_at_once(Call::Complete).await;
        assert_eq!(first, second, "round {round}");
        assert_eq!(first.status, OrderStatus::Completed as i32);
        let stock = r.stock().await;
        assert_eq!(stock, stock_taken, "round {round}");
    }
    r.assert_settled().await;
}
