//! The order service's own Prometheus series (beside the shared per-RPC and
//! pool series of `platform::metrics`): how sagas end, what the outbox and the
//! reconciler do.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{domain::Refusal, error::refusal};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct OrderMetrics {
    /// CreateOrder sagas by outcome: `created`, `replayed`, `refused`,
    /// `unavailable`, `error`.
    pub creations: Family<OutcomeLabel, Counter>,
    /// Outbox deliveries by outcome: `delivered`, `failed`.
    pub deliveries: Family<OutcomeLabel, Counter>,
    /// Stuck `reserving` orders the reconciler released and rejected.
    pub reconciled_orders: Counter,
    /// Pending orders canceled because they stayed unpaid past
    /// PENDING_PAYMENT_TIMEOUT.
    pub expired_orders: Counter,
    /// Order events numbered by this replica's sequencer.
    pub events_sequenced: Counter,
    /// WatchOrderEvents streams open on this replica.
    pub event_watchers: Gauge,
    /// Undelivered outbox rows (refreshed when scraped).
    pub outbox_backlog: Gauge,
    /// Age in seconds of the oldest undelivered outbox row, 0 when none
    /// (refreshed when scraped).
    pub outbox_oldest_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Orders that did not become pending, by reason: the catalog's reason
    /// (`insufficient_stock`, `products_not_found`, ...) or
    /// `catalog_unavailable`.
    pub rejections: Family<ReasonLabel, Counter>,
    /// What the reconciler did, by action: `abandoned_stuck_order`,
    /// `delivered_outbox`, `delivery_failed`, `expired_unpaid_order`,
    /// `pruned_idempotency_keys`, `pruned_payment_events`,
    /// `pruned_order_events`.
    pub reconciler_actions: Family<ActionLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

impl OrderMetrics {
    /// Adds the series to `registry`; the handles keep counting into it.
    pub fn register(&self, registry: &mut Registry) {
        platform::register_metrics!(registry, self,
            creations => "order_creations", "CreateOrder sagas by outcome";
            deliveries => "order_outbox_deliveries", "Inventory calls from the outbox by outcome";
            reconciled_orders => "order_reconciled_orders",
                "Stuck orders released and rejected by the reconciler";
            expired_orders => "order_expired_orders",
                "Pending orders canceled because they stayed unpaid past the payment timeout";
            events_sequenced => "order_events_sequenced", "Order events numbered by this replica";
            event_watchers => "order_event_watchers", "WatchOrderEvents streams open on this replica";
            outbox_backlog => "order_outbox_backlog", "Undelivered outbox rows";
            outbox_oldest_age_seconds => "order_outbox_oldest_age_seconds",
                "Age of the oldest undelivered outbox row, 0 when none";
            rejections => "order_rejections", "Orders that did not become pending, by reason";
            reconciler_actions => "order_reconciler_actions", "What the reconciler did, by action";
        );
    }

    /// An order the catalog refused, by the refusal's reason.
    pub fn refusal(&self, refusal: &Refusal) {
        self.rejection(&refusal::label(refusal));
    }

    pub fn rejection(&self, reason: &str) {
        self.rejections
            .get_or_create(&ReasonLabel {
                reason: reason.to_ascii_lowercase(),
            })
            .inc();
    }

    pub fn reconciler_action(&self, action: &'static str, count: u64) {
        if count > 0 {
            self.reconciler_actions
                .get_or_create(&ActionLabel { action })
                .inc_by(count);
        }
    }

    pub fn creation(&self, outcome: &'static str) {
        self.creations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}
