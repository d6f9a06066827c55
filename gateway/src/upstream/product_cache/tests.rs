//! The cache against a simulated feed: what is served, what is refused,
//! that a body keeps its version, and that its bounds on entries and bytes
//! hold.

use proto::catalog::v1 as pb;

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
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"v1"), 1));
    assert_eq!(
        cache.get(&id),
        Some(Cached::new(Bytes::from_static(b"v1"), 1))
    );
    cache.invalidate([id]);
    assert_eq!(cache.get(&id), None);
}

#[test]
fn a_body_is_served_with_the_version_it_was_stored_with() {
    let cache = live_cache(100, Duration::from_secs(60));
    let id = Uuid::new_v4();
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"v7"), 7));
    let served = cache.get(&id).unwrap();
    assert_eq!((&served.body[..], served.version), (&b"v7"[..], 7));
    // A refill replaces both together.
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"v8"), 8));
    let served = cache.get(&id).unwrap();
    assert_eq!((&served.body[..], served.version), (&b"v8"[..], 8));
}

#[test]
fn an_answer_fetched_before_a_change_is_not_stored_after_it() {
    let cache = live_cache(100, Duration::from_secs(60));
    let id = Uuid::new_v4();
    let ticket = cache.ticket(id);
    cache.invalidate([id]);
    cache.fill(ticket, Cached::new(Bytes::from_static(b"stale"), 1));
    assert_eq!(cache.get(&id), None);
    let ticket = cache.ticket(id);
    cache.invalidate_all();
    cache.fill(ticket, Cached::new(Bytes::from_static(b"stale"), 1));
    assert_eq!(cache.get(&id), None);
}

#[test]
fn without_a_live_feed_nothing_is_served_or_stored() {
    let cache = ProductCache::new(100, Duration::from_secs(60), Metrics::new());
    let id = Uuid::new_v4();
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"v1"), 1));
    cache.go_live();
    assert_eq!(cache.get(&id), None, "stored while dark");
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"v1"), 1));
    assert!(cache.get(&id).is_some());
    let ticket = cache.ticket(id);
    cache.go_dark();
    assert_eq!(cache.get(&id), None, "served while dark");
    cache.fill(ticket, Cached::new(Bytes::from_static(b"v2"), 1));
    cache.go_live();
    assert_eq!(cache.get(&id), None, "a fill from before the feed broke");
}

#[test]
fn feed_messages_drop_the_named_products_or_all() {
    let cache = live_cache(100, Duration::from_secs(60));
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [a, b] {
        cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"x"), 1));
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
    cache.fill(cache.ticket(id), Cached::new(Bytes::from_static(b"x"), 1));
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(cache.get(&id), None, "expired");
    // One entry per shard at most.
    let ids: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    for id in &ids {
        cache.fill(cache.ticket(*id), Cached::new(Bytes::from_static(b"x"), 1));
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
            let sum: usize = shard.entries.values().map(|e| e.product.body.len()).sum();
            assert_eq!(shard.bytes, sum, "running byte count drifted");
            assert!(shard.bytes <= cache.inner.bytes_per_shard);
            sum
        })
        .sum()
}

fn live_bounded(capacity: usize, max_bytes: usize) -> ProductCache {
    let cache = ProductCache::bounded(capacity, max_bytes, Duration::from_secs(60), Metrics::new());
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
        cache.fill(cache.ticket(*id), Cached::new(body.clone(), 1));
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
    cache.fill(
        cache.ticket(id),
        Cached::new(Bytes::from(vec![b'x'; 1025]), 1),
    );
    assert_eq!(cache.get(&id), None);
    cache.fill(
        cache.ticket(id),
        Cached::new(Bytes::from(vec![b'x'; 1024]), 1),
    );
    assert!(cache.get(&id).is_some());
    // No bytes at all: nothing is stored.
    let off = live_bounded(100, 0);
    off.fill(off.ticket(id), Cached::new(Bytes::from_static(b"{}"), 1));
    assert_eq!(off.get(&id), None);
}

#[test]
fn bytes_are_returned_by_removals_refills_and_clears() {
    let cache = live_bounded(1_000, 64 * 1024 * 1024);
    let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
    for id in &ids {
        cache.fill(
            cache.ticket(*id),
            Cached::new(Bytes::from(vec![b'x'; 100]), 1),
        );
    }
    assert_eq!(held_bytes(&cache), 100 * 100);
    // A refill replaces: its old bytes stop counting.
    cache.fill(
        cache.ticket(ids[0]),
        Cached::new(Bytes::from(vec![b'y'; 10]), 1),
    );
    assert_eq!(held_bytes(&cache), 99 * 100 + 10);
    cache.invalidate(ids[..50].iter().copied());
    assert_eq!(held_bytes(&cache), 50 * 100);
    cache.apply(pb::ProductChanges {
        product_ids: vec![],
        all: true,
    });
    assert_eq!(held_bytes(&cache), 0);
    cache.fill(
        cache.ticket(ids[0]),
        Cached::new(Bytes::from(vec![b'x'; 100]), 1),
    );
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
    cache.fill(
        cache.ticket(old),
        Cached::new(Bytes::from(vec![b'x'; 400]), 1),
    );
    std::thread::sleep(Duration::from_millis(40));
    // Find two fresh ids in the old one's shard.
    let index = |id: &Uuid| cache.inner.hasher.hash_one(id) as usize % SHARDS;
    let same_shard: Vec<Uuid> = std::iter::repeat_with(Uuid::new_v4)
        .filter(|id| index(id) == index(&old))
        .take(2)
        .collect();
    cache.fill(
        cache.ticket(same_shard[0]),
        Cached::new(Bytes::from(vec![b'x'; 400]), 1),
    );
    cache.fill(
        cache.ticket(same_shard[1]),
        Cached::new(Bytes::from(vec![b'x'; 400]), 1),
    );
    // The expired one made room; both fresh ones are there.
    assert!(cache.get(&same_shard[0]).is_some());
    assert!(cache.get(&same_shard[1]).is_some());
    assert!(held_bytes(&cache) <= 1_000);
}
