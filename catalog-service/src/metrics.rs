//! The catalog's own Prometheus series (beside the shared per-RPC and pool
//! series of `platform::metrics`): what happened to reservations, and how many
//! each group-commit transaction decided.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

use crate::{
    domain::{Refusal, reservation::Reserved},
    error::CatalogError,
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
        platform::register_metrics!(registry, metrics,
            reservations => "catalog_reservations", "ReserveInventory answers by outcome";
            units_reserved => "catalog_units_reserved", "Units of stock taken by new reservations";
            releases => "catalog_reservation_releases", "Reservations whose stock was given back";
            commits => "catalog_reservation_commits", "Reservations made final";
            reservation_batch_size => "catalog_reservation_batch_size",
                "ReserveInventory calls decided per group-commit transaction";
        );
        metrics
    }

    pub fn reservation_batch(&self, size: usize) {
        self.reservation_batch_size.observe(size as f64);
    }

    /// Counts a ReserveInventory answer by outcome, and the units a new
    /// reservation took.
    pub fn reserved(&self, answer: &Result<Reserved, CatalogError>) {
        let outcome = match answer {
            Ok(reserved) if reserved.replayed => "replayed",
            Ok(_) => "reserved",
            Err(CatalogError::Refused(refusal)) => match refusal {
                Refusal::InsufficientStock { .. } => "insufficient_stock",
                Refusal::ProductsNotFound(_) => "not_found",
                Refusal::ReservationReleased(_) | Refusal::ReservationMismatch(_) => "refused",
                _ => "error",
            },
            Err(_) => "error",
        };
        self.reservations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        if let Ok(reserved) = answer
            && !reserved.replayed
        {
            let units: i64 = reserved.lines.iter().map(|l| i64::from(l.quantity)).sum();
            self.units_reserved
                .inc_by(u64::try_from(units).unwrap_or(0));
        }
    }
}
