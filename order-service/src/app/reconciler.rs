//! The reconciler: a background loop (a pass at start, then one per interval)
//! that finishes what a crash, a timeout or a down catalog left undone:
//! - orders stuck in `reserving` past the grace period: abandon them (saga
//!   step 5: `rejected` plus a release in the outbox, in one transaction,
//!   conditional on `reserving`, so a saga that confirms first keeps its
//!   order and one that confirms later finds it abandoned);
//! - with a payment timeout (PENDING_PAYMENT_TIMEOUT): orders pending and not
//!   paid past it: cancel them (reason `payment_timeout`, see [`super::expiry`]);
//! - outbox rows that are due: deliver them;
//! - idempotency keys older than 24 hours: forget them;
//! - payment event ids older than the retention (PAYMENT_EVENT_RETENTION,
//!   30 days by default): forget them, in batches;
//! - order events older than their retention (ORDER_EVENT_RETENTION,
//!   7 days by default): delete them, oldest first, in batches.
//!
//! Replicas may all run it: abandoning and expiring are conditional updates
//! under the order's row lock (one replica wins) and outbox rows are taken with a lease, so no two replicas deliver
//! one at once. A pass is never cut half-way: stopping waits for the step
//! under way (each is short) and skips the rest.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tracing::instrument;

use crate::{error::OrderError, metrics::OrderMetrics, store::Store};

use super::{
    expiry,
    outbox::{Delivery, Relay},
    saga,
};

/// How long idempotency keys are kept (the contract promises at least 24 h).
pub const IDEMPOTENCY_KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How long payment event ids are remembered unless configured otherwise
/// (PAYMENT_EVENT_RETENTION, the same default): far longer than any
/// processor retries a delivery.
const DEFAULT_PAYMENT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long order events are kept unless configured otherwise
/// (ORDER_EVENT_RETENTION, the same default): a consumer down for up to a
/// week resumes where it stopped.
const DEFAULT_ORDER_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Rows handled per kind and pass; the rest waits for the next pass.
const BATCH: i64 = 100;

/// Payment event ids deleted per statement. Unlike the rows above, a pass
/// prunes every expired one (batch after batch, each a short transaction), so
/// the table cannot grow faster than it is pruned.
const PRUNE_BATCH: i64 = 1_000;

/// A handle on the reconciler; cheap to clone. Tests call
/// [`Reconciler::reconcile_once`] to run a pass at a moment of their choosing.
#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    relay: Relay,
    grace: Duration,
    /// Age past which payment event ids are forgotten.
    payment_event_retention: Duration,
    /// Age past which pending, unpaid orders are canceled; `None`: never.
    payment_timeout: Option<Duration>,
    /// Age past which order events are deleted.
    order_event_retention: Duration,
    metrics: OrderMetrics,
    /// Number of passes the background loop has completed.
    passes: Arc<watch::Sender<u64>>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Stuck orders abandoned (rejected, their release in the outbox).
    pub rejected: usize,
    pub delivered: usize,
    pub delivery_failed: usize,
    pub keys_pruned: u64,
    /// Payment event ids forgotten (older than the retention).
    pub events_pruned: u64,
    /// Orders canceled by the payment timeout.
    pub expired: usize,
    /// Order events deleted (older than their retention).
    pub order_events_pruned: u64,
}

impl ReconcileReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Reconciler {
    pub fn new(store: Store, relay: Relay, grace: Duration, metrics: OrderMetrics) -> Self {
        Self {
            store,
            relay,
            grace,
            payment_event_retention: DEFAULT_PAYMENT_EVENT_RETENTION,
            payment_timeout: None,
            order_event_retention: DEFAULT_ORDER_EVENT_RETENTION,
            metrics,
            passes: Arc::new(watch::channel(0).0),
        }
    }

    /// Remembers payment event ids for `retention` instead of the default
    /// (PAYMENT_EVENT_RETENTION, `Config::payment_event_retention`).
    pub fn with_payment_event_retention(mut self, retention: Duration) -> Self {
        self.payment_event_retention = retention;
        self
    }

