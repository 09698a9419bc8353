//! The bounded, short-lived cache of unwrapped data keys (docs/encryption.md, section 10).
//!
//! Pure bookkeeping, no database access: the store (`store.rs`) reads the invalidation
//! generation from the database when [`KeyCache::generation_check_due`] says so and hands it to
//! [`KeyCache::observe_generation`].
//!
//! Why a generation counter rather than a short TTL alone: a destroyed (shredded) key must stop
//! being served by every instance within 5 seconds. A 5-second TTL would cost an unwrap and a
//! row read per key every 5 seconds on every instance, and would still not bound anything
//! tighter than the TTL. Instead every destruction bumps one counter in `key_state`, and each
//! instance reads that counter at most once a second (one single-row read, whatever the number
//! of cached keys); when it has moved, the whole cache is dropped. Destruction is rare
//! (disposal of a source), so dropping everything costs one unwrap per key in use, once.
//!
//! Entries are `Arc<DataKey>`: a request holds its key for as long as it needs it, and the key
//! bytes are wiped when the last holder (cache or request) drops it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::data_key::DataKey;
use super::owner::Owner;

/// At most this many unwrapped keys are held at once.
pub const CACHE_CAPACITY: usize = 4096;
/// An unwrapped key is served from the cache for at most this long, then unwrapped again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// The invalidation generation is re-read at least this often while the cache is used; with the
/// commit of the destroying transaction this bounds how long a destroyed key stays usable.
pub const GENERATION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

struct Entry {
    key: Arc<DataKey>,
    inserted: Instant,
}

#[derive(Default)]
struct Inner {
    // One DEK per owner (the `data_keys.owner` column is unique), so the owner is the key.
    entries: HashMap<Owner, Entry>,
    // The database generation every entry was read under; `None` until first observed.
    generation: Option<i64>,
    checked_at: Option<Instant>,
}

/// Unwrapped data keys by owner, bounded in size and lifetime, dropped as a whole when the
/// database's invalidation generation moves.
pub struct KeyCache {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
    check_every: Duration,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(CACHE_CAPACITY, CACHE_TTL, GENERATION_CHECK_INTERVAL)
    }
}

