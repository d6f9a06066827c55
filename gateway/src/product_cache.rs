//! The product read cache: `GET /api/products/{id}` answered from memory,
//! kept exact by the catalog's change feed (`WatchProductChanges`).
//!
//! A REST read otherwise costs a gRPC hop, a SQL query and two JSON/protobuf
//! translations, three times what the database spends on it. The cache holds
//! the response body of recent reads and is used only while the feed is
//! live: every committed change to a product (stock taken or returned, an
//! edit, a delete, by any replica or writer) removes its entry as soon as the
//! catalog hears of it. When the feed breaks (stream ended, catalog gone, no
//! heartbeat for [`FEED_SILENCE`]), the cache is emptied and bypassed until a
//! new stream starts, so reads are never served from copies nobody vouches
//! for. What is left is the feed's delay (commit -> notification -> gateway,
//! about a millisecond on one host), the same window in which a read that
//! raced the write could have gone either way. Writes through this gateway
//! (product edits, orders, status changes) also drop their products
//! themselves before answering, so a client reads its own writes here.
//!
//! A read that missed stores its answer only if no change touched its shard
//! while it was being fetched (a generation per shard), so an answer fetched
//! before a change never lands after the change's removal. Entries also
//! expire after `PRODUCT_CACHE_TTL_MS`, and the cache holds at most
//! `PRODUCT_CACHE_CAPACITY` of them and at most `PRODUCT_CACHE_MAX_BYTES` of
//! response bodies: a count alone does not bound memory, since a product's
//! description has no length limit of its own (only the request body's).
//! Each of the [`SHARDS`] shards keeps its share of both bounds and evicts
//! (expired entries first, then any) to stay within them; a body larger than
//! a shard's share of bytes is never stored.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::body::Bytes;
use platform::balance::ServiceChannel;
use proto::catalog::v1 as pb;
use uuid::Uuid;

use crate::metrics::{CacheLookup, Metrics};

/// With no message (heartbeats come every second) for this long, the feed
/// is taken as broken and the cache is bypassed.
pub const FEED_SILENCE: Duration = Duration::from_secs(3);

/// Independent locks (and shares of the bounds) the cache is split into.
pub const SHARDS: usize = 64;

/// Shared by every handler; cheap to clone.
#[derive(Clone, Debug)]
pub struct ProductCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// True while a change feed is live; reads neither use nor fill the
    /// cache otherwise.
    live: AtomicBool,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    capacity_per_shard: usize,
    /// Bytes of bodies one shard may hold.
    bytes_per_shard: usize,
    ttl: Duration,
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct Shard {
    /// Bumped by every removal; a fill fetched under an older generation is
    /// dropped.
    generation: u64,
    entries: HashMap<Uuid, Entry>,
    /// Sum of the lengths of the entries' bodies.
    bytes: usize,
}

impl Shard {
    fn remove(&mut self, id: &Uuid) {
        if let Some(entry) = self.entries.remove(id) {
            self.bytes -= entry.body.len();
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Makes room for one more entry of `incoming` bytes: drops expired
    /// entries first, then arbitrary ones (the map's order), until the entry
    /// count and the bytes both fit.
    fn make_room(&mut self, incoming: usize, capacity: usize, max_bytes: usize, ttl: Duration) {
        let fits =
            |shard: &Self| shard.entries.len() < capacity && shard.bytes + incoming <= max_bytes;
        if fits(self) {
            return;
        }
        let mut freed = 0;
        self.entries.retain(|_, entry| {
            let keep = entry.stored.elapsed() < ttl;
            if !keep {
                freed += entry.body.len();
            }
            keep
        });
        self.bytes -= freed;
        while !fits(self) {
            let Some(victim) = self.entries.keys().next().copied() else {
                break;
            };
            self.remove(&victim);
        }
    }
}

#[derive(Debug)]
struct Entry {
    body: Bytes,
    stored: Instant,
}

/// Taken before fetching a product the cache did not have; [`ProductCache::fill`]
/// stores the answer only if nothing changed in between.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket {
    id: Uuid,
    generation: Option<u64>,
}

impl ProductCache {
    /// A cache of at most `capacity` products (0: never stores), each kept
    /// at most `ttl`, with no bound on bytes beyond the entry count. It stays
    /// bypassed until [`watch`] makes it live.
    pub fn new(capacity: usize, ttl: Duration, metrics: Metrics) -> Self {
        Self::bounded(capacity, usize::MAX, ttl, metrics)
    }

