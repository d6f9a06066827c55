//! The product read cache: `GET /api/products/{id}` answered from memory,
//! kept exact by the catalog's change feed (`WatchProductChanges`).
//!
//! A REST read otherwise costs a gRPC hop, a SQL query and two JSON/protobuf
//! translations, three times what the database spends on it. The cache holds
//! the response body of recent reads, with the product's version (its
//! ETag: a conditional read answered from memory compares it, so a 304 needs
//! no catalog call either), and is used only while the feed is
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
//! expire after `PRODUCT_CACHE_TTL`, and the cache holds at most
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
use uuid::Uuid;

use crate::metrics::{CacheLookup, Metrics};

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
            self.bytes -= entry.product.body.len();
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
                freed += entry.product.body.len();
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
    product: Cached,
    stored: Instant,
}

/// What the cache holds of one product: the response body of a read, and
/// the version it is the body of (the catalog's `Product.version`, served
/// as the ETag). Kept together, so a body is never served with another
/// version's tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub body: Bytes,
    pub version: i64,
}

impl Cached {
    pub fn new(body: Bytes, version: i64) -> Self {
        Self { body, version }
    }
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

    /// The stored response body (and version) for `id`, if the cache is live
    /// and has a fresh one.
    pub fn get(&self, id: &Uuid) -> Option<Cached> {
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
                .map(|entry| entry.product.clone())
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

    /// Stores a fetched response body and its version, unless the cache is
    /// not live or a change touched the shard since `ticket` was taken.
    pub fn fill(&self, ticket: FillTicket, product: Cached) {
        let Some(generation) = ticket.generation else {
            return;
        };
        let size = product.body.len();
        if self.inner.capacity_per_shard == 0 || size > self.inner.bytes_per_shard {
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
            size,
            self.inner.capacity_per_shard,
            self.inner.bytes_per_shard,
            self.inner.ttl,
        );
        shard.bytes += size;
        shard.entries.insert(
            ticket.id,
            Entry {
                product,
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
}

/// A panic while holding a shard cannot leave it inconsistent (no code that
/// runs under the lock can panic between changing the map and its byte
/// count), so a poisoned lock is still usable.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub use feed::{FEED_SILENCE, watch};

mod feed;
#[cfg(test)]
mod tests;
