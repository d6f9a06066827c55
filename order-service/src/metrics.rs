//! The order service's own Prometheus series (beside the shared per-RPC and
//! pool series of `proto::metrics`): how sagas end, what the outbox and the
//! reconciler do.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

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
    /// Undelivered outbox rows (refreshed when scraped).
    pub outbox_backlog: Gauge,
}

impl OrderMetrics {
    /// Adds the series to `registry`; the handles keep counting into it.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "order_creations",
            "CreateOrder sagas by outcome",
            self.creations.clone(),
        );
        registry.register(
            "order_outbox_deliveries",
            "Inventory calls from the outbox by outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "order_reconciled_orders",
            "Stuck orders released and rejected by the reconciler",
            self.reconciled_orders.clone(),
        );
        registry.register(
            "order_outbox_backlog",
            "Undelivered outbox rows",
            self.outbox_backlog.clone(),
        );
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
