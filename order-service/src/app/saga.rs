//! The CreateOrder saga. Its state lives in the orders database, so a crash at
//! any point leaves nothing leaked: an order stuck in `reserving` is finished
//! by the reconciler.
//!
//! 1. insert the order as `reserving` (reservation id = order id), with its
//!    idempotency key, in one transaction;
//! 2. ReserveInventory at the catalog, with a deadline;
//! 3. taken: lines, exact total and `pending` in one transaction;
//! 4. refused: `rejected`, remembering the catalog's refusal (its reason,
//!    details and message), which the caller gets;
//! 5. unknown outcome: `rejected` plus a "release" outbox row in one
//!    transaction, then the release is delivered (a tombstone makes it safe
//!    even if the reserve never arrived; the outbox retries it until the
//!    catalog confirms); UNAVAILABLE.
//!
//! Confirmation (3) and abandonment (5, by the saga or by the reconciler for a
//! saga that went quiet) are both conditional on `reserving`, so exactly one
//! wins: a saga the reconciler abandoned can no longer confirm, and one that
//! confirmed is never released. Whatever the saga answers, its order has left
//! `reserving` by then (unless the orders database itself failed; then the
//! reconciler abandons it after its grace period).

use std::time::Duration;

use tokio::time::Instant;
use tracing::instrument;
use uuid::Uuid;

use crate::{
    catalog_client::{CatalogClient, ReserveOutcome},
    domain::{self, InventoryAction, NewOrder, Order, OrderStatus},
    error::OrderError,
    metrics::OrderMetrics,
    store::{Begun, Store},
};

use super::{outbox::Relay, visible_order};

#[derive(Clone)]
pub struct Saga {
    store: Store,
    catalog: CatalogClient,
    relay: Relay,
    /// How long a repeated request waits for the first one to finish.
    idempotency_wait: Duration,
    metrics: OrderMetrics,
}

impl Saga {
    pub fn new(store: Store, catalog: CatalogClient, relay: Relay, metrics: OrderMetrics) -> Self {
        // The first request takes at most two catalog calls (reserve, then
        // release) plus a few statements.
        let idempotency_wait = catalog.timeout() * 2 + Duration::from_secs(2);
        Self {
            store,
            catalog,
            relay,
            idempotency_wait,
            metrics,
        }
    }

    /// Creates the order, or, for a repeated idempotency key with the same
    /// request, answers what the first request got.
    #[instrument(skip_all, fields(customer_id = order.customer_id, keyed = order.idempotency_key.is_some()))]
    pub async fn create_order(&self, order: NewOrder) -> Result<Order, OrderError> {
        let request_hash = order.request_hash();
        let id = Uuid::now_v7();
        let (result, replayed) = match self.store.begin_order(id, &order, &request_hash).await? {
            Begun::Started => (self.reserve(id, &order).await, false),
            Begun::Existing {
                order_id,
                request_hash: first_hash,
            } => {
                if first_hash != request_hash {
                    return Err(OrderError::IdempotencyKeyMismatch);
                }
                tracing::info!(%order_id, "repeated request: answering the first one's result");
                (self.outcome_of(order_id).await, true)
            }
        };
        self.metrics.creation(match &result {
            Ok(_) if replayed => "replayed",
            Ok(_) => "created",
            Err(OrderError::Refused(_)) => "refused",
            Err(OrderError::CatalogUnavailable | OrderError::InProgress) => "unavailable",
            Err(_) => "error",
        });
        if !replayed {
            match &result {
                Err(OrderError::Refused(refusal)) => self.metrics.refusal(refusal),
                Err(OrderError::CatalogUnavailable) => {
                    self.metrics.rejection("catalog_unavailable")
                }
                _ => {}
            }
        }
        result
    }