impl KeyCache {
    pub fn new(capacity: usize, ttl: Duration, check_every: Duration) -> Self {
        Self { inner: Mutex::new(Inner::default()), capacity, ttl, check_every }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written entry behind (every
        // mutation is a single map operation), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when the generation has not been read for `check_every` (or ever).
    pub fn generation_check_due(&self, now: Instant) -> bool {
        self.lock().checked_at.is_none_or(|at| now.saturating_duration_since(at) >= self.check_every)
    }

    /// Records the generation just read from the database; a different value than the one the
    /// entries were read under drops them all.
    pub fn observe_generation(&self, generation: i64, now: Instant) {
        let mut inner = self.lock();
        if inner.generation != Some(generation) {
            inner.entries.clear();
            inner.generation = Some(generation);
        }
        inner.checked_at = Some(now);
    }

    /// The cached key of `owner`, if present and younger than the TTL.
    pub fn get(&self, owner: Owner, now: Instant) -> Option<Arc<DataKey>> {
        let mut inner = self.lock();
        let fresh = inner.entries.get(&owner).map(|e| now.saturating_duration_since(e.inserted) < self.ttl)?;
        if fresh {
            inner.entries.get(&owner).map(|e| e.key.clone())
        } else {
            inner.entries.remove(&owner);
            None
        }
    }

    /// Caches `key`, read from the database under `generation` (read in the same transaction,
    /// before the key's row). A key read under an older generation than the cache has seen may
    /// already be destroyed and is not cached; a newer one moves the cache forward first.
    pub fn insert(&self, key: Arc<DataKey>, generation: i64, now: Instant) {
        let mut inner = self.lock();
        match inner.generation {
            Some(seen) if generation < seen => return,
            Some(seen) if generation == seen => {}
            _ => {
                inner.entries.clear();
                inner.generation = Some(generation);
                inner.checked_at = Some(now);
            }
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key.owner()) {
            self.make_room(&mut inner, now);
        }
        inner.entries.insert(key.owner(), Entry { key, inserted: now });
    }

    /// Drops expired entries, and if the cache is still full, the oldest one. O(n) in the
    /// capacity, but only on an insert into a full cache, which unwrapping already dominates.
    fn make_room(&self, inner: &mut Inner, now: Instant) {
        inner.entries.retain(|_, e| now.saturating_duration_since(e.inserted) < self.ttl);
        if inner.entries.len() >= self.capacity
            && let Some(oldest) = inner.entries.iter().min_by_key(|(_, e)| e.inserted).map(|(owner, _)| *owner)
        {
            inner.entries.remove(&oldest);
        }
    }

    /// Forgets `owner`'s key on this instance at once (the destroying instance does not wait
    /// for its own generation check).
    pub fn remove(&self, owner: Owner) {
        self.lock().entries.remove(&owner);
    }

    /// How many keys are held (for tests and status).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key() -> Arc<DataKey> {
        Arc::new(DataKey::generate(Owner::Source(Uuid::new_v4())).unwrap())
    }

    #[test]
    fn a_cached_key_is_served_until_its_ttl() {
        let cache = KeyCache::new(8, Duration::from_secs(60), Duration::from_secs(1));
        let t0 = Instant::now();
        let k = key();
        cache.insert(k.clone(), 0, t0);
        assert!(Arc::ptr_eq(&cache.get(k.owner(), t0 + Duration::from_secs(59)).unwrap(), &k));
        assert!(cache.get(k.owner(), t0 + Duration::from_secs(60)).is_none());
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = KeyCache::new(3, Duration::from_secs(60), Duration::from_secs(1));
        let t0 = Instant::now();
        let keys: Vec<_> = (0..5).map(|_| key()).collect();
        for (i, k) in keys.iter().enumerate() {
            cache.insert(k.clone(), 0, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(cache.len(), 3);
        let later = t0 + Duration::from_millis(10);
        assert!(cache.get(keys[0].owner(), later).is_none(), "the oldest went first");
        assert!(cache.get(keys[1].owner(), later).is_none());
        assert!(cache.get(keys[4].owner(), later).is_some());
    }

    #[test]
    fn a_moved_generation_drops_every_entry() {
        let cache = KeyCache::new(8, Duration::from_secs(60), Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(cache.generation_check_due(t0));
        cache.observe_generation(4, t0);
        assert!(!cache.generation_check_due(t0 + Duration::from_millis(999)));
        assert!(cache.generation_check_due(t0 + Duration::from_secs(1)));
        let k = key();
        cache.insert(k.clone(), 4, t0);
        cache.observe_generation(4, t0);
        assert_eq!(cache.len(), 1, "an unchanged generation keeps entries");
        cache.observe_generation(5, t0);
        assert!(cache.get(k.owner(), t0).is_none());
    }

    #[test]
    fn a_key_read_under_an_older_generation_is_not_cached() {
        let cache = KeyCache::new(8, Duration::from_secs(60), Duration::from_secs(1));
        let t0 = Instant::now();
        cache.observe_generation(7, t0);
        let stale = key();
        cache.insert(stale.clone(), 6, t0);
        assert!(cache.get(stale.owner(), t0).is_none());
        let newer = key();
        cache.insert(newer.clone(), 8, t0);
        assert!(cache.get(newer.owner(), t0).is_some(), "a newer generation moves the cache forward");
        cache.insert(stale.clone(), 7, t0);
        assert!(cache.get(stale.owner(), t0).is_none());
    }

    #[test]
    fn the_last_holder_drops_the_key() {
        let cache = KeyCache::new(8, Duration::from_secs(60), Duration::from_secs(1));
        let t0 = Instant::now();
        let k = key();
        let weak = Arc::downgrade(&k);
        cache.insert(k, 0, t0);
        let held = cache.get(weak.upgrade().unwrap().owner(), t0).unwrap();
        cache.observe_generation(1, t0);
        assert!(weak.upgrade().is_some(), "a request still holding the key keeps it");
        drop(held);
        assert!(weak.upgrade().is_none(), "dropped (and wiped) with its last holder");
    }
}