    /// Cancels orders still pending and not paid `timeout` after their
    /// creation (PENDING_PAYMENT_TIMEOUT); `None` (the default) never does.
    pub fn with_payment_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.payment_timeout = timeout;
        self
    }

    /// Keeps order events for `retention` instead of the default
    /// (ORDER_EVENT_RETENTION).
    pub fn with_order_event_retention(mut self, retention: Duration) -> Self {
        self.order_event_retention = retention;
        self
    }

    /// One pass over everything there is to reconcile.
    pub async fn reconcile_once(&self) -> Result<ReconcileReport, OrderError> {
        let (_keep, never) = watch::channel(false);
        self.pass(never).await
    }

    /// A pass that skips what is left once `stopping` turns true. Each step
    /// runs to its end in a task of its own, so a caller that goes away never
    /// cuts one in the middle.
    #[instrument(skip_all)]
    async fn pass(&self, stopping: watch::Receiver<bool>) -> Result<ReconcileReport, OrderError> {
        let stopped = || *stopping.borrow();
        let mut report = ReconcileReport::default();
        let stale = self.store.stale_reserving(self.grace, BATCH).await?;
        for id in stale {
            if stopped() {
                return Ok(report);
            }
            let (store, relay) = (self.store.clone(), self.relay.clone());
            let abandoned = platform::runtime::run_to_completion(async move {
                saga::abandon(&store, &relay, id).await
            });
            if abandoned.await? {
                tracing::info!(order_id = %id, "stuck order abandoned: rejected, release sent");
                report.rejected += 1;
                self.metrics.reconciled_orders.inc();
            }
        }
        if let Some(timeout) = self.payment_timeout {
            for id in self.store.unpaid_past(timeout, BATCH).await? {
                if stopped() {
                    return Ok(report);
                }
                let (store, relay) = (self.store.clone(), self.relay.clone());
                let expired = platform::runtime::run_to_completion(async move {
                    expiry::expire(&store, &relay, id, timeout).await
                });
                if expired.await? {
                    tracing::info!(order_id = %id, "unpaid order expired: canceled, release sent");
                    report.expired += 1;
                    self.metrics.expired_orders.inc();
                }
            }
        }
        for outbox_id in self.store.due_outbox(BATCH).await? {
            if stopped() {
                return Ok(report);
            }
            let relay = self.relay.clone();
            let delivery =
                platform::runtime::run_to_completion(async move { relay.deliver(outbox_id).await });
            match delivery.await? {
                Delivery::Delivered => report.delivered += 1,
                Delivery::Failed => report.delivery_failed += 1,
                Delivery::Skipped => {}
            }
        }
        report.keys_pruned = self
            .store
            .prune_idempotency_keys(IDEMPOTENCY_KEY_RETENTION)
            .await?;
        while !stopped() {
            let pruned = self
                .store
                .prune_payment_events(self.payment_event_retention, PRUNE_BATCH)
                .await?;
            report.events_pruned += pruned;
            if pruned < PRUNE_BATCH as u64 {
                break;
            }
        }
        while !stopped() {
            let pruned = self
                .store
                .prune_events(self.order_event_retention, PRUNE_BATCH)
                .await?;
            report.order_events_pruned += pruned;
            if pruned < PRUNE_BATCH as u64 {
                break;
            }
        }
        let actions = [
            ("abandoned_stuck_order", report.rejected as u64),
            ("delivered_outbox", report.delivered as u64),
            ("delivery_failed", report.delivery_failed as u64),
            ("pruned_idempotency_keys", report.keys_pruned),
            ("pruned_payment_events", report.events_pruned),
            ("expired_unpaid_order", report.expired as u64),
            ("pruned_order_events", report.order_events_pruned),
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

    /// Runs a pass now and then every `interval` until `stopping` turns true.
    /// A pass under way then finishes the step it is in and skips the rest.
    pub async fn run(self, interval: Duration, mut stopping: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => break,
                _ = ticker.tick() => {}
            }
            if let Err(error) = self.pass(stopping.clone()).await {
                tracing::warn!(error = ?error, "reconciler pass failed; next pass will retry");
            }
            if *stopping.borrow() {
                break;
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
