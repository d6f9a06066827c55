//! The catalog's change feed (`WatchProductChanges`), which makes the cache
//! live while it flows: every message drops the products it names (or all),
//! and a feed that ends, fails or falls silent empties the cache and
//! bypasses it until a new stream starts.

use std::{sync::atomic::Ordering, time::Duration};

use platform::balance::ServiceChannel;
use proto::catalog::v1 as pb;
use uuid::Uuid;

use super::ProductCache;

/// With no message (heartbeats come every second) for this long, the feed
/// is taken as broken and the cache is bypassed.
pub const FEED_SILENCE: Duration = Duration::from_secs(3);

impl ProductCache {
    /// The feed started (or restarted): from now on every change is heard.
    pub(super) fn go_live(&self) {
        self.invalidate_all();
        self.inner.live.store(true, Ordering::Release);
        self.inner.metrics.product_cache_live(true);
    }

    /// The feed broke: bypass, and forget what it can no longer vouch for.
    pub(super) fn go_dark(&self) {
        self.inner.live.store(false, Ordering::Release);
        self.invalidate_all();
        self.inner.metrics.product_cache_live(false);
    }

    /// Applies one feed message.
    pub(super) fn apply(&self, message: pb::ProductChanges) {
        if message.all {
            self.invalidate_all();
            return;
        }
        // Ids come from the catalog's own rows; one that does not parse is
        // a catalog bug: drop everything rather than guess.
        let ids: Result<Vec<Uuid>, _> = message
            .product_ids
            .iter()
            .map(|id| id.parse::<Uuid>())
            .collect();
        match ids {
            Ok(ids) => self.invalidate(ids),
            Err(_) => self.invalidate_all(),
        }
    }
}

/// Keeps a change feed from the catalog open for as long as the process
/// runs, making the cache live while it flows (and bypassed otherwise).
/// Reconnects with backoff; the balanced channel picks a reachable replica.
pub async fn watch(cache: ProductCache, catalog: ServiceChannel) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut client = pb::catalog_service_client::CatalogServiceClient::new(catalog.channel());
        match client
            .watch_product_changes(pb::WatchProductChangesRequest {})
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match tokio::time::timeout(FEED_SILENCE, stream.message()).await {
                        Ok(Ok(Some(message))) => {
                            if !cache.is_live() {
                                // The first message (`all`) marks where the
                                // feed becomes complete.
                                cache.go_live();
                                backoff = Duration::from_millis(100);
                                tracing::debug!("product cache live");
                            } else {
                                cache.apply(message);
                            }
                        }
                        Ok(Ok(None)) => break,
                        Ok(Err(status)) => {
                            tracing::debug!(code = ?status.code(), "product change feed ended");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(
                                "product change feed silent; bypassing the product cache"
                            );
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), "product change feed unavailable");
            }
        }
        cache.go_dark();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