    /// As [`Self::new`], also holding at most `max_bytes` of response bodies
    /// (each shard its share; 0: never stores).
    pub fn bounded(capacity: usize, max_bytes: usize, ttl: Duration, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                live: AtomicBool::new(false),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: RandomState::new(),
                capacity_per_shard: capacity.div_ceil(SHARDS),
                bytes_per_shard: max_bytes / SHARDS,
                ttl,
                metrics,
            }),
        }
    }

    fn shard(&self, id: &Uuid) -> MutexGuard<'_, Shard> {
        let index = self.inner.hasher.hash_one(id) as usize % SHARDS;
        lock(&self.inner.shards[index])
    }

    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// The stored response body for `id`, if the cache is live and has a
    /// fresh one.
    pub fn get(&self, id: &Uuid) -> Option<Bytes> {
        if !self.is_live() {
            self.inner.metrics.product_cache_lookup(CacheLookup::Bypass);
            return None;
        }
        let found = {
            let shard = self.shard(id);
            shard
                .entries
                .get(id)
                .filter(|entry| entry.stored.elapsed() < self.inner.ttl)
                .map(|entry| entry.body.clone())
        };
        self.inner.metrics.product_cache_lookup(if found.is_some() {
            CacheLookup::Hit
        } else {
            CacheLookup::Miss
        });
        found
    }

    /// Call before fetching `id` from the catalog.
    pub fn ticket(&self, id: Uuid) -> FillTicket {
        let generation = self.is_live().then(|| self.shard(&id).generation);
        FillTicket { id, generation }
    }

    /// Stores a fetched response body, unless the cache is not live or a
    /// change touched the shard since `ticket` was taken.
    pub fn fill(&self, ticket: FillTicket, body: Bytes) {
        let Some(generation) = ticket.generation else {
            return;
        };
        if self.inner.capacity_per_shard == 0 || body.len() > self.inner.bytes_per_shard {
            return;
        }
        let mut shard = self.shard(&ticket.id);
        // Checked under the shard's lock, which removals also take.
        if shard.generation != generation || !self.is_live() {
            return;
        }
        // A newer copy replaces the old one: its bytes no longer count.
        shard.remove(&ticket.id);
        shard.make_room(
            body.len(),
            self.inner.capacity_per_shard,
            self.inner.bytes_per_shard,
            self.inner.ttl,
        );
        shard.bytes += body.len();
        shard.entries.insert(
            ticket.id,
            Entry {
                body,
                stored: Instant::now(),
            },
        );
    }

    /// Drops the entries of products that changed.
    pub fn invalidate(&self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            let mut shard = self.shard(&id);
            shard.generation += 1;
            shard.remove(&id);
        }
    }

    /// Drops every entry; fills in flight are refused.
    pub fn invalidate_all(&self) {
        for shard in self.inner.shards.iter() {
            let mut shard = lock(shard);
            shard.generation += 1;
            shard.clear();
        }
    }

    /// The feed started (or restarted): from now on every change is heard.
    fn go_live(&self) {
        self.invalidate_all();
        self.inner.live.store(true, Ordering::Release);
        self.inner.metrics.product_cache_live(true);
    }

    /// The feed broke: bypass, and forget what it can no longer vouch for.
    fn go_dark(&self) {
        self.inner.live.store(false, Ordering::Release);
        self.invalidate_all();
        self.inner.metrics.product_cache_live(false);
    }

    /// Applies one feed message.
    fn apply(&self, message: pb::ProductChanges) {
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

/// A panic while holding a shard cannot leave it inconsistent (no code that
/// runs under the lock can panic between changing the map and its byte
/// count), so a poisoned lock is still usable.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache(capacity: usize, ttl: Duration) -> ProductCache {
        let cache = ProductCache::new(capacity, ttl, Metrics::new());
        cache.go_live();
        cache
    }

    #[test]
    fn a_filled_entry_is_served_until_its_product_changes() {
        let cache = live_cache(100, Duration::from_secs(60));
        let id = Uuid::new_v4();
        assert_eq!(cache.get(&id), None);
        cache.fill(cache.ticket(id), Bytes::from_static(b"v1"));
        assert_eq!(cache.get(&id).as_deref(), Some(&b"v1"[..]));
        cache.invalidate([id]);
        assert_eq!(cache.get(&id), None);
    }

    #[test]
    fn an_answer_fetched_before_a_change_is_not_stored_after_it() {
        let cache = live_cache(100, Duration::from_secs(60));
        let id = Uuid::new_v4();
        let ticket = cache.ticket(id);
        cache.invalidate([id]);
        cache.fill(ticket, Bytes::from_static(b"stale"));
        assert_eq!(cache.get(&id), None);
        let ticket = cache.ticket(id);
        cache.invalidate_all();
        cache.fill(ticket, Bytes::from_static(b"stale"));
        assert_eq!(cache.get(&id), None);
    }

    #[test]
    fn without_a_live_feed_nothing_is_served_or_stored() {
        let cache = ProductCache::new(100, Duration::from_secs(60), Metrics::new());
        let id = Uuid::new_v4();
        cache.fill(cache.ticket(id), Bytes::from_static(b"v1"));
        cache.go_live();
        assert_eq!(cache.get(&id), None, "stored while dark");
        cache.fill(cache.ticket(id), Bytes::from_static(b"v1"));
        assert!(cache.get(&id).is_some());
        let ticket = cache.ticket(id);
        cache.go_dark();
        assert_eq!(cache.get(&id), None, "served while dark");
        cache.fill(ticket, Bytes::from_static(b"v2"));
        cache.go_live();
        assert_eq!(cache.get(&id), None, "a fill from before the feed broke");
    }

    #[test]
    fn feed_messages_drop_the_named_products_or_all() {
        let cache = live_cache(100, Duration::from_secs(60));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [a, b] {
            cache.fill(cache.ticket(id), Bytes::from_static(b"x"));
        }
        cache.apply(pb::ProductChanges {
            product_ids: vec![a.to_string()],
            all: false,
        });
        assert_eq!(cache.get(&a), None);
        assert!(cache.get(&b).is_some());
        // A heartbeat changes nothing.
        cache.apply(pb::ProductChanges::default());
        assert!(cache.get(&b).is_some());
        cache.apply(pb::ProductChanges {
            product_ids: vec![],
            all: true,
        });
        assert_eq!(cache.get(&b), None);
    }

    #[test]
    fn entries_expire_and_the_capacity_holds() {
        let cache = live_cache(SHARDS, Duration::from_millis(30));
        let id = Uuid::new_v4();
        cache.fill(cache.ticket(id), Bytes::from_static(b"x"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&id), None, "expired");
        // One entry per shard at most.
        let ids: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.fill(cache.ticket(*id), Bytes::from_static(b"x"));
        }
        let held = ids.iter().filter(|id| cache.get(id).is_some()).count();
        assert!(held <= SHARDS, "{held} entries held");
        assert!(held > 0);
    }

    /// The bytes a cache holds, by walking every shard (and checking each
    /// shard's running count against its entries).
    fn held_bytes(cache: &ProductCache) -> usize {
        cache
            .inner
            .shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                let sum: usize = shard.entries.values().map(|e| e.body.len()).sum();
                assert_eq!(shard.bytes, sum, "running byte count drifted");
                assert!(shard.bytes <= cache.inner.bytes_per_shard);
                sum
            })
            .sum()
    }

    fn live_bounded(capacity: usize, max_bytes: usize) -> ProductCache {
        let cache =
            ProductCache::bounded(capacity, max_bytes, Duration::from_secs(60), Metrics::new());
        cache.go_live();
        cache
    }

    #[test]
    fn the_byte_bound_holds_whatever_the_entry_count_allows() {
        // 64 KiB over 64 shards: 1 KiB each; entries of 300 bytes, so at
        // most 3 per shard although the count would allow 1000 per shard.
        let cache = live_bounded(64_000, 64 * 1024);
        let body = Bytes::from(vec![b'x'; 300]);
        let ids: Vec<Uuid> = (0..2_000).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.fill(cache.ticket(*id), body.clone());
        }
        let held = held_bytes(&cache);
        assert!(held <= 64 * 1024, "{held} bytes held");
        let entries = ids.iter().filter(|id| cache.get(id).is_some()).count();
        assert!(entries <= SHARDS * 3, "{entries} entries");
        assert!(
            entries >= SHARDS,
            "{entries} entries: the cache should still be used"
        );
        // The most recent fill is always kept.
        let last = *ids.last().unwrap();
        assert!(cache.get(&last).is_some());
    }

    #[test]
    fn a_body_larger_than_a_shard_share_is_not_stored() {
        let cache = live_bounded(100, 64 * 1024);
        let id = Uuid::new_v4();
        cache.fill(cache.ticket(id), Bytes::from(vec![b'x'; 1025]));
        assert_eq!(cache.get(&id), None);
        cache.fill(cache.ticket(id), Bytes::from(vec![b'x'; 1024]));
        assert!(cache.get(&id).is_some());
        // No bytes at all: nothing is stored.
        let off = live_bounded(100, 0);
        off.fill(off.ticket(id), Bytes::from_static(b"{}"));
        assert_eq!(off.get(&id), None);
    }

    #[test]
    fn bytes_are_returned_by_removals_refills_and_clears() {
        let cache = live_bounded(1_000, 64 * 1024 * 1024);
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.fill(cache.ticket(*id), Bytes::from(vec![b'x'; 100]));
        }
        assert_eq!(held_bytes(&cache), 100 * 100);
        // A refill replaces: its old bytes stop counting.
        cache.fill(cache.ticket(ids[0]), Bytes::from(vec![b'y'; 10]));
        assert_eq!(held_bytes(&cache), 99 * 100 + 10);
        cache.invalidate(ids[..50].iter().copied());
        assert_eq!(held_bytes(&cache), 50 * 100);
        cache.apply(pb::ProductChanges {
            product_ids: vec![],
            all: true,
        });
        assert_eq!(held_bytes(&cache), 0);
        cache.fill(cache.ticket(ids[0]), Bytes::from(vec![b'x'; 100]));
        cache.go_dark();
        assert_eq!(held_bytes(&cache), 0);
    }

    #[test]
    fn expired_entries_are_evicted_before_fresh_ones() {
        // One shard's worth of bytes for two 400-byte bodies at most.
        let cache = ProductCache::bounded(
            1_000,
            SHARDS * 1_000,
            Duration::from_millis(30),
            Metrics::new(),
        );
        cache.go_live();
        let old = Uuid::new_v4();
        cache.fill(cache.ticket(old), Bytes::from(vec![b'x'; 400]));
        std::thread::sleep(Duration::from_millis(40));
        // Find two fresh ids in the old one's shard.
        let index = |id: &Uuid| cache.inner.hasher.hash_one(id) as usize % SHARDS;
        let same_shard: Vec<Uuid> = std::iter::repeat_with(Uuid::new_v4)
            .filter(|id| index(id) == index(&old))
            .take(2)
            .collect();
        cache.fill(cache.ticket(same_shard[0]), Bytes::from(vec![b'x'; 400]));
        cache.fill(cache.ticket(same_shard[1]), Bytes::from(vec![b'x'; 400]));
        // The expired one made room; both fresh ones are there.
        assert!(cache.get(&same_shard[0]).is_some());
        assert!(cache.get(&same_shard[1]).is_some());
        assert!(held_bytes(&cache) <= 1_000);
    }
}
