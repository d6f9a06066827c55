//! Delivery of outbox rows: the inventory call a status change implies
//! (ReleaseInventory on cancel, CommitInventory on complete).
//!
//! A row is delivered at once after its transaction commits, and again by the
//! reconciler while it fails, with exponential backoff. Both calls are
//! idempotent at the catalog, so "at least once" here means "exactly once" for
//! stock.

use std::time::Duration;

use tracing::instrument;

use crate::{
    catalog_client::CatalogClient,
    domain::outbox::backoff,
    error::OrderError,
    metrics::OrderMetrics,
    store::{OutboxEntry, Store},
};

#[derive(Clone)]
pub struct Relay {
    store: Store,
    catalog: CatalogClient,
    retry_base: Duration,
    metrics: OrderMetrics,
}

/// What one delivery attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The catalog confirmed; the row is gone.
    Delivered,
    /// The call failed; the row waits for its next attempt.
    Failed,
    /// Not due, already delivered, or being delivered by someone else.
    Skipped,
}

impl Relay {
    pub fn new(
        store: Store,
        catalog: CatalogClient,
        retry_base: Duration,
        metrics: OrderMetrics,
    ) -> Self {
        Self {
            store,
            catalog,
            retry_base,
            metrics,
        }
    }

    /// Delivers a row just committed, now, rather than at the reconciler's
    /// next pass; a failure is logged and left to the reconciler's retries.
    pub async fn deliver_now(&self, entry: OutboxEntry) {
        if let Err(error) = self.deliver(entry.id).await {
            tracing::warn!(error = ?error, "outbox delivery failed; the reconciler will retry");
        }
    }

    /// Delivers one row if it is due and nobody else has it.
    #[instrument(skip(self))]
    pub async fn deliver(&self, outbox_id: i64) -> Result<Delivery, OrderError> {
        // Long enough for the call to finish: only a crashed deliverer's row
        // becomes due again before it reports back.
        let lease = self.catalog.timeout() + Duration::from_secs(5);
        let Some(entry) = self.store.claim_outbox(outbox_id, lease).await? else {
            return Ok(Delivery::Skipped);
        };
        match self
            .catalog
            .perform(entry.action, entry.reservation_id)
            .await
        {
            Ok(changed) => {
                self.store.outbox_delivered(entry.id).await?;
                self.metrics.delivery("delivered");
                tracing::info!(
                    reservation_id = %entry.reservation_id,
                    action = %entry.action,
                    changed,
                    attempts = entry.attempts + 1,
                    "inventory call delivered"
                );
                Ok(Delivery::Delivered)
            }
            Err(failure) => {
                let failures = u32::try_from(entry.attempts).unwrap_or(0).saturating_add(1);
                let retry_in = backoff(failures, self.retry_base);
                if failure.refused {
                    // The catalog disagrees about the reservation's state: this
                    // will not heal by itself; keep retrying slowly, loudly.
                    tracing::error!(
                        reservation_id = %entry.reservation_id,
                        action = %entry.action,
                        code = %failure.code,
                        message = %failure.message,
                        "catalog refused an outbox call"
                    );
                } else {
                    tracing::warn!(
                        reservation_id = %entry.reservation_id,
                        action = %entry.action,
                        code = %failure.code,
                        failures,
                        retry_in_ms = retry_in.as_millis() as u64,
                        "outbox call failed; will retry"
                    );
                }
                let error = failure.to_string();
                self.store.outbox_failed(entry.id, retry_in, &error).await?;
                self.metrics.delivery("failed");
                Ok(Delivery::Failed)
            }
        }
    }
}
