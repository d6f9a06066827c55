//! What each diagram (by its `%% diagram: <id>`) must show, beyond naming
//! only real things.

/// What each diagram must show, beyond naming only real things.
#[derive(Debug)]
pub struct Expected {
    pub id: &'static str,
    /// Names (RPCs, tables, quoted states, ...) the diagram must mention.
    pub mentions: &'static [&'static str],
    /// For state machines: the `table.column` whose states are drawn.
    pub states_of: Option<&'static str>,
}

pub const EXPECTED: &[Expected] = &[
    Expected {
        id: "architecture",
        // Plus every RPC of every service, and each database's tables.
        mentions: &["OrderService", "CatalogService"],
        states_of: None,
    },
    Expected {
        id: "observability",
        mentions: &[],
        states_of: None,
    },
    Expected {
        id: "order-create",
        mentions: &[
            "CreateOrder",
            "ReserveInventory",
            "ReleaseInventory",
            "orders",
            "idempotency_keys",
            "order_items",
            "reservations",
            "reservation_lines",
            "products",
            "reserving",
            "pending",
            "rejected",
            "held",
            "released",
        ],
        states_of: None,
    },
    Expected {
        id: "order-cancel",
        mentions: &[
            "UpdateOrderStatus",
            "ReleaseInventory",
            "orders",
            "outbox",
            "reservations",
            "products",
            "pending",
            "canceled",
            "release",
            "released",
        ],
        states_of: None,
    },
    Expected {
        id: "order-recovery",
        mentions: &[
            "ReleaseInventory",
            "CommitInventory",
            "orders",
            "outbox",
            "idempotency_keys",
            "reservations",
            "reserving",
            "rejected",
            "release",
            "commit",
            "released",
            "committed",
            "RECONCILE_INTERVAL",
            "RESERVING_GRACE",
        ],
        states_of: None,
    },
    Expected {
        id: "order-status",
        mentions: &[
            "CreateOrder",
            "ReserveInventory",
            "ReleaseInventory",
            "UpdateOrderStatus",
            "CommitInventory",
        ],
        states_of: Some("orders.status"),
    },
    Expected {
        id: "payment-status",
        mentions: &[
            "ApplyPayment",
            "PAYMENT_STATUS_PAID",
            "PAYMENT_STATUS_FAILED",
        ],
        states_of: Some("orders.payment_status"),
    },
    Expected {
        id: "reservation-state",
        mentions: &["ReserveInventory", "ReleaseInventory", "CommitInventory"],
        states_of: Some("reservations.state"),
    },
];
