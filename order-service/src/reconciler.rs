//! The reconciler: a background loop (a pass at start, then one per interval)
//! that finishes what a crash, a timeout or a down catalog left undone:
//! - orders stuck in `reserving` past the grace period: release their
//!   reservation and mark them `rejected` (saga step 5);
//! - outbox rows that are due: deliver them;
//! - idempotency keys older than 24 hours: forget them.
//!
//! Replicas may all run it: stuck orders are taken with `FOR UPDATE SKIP
//! LOCKED` and outbox rows with a lease, so no two replicas work on one.

use std::{sync::Arc, time::Duration};

use tokio::sync::{oneshot, watch};
use tonic::Status;
use tracing::instrument;

use crate::{
    catalog_client::CatalogClient,
    error::OrderError,
    metrics::OrderMetrics,
    outbox::{Delivery, Relay},
    saga::rejection_of,
    store::Store,
};

/// How long idempotency keys are kept (the contract promises at least 24 h).
pub const IDEMPOTENCY_KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Rows handled per kind and pass; the rest waits for the next pass.
const BATCH: i64 = 100;

/// A handle on the reconciler; cheap to clone. Tests call
/// [`Reconciler::reconcile_once`] to run a pass at a moment of their choosing.
#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    catalog: CatalogClient,
    relay: Relay,
    grace: Duration,
    metrics: OrderMetrics,
    /// Number of passes the background loop has completed.
    passes: Arc<watch::Sender<u64>>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Stuck orders released and rejected.
    pub rejected: usize,
    /// Stuck orders whose release failed (tried again next pass).
    pub release_failed: usize,
    pub delivered: usize,
    pub delivery_failed: usize,
    pub keys_pruned: u64,
}

impl ReconcileReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Reconciler {
    pub fn new(
        store: Store,
        catalog: CatalogClient,
        relay: Relay,
        grace: Duration,
        metrics: OrderMetrics,
    ) -> Self {
        Self {
            store,
            catalog,
            relay,
            grace,
            metrics,
            passes: Arc::new(watch::channel(0).0),
        }
    }

    /// One pass over everything there is to reconcile.
    #[instrument(skip(self))]
    pub async fn reconcile_once(&self) -> Result<ReconcileReport, OrderError> {
        let mut report = ReconcileReport::default();
        let rejection = rejection_of(&Status::from(OrderError::CatalogUnavailable));
        for id in self.store.stale_reserving(self.grace, BATCH).await? {
            // Held until rejected or dropped, so a late saga confirmation waits
            // and then finds the order no longer `reserving`.
            let Some(claim) = self.store.claim_reserving(id).await? else {
                continue;
            };
            match self.catalog.release(id).await {
                Ok(released) => {
                    claim.reject(&rejection).await?;
                    tracing::info!(order_id = %id, released, "stuck order released and rejected");
                    report.rejected += 1;
                    self.metrics.reconciled_orders.inc();
                }
                Err(status) => {
                    tracing::warn!(order_id = %id, code = ?status.code(), "cannot release stuck order yet");
                    report.release_failed += 1;
                }
            }
        }
        for outbox_id in self.store.due_outbox(BATCH).await? {
            match self.relay.deliver(outbox_id).await? {
                Delivery::Delivered => report.delivered += 1,
                Delivery::Failed => report.delivery_failed += 1,
                Delivery::Skipped => {}
            }
        }
        report.keys_pruned = self
            .store
            .prune_idempotency_keys(IDEMPOTENCY_KEY_RETENTION)
            .await?;
        let actions = [
            ("released_stuck_order", report.rejected as u64),
            ("release_failed", report.release_failed as u64),
            ("delivered_outbox", report.delivered as u64),
            ("delivery_failed", report.delivery_failed as u64),
            ("pruned_idempotency_keys", report.keys_pruned),
        ];
        for (action, count) in actions {
            self.metrics.reconciler_action(action, count);
        }
        if report.is_empty() {
            tracing::debug!("reconciler pass: nothing to do");
        } else {
            tracing::info!(?report, "reconciler pass");
        }
        Ok(report)
    }

    /// Runs a pass now and then every `interval` until `stop` fires. A pass
    /// cut short by `stop` is safe: every step is idempotent or transactional.
    pub async fn run(self, interval: Duration, mut stop: oneshot::Receiver<()>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = &mut stop => break,
                result = self.reconcile_once() => {
                    if let Err(error) = result {
                        tracing::warn!(error = ?error, "reconciler pass failed; next pass will retry");
                    }
                }
            }
            self.passes.send_modify(|passes| *passes += 1);
        }
        tracing::info!("reconciler stopped");
    }

    /// Waits until the background loop has completed its first pass (the one
    /// at start), so a test's own passes and requests do not overlap it.
    pub async fn wait_for_first_pass(&self) {
        let mut passes = self.passes.subscribe();
        // Err only if the sender is gone, which this handle prevents.
        let _ = passes.wait_for(|passes| *passes >= 1).await;
    }
}
