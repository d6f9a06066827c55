//! The catalog's own Prometheus series (beside the shared per-RPC and pool
//! series of `platform::metrics`): what happened to reservations, and how many
//! each group-commit transaction decided.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct CatalogMetrics {
    /// ReserveInventory answers by outcome: `reserved`, `replayed`,
    /// `insufficient_stock`, `not_found`, `refused` (released/mismatch), `error`.
    pub reservations: Family<OutcomeLabel, Counter>,
    /// Units of stock taken by new reservations.
    pub units_reserved: Counter,
    /// Reservations whose stock was given back.
    pub releases: Counter,
    /// Reservations made final.
    pub commits: Counter,
    /// How many ReserveInventory calls each group-commit transaction decided.
    pub reservation_batch_size: Histogram,
}

impl CatalogMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reservations: Family::default(),
            units_reserved: Counter::default(),
            releases: Counter::default(),
            commits: Counter::default(),
            reservation_batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        };
        registry.register(
            "catalog_reservations",
            "ReserveInventory answers by outcome",
            metrics.reservations.clone(),
        );
        registry.register(
            "catalog_units_reserved",
            "Units of stock taken by new reservations",
            metrics.units_reserved.clone(),
        );
        registry.register(
            "catalog_reservation_releases",
            "Reservations whose stock was given back",
            metrics.releases.clone(),
        );
        registry.register(
            "catalog_reservation_commits",
            "Reservations made final",
            metrics.commits.clone(),
        );
        registry.register(
            "catalog_reservation_batch_size",
            "ReserveInventory calls decided per group-commit transaction",
            metrics.reservation_batch_size.clone(),
        );
        metrics
    }

    pub fn reservation_batch(&self, size: usize) {
        self.reservation_batch_size.observe(size as f64);
    }

    pub fn reservation(&self, outcome: &'static str) {
        self.reservations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}
