//! Generated sequences of operations against the status and payment
//! machines, applied the way the application applies them (a status change
//! goes through [`transition`] and writes its outbox action; a payment is
//! taken only by an order that [`accepts_payment`], through
//! [`payment_transition`]). Whatever the sequence, the invariants hold after
//! every step.

use proptest::prelude::*;

use super::{
    InventoryAction, OrderStatus, PaymentStatus, StatusChange,
    payment::{accepts_payment, payment_transition},
    status::transition,
};

/// One request an order can receive.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// UpdateOrderStatus (or the saga / reconciler moving an order on).
    Status(OrderStatus),
    /// ApplyPayment.
    Payment(PaymentStatus),
}

/// An order as the database holds it, plus what its outbox rows asked of
/// the catalog over its whole life.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    status: OrderStatus,
    payment: PaymentStatus,
    /// Release rows written: stock given back.
    releases: u32,
    /// Commit rows written: stock sold for good.
    commits: u32,
    /// The order ever reached pending, i.e. it holds a reservation.
    reserved: bool,
}

impl Model {
    /// A new order: the saga's first state.
    fn new() -> Self {
        Self {
            status: OrderStatus::Reserving,
            payment: PaymentStatus::Unpaid,
            releases: 0,
            commits: 0,
            reserved: false,
        }
    }

    /// Applies `op` as the application does; `false` when it was refused (and then
    /// nothing changed).
    fn apply(&mut self, op: Op) -> bool {
        match op {
            Op::Status(to) => match transition(self.status, to) {
                Ok(StatusChange::Unchanged) => true,
                Ok(StatusChange::Changed(action)) => {
                    self.status = to;
                    self.reserved |= to == OrderStatus::Pending;
                    match action {
                        Some(InventoryAction::Release) => self.releases += 1,
                        Some(InventoryAction::Commit) => self.commits += 1,
                        None => {}
                    }
                    true
                }
                Err(_) => false,
            },
            Op::Payment(to) => {
                if accepts_payment(self.status, None).is_err() {
                    return false;
                }
                match payment_transition(self.payment, to) {
                    Ok(true) => {
                        self.payment = to;
                        true
                    }
                    Ok(false) => true,
                    Err(_) => false,
                }
            }
        }
    }
}

fn is_terminal(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Completed | OrderStatus::Canceled | OrderStatus::Rejected
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::sample::select(OrderStatus::ALL.to_vec()).prop_map(Op::Status),
        proptest::sample::select(PaymentStatus::ALL.to_vec()).prop_map(Op::Payment),
    ]
}

/// Sequences biased towards getting the order past the saga, so that the
/// interesting states (pending, paid) are reached often.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    (
        proptest::bool::weighted(0.8),
        proptest::collection::vec(op(), 0..60),
    )
        .prop_map(|(reserve_first, mut ops)| {
            if reserve_first {
                ops.insert(0, Op::Status(OrderStatus::Pending));
            }
            ops
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_sequence_keeps_the_invariants(ops in ops()) {
        let mut order = Model::new();
        for op in ops {
            let before = order.clone();
            let applied = order.apply(op);

            // A refusal changes nothing.
            if !applied {
                prop_assert_eq!(&order, &before, "{:?}", op);
            }
            // Terminal states stay terminal, exactly as they were.
            if is_terminal(before.status) {
                prop_assert_eq!(order.status, before.status, "{:?}", op);
            }
            // Nothing goes back to the saga's first state.
            if before.status != OrderStatus::Reserving {
                prop_assert_ne!(order.status, OrderStatus::Reserving);
            }
            // Paid stays paid; nothing goes back to unpaid.
            if before.payment == PaymentStatus::Paid {
                prop_assert_eq!(order.payment, PaymentStatus::Paid);
            }
            if before.payment != PaymentStatus::Unpaid {
                prop_assert_ne!(order.payment, PaymentStatus::Unpaid);
            }
            // Only a pending order takes a payment, and a payment never moves
            // the order status.
            if order.payment != before.payment {
                prop_assert_eq!(before.status, OrderStatus::Pending);
                prop_assert_eq!(order.status, OrderStatus::Pending);
            }
            // Stock is given back at most once, sold at most once, never both,
            // and only for an order that held a reservation.
            prop_assert!(order.releases <= 1 && order.commits <= 1);
            prop_assert!(order.releases + order.commits <= 1);
            prop_assert!(order.reserved || order.releases + order.commits == 0);
            prop_assert_eq!(order.releases == 1, order.status == OrderStatus::Canceled);
            prop_assert_eq!(order.commits == 1, order.status == OrderStatus::Completed);
            // A rejected order never held stock that the outbox must return.
            if order.status == OrderStatus::Rejected {
                prop_assert!(!order.reserved);
            }
            // Only pending orders change payment, so a payment other than
            // unpaid means the order was pending at some point.
            if order.payment != PaymentStatus::Unpaid {
                prop_assert!(order.reserved);
            }
        }
    }

    #[test]
    fn repeating_a_request_is_harmless(ops in ops(), repeat in op()) {
        // Whatever state an order is in, the same request twice in a row
        // leaves it as once did (retries and duplicate deliveries).
        let mut order = Model::new();
        for op in ops {
            order.apply(op);
        }
        let applied_once = order.apply(repeat);
        let once = order.clone();
        let applied_twice = order.apply(repeat);
        prop_assert_eq!(&order, &once);
        // An applied request applies again as a no-op; a refused one stays refused,
        // except that the saga's internal moves are never repeated.
        if let Op::Payment(_) = repeat {
            prop_assert_eq!(applied_once, applied_twice);
        }
        if let Op::Status(to) = repeat
            && to.is_visible()
            && applied_once
        {
            prop_assert!(applied_twice);
        }
    }

    #[test]
    fn transitions_from_any_state_respect_the_machines(
        from in proptest::sample::select(OrderStatus::ALL.to_vec()),
        to in proptest::sample::select(OrderStatus::ALL.to_vec()),
        paid_from in proptest::sample::select(PaymentStatus::ALL.to_vec()),
        paid_to in proptest::sample::select(PaymentStatus::ALL.to_vec()),
    ) {
        match transition(from, to) {
            Ok(StatusChange::Changed(action)) => {
                prop_assert_ne!(from, to);
                prop_assert!(!is_terminal(from));
                // Only leaving pending touches the catalog's stock.
                prop_assert_eq!(action.is_some(), from == OrderStatus::Pending);
            }
            Ok(StatusChange::Unchanged) => prop_assert!(from == to && from.is_visible()),
            Err(error) => {
                prop_assert_eq!((error.from, error.to), (from, to));
            }
        }
        match payment_transition(paid_from, paid_to) {
            Ok(changed) => {
                prop_assert_eq!(changed, paid_from != paid_to);
                prop_assert!(paid_from != PaymentStatus::Paid || paid_to == PaymentStatus::Paid);
                // Nothing goes back to unpaid.
                if changed {
                    prop_assert_ne!(paid_to, PaymentStatus::Unpaid);
                }
            }
            Err(error) => prop_assert_eq!((error.from, error.to), (paid_from, paid_to)),
        }
    }
}