    /// Steps 2-5.
    #[instrument(skip(self, order))]
    async fn reserve(&self, id: Uuid, order: &NewOrder) -> Result<Order, OrderError> {
        match self.catalog.reserve(id, &order.items).await {
            ReserveOutcome::Reserved(lines) => {
                let total = match domain::order::total(&lines) {
                    Ok(total) => total,
                    Err(error) => {
                        // Stock is held for an order we cannot record: give it back.
                        let _ = self.abandon(id).await;
                        return Err(OrderError::internal(error));
                    }
                };
                let confirmed = match self.store.confirm_order(id, &lines, total).await {
                    Ok(confirmed) => confirmed,
                    Err(error) => {
                        // Confirmed or not, the order must not stay `reserving`
                        // holding stock: abandoning is a no-op if it did commit.
                        let _ = abandon(&self.store, &self.relay, id).await;
                        return Err(error);
                    }
                };
                match confirmed {
                    Some(order) => {
                        tracing::info!(order_id = %id, %total, "order created");
                        Ok(order)
                    }
                    None => {
                        // The reconciler judged the saga abandoned (it took
                        // longer than the grace period) and is releasing the
                        // stock: the order is not ours to confirm any more.
                        // Abandoning is a no-op then; it is what keeps stock
                        // from being stranded should the order be in any
                        // other state.
                        tracing::warn!(order_id = %id, "order abandoned by the reconciler before confirmation");
                        self.abandon(id).await
                    }
                }
            }
            ReserveOutcome::Refused(refusal) => {
                if self.store.reject_order(id, &refusal).await? {
                    tracing::info!(order_id = %id, kind = ?refusal.reason.kind(), "order refused by the catalog");
                    Err(OrderError::Refused(refusal))
                } else {
                    // Already rejected by the reconciler (whose release left a
                    // tombstone the reserve ran into): an unknown outcome to us.
                    Err(OrderError::CatalogUnavailable)
                }
            }
            ReserveOutcome::Unknown(failure) => {
                tracing::warn!(
                    order_id = %id,
                    code = %failure.code,
                    message = %failure.message,
                    "reservation outcome unknown: releasing"
                );
                self.abandon(id).await
            }
        }
    }

    /// Step 5: undo a reservation whose outcome is unknown. Always answers
    /// UNAVAILABLE; the idempotency key is freed so a retry starts afresh.
    async fn abandon(&self, id: Uuid) -> Result<Order, OrderError> {
        abandon(&self.store, &self.relay, id).await?;
        Err(OrderError::CatalogUnavailable)
    }

    /// What a repeated request answers: waits (bounded) while the first
    /// request is still in the saga, then gives its order or replays its error.
    async fn outcome_of(&self, order_id: Uuid) -> Result<Order, OrderError> {
        let deadline = Instant::now() + self.idempotency_wait;
        let mut delay = Duration::from_millis(20);
        loop {
            let state = self
                .store
                .saga_state(order_id)
                .await?
                .ok_or(OrderError::InProgress)?;
            match state.status {
                OrderStatus::Reserving => {}
                OrderStatus::Pending | OrderStatus::Completed | OrderStatus::Canceled => {
                    return visible_order(&self.store, order_id).await;
                }
                OrderStatus::Rejected => {
                    return Err(match state.refusal {
                        Some(refusal) => OrderError::Refused(refusal),
                        None => OrderError::CatalogUnavailable,
                    });
                }
            }
            if Instant::now() + delay > deadline {
                return Err(OrderError::InProgress);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

/// Saga step 5, for the saga and the reconciler alike: an order whose
/// reservation may or may not be held becomes `rejected`, its idempotency key
/// is freed (its caller learnt nothing, and may retry afresh) and a "release
/// reservation" outbox row is written, in one transaction. From then on the
/// saga can no longer confirm it (confirmation wants `reserving`) and the
/// release is delivered until the catalog confirms it, so stock comes back
/// exactly once whatever fails next. The release is tried at once; what fails
/// is retried by the reconciler.
///
/// Returns whether this call abandoned it: `false` when the order had already
/// left `reserving` (confirmed, or abandoned by someone else), and then
/// nothing is written.
#[instrument(skip(store, relay))]
pub async fn abandon(store: &Store, relay: &Relay, id: Uuid) -> Result<bool, OrderError> {
    let mut tx = store.begin().await?;
    if !tx.abandon_reserving(id).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.free_idempotency_key(id).await?;
    let entry = tx
        .queue_inventory_call(id, InventoryAction::Release)
        .await?;
    tx.commit().await?;
    match relay.deliver(entry.id).await {
        Ok(delivery) => {
            tracing::info!(order_id = %id, ?delivery, "abandoned order rejected, release sent")
        }
        Err(error) => {
            tracing::warn!(order_id = %id, error = ?error, "abandoned order rejected; its release waits for the reconciler")
        }
    }
    Ok(true)
}
