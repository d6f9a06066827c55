//! The CreateOrder saga. Its state lives in the orders database, so a crash at
//! any point leaves nothing leaked: an order stuck in `reserving` is finished
//! by the reconciler.
//!
//! 1. insert the order as `reserving` (reservation id = order id), with its
//!    idempotency key, in one transaction;
//! 2. ReserveInventory at the catalog, with a deadline;
//! 3. taken: lines, exact total and `pending` in one transaction;
//! 4. refused: `rejected`, and the catalog's status passed on unchanged;
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
use tonic::{Code, Status, codegen::Bytes};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    catalog_client::{CatalogClient, ReserveOutcome},
    domain::{self, NewOrder, Order, OrderStatus},
    error::OrderError,
    metrics::OrderMetrics,
    outbox::Relay,
    store::{Begun, Rejection, Store},
};

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
                Err(OrderError::Refused(status)) => self.metrics.rejection(
                    &proto::errors::error_info(status)
                        .map_or_else(|| format!("{:?}", status.code()), |(reason, _)| reason),
                ),
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
            ReserveOutcome::Refused(status) => {
                let rejection = rejection_of(&status);
                if self.store.reject_order(id, &rejection).await? {
                    tracing::info!(order_id = %id, code = ?status.code(), "order refused by the catalog");
                    Err(OrderError::Refused(status))
                } else {
                    // Already rejected by the reconciler (whose release left a
                    // tombstone the reserve ran into): an unknown outcome to us.
                    Err(OrderError::CatalogUnavailable)
                }
            }
            ReserveOutcome::Unknown(status) => {
                tracing::warn!(
                    order_id = %id,
                    code = ?status.code(),
                    message = status.message(),
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
                    return self.store.get_order(order_id).await;
                }
                OrderStatus::Rejected => {
                    return Err(match state.rejection {
                        Some(rejection) => OrderError::Refused(status_of(rejection)),
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

/// Abandons a `reserving` order (see [`Store::abandon_order`]) and tries to
/// deliver its release at once; what fails is retried by the reconciler.
/// Returns whether this call abandoned it.
pub async fn abandon(store: &Store, relay: &Relay, id: Uuid) -> Result<bool, OrderError> {
    let rejection = rejection_of(&Status::from(OrderError::CatalogUnavailable));
    let Some(entry) = store.abandon_order(id, &rejection).await? else {
        return Ok(false);
    };
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

/// A status as stored with a rejected order (code, message, details bytes).
pub fn rejection_of(status: &Status) -> Rejection {
    Rejection {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: status.details().to_vec(),
    }
}

/// The status a stored rejection stands for, details unchanged.
pub fn status_of(rejection: Rejection) -> Status {
    Status::with_details(
        Code::from(rejection.code),
        rejection.message,
        Bytes::from(rejection.details),
    )
}

#[cfg(test)]
mod tests {
    use proto::errors::{self, meta, reason};

    use super::*;

    #[test]
    fn a_stored_rejection_replays_the_same_status() {
        let original = errors::with_info(
            Code::FailedPrecondition,
            "Insufficient stock",
            reason::INSUFFICIENT_STOCK,
            [
                (meta::AVAILABLE, "1".to_owned()),
                (meta::REQUESTED, "2".to_owned()),
            ],
        );
        let replayed = status_of(rejection_of(&original));
        assert_eq!(replayed.code(), original.code());
        assert_eq!(replayed.message(), original.message());
        assert_eq!(replayed.details(), original.details());
        let (reason, metadata) = errors::error_info(&replayed).unwrap();
        assert_eq!(reason, reason::INSUFFICIENT_STOCK);
        assert_eq!(metadata[meta::REQUESTED], "2");
    }
}
