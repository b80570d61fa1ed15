//! A bounded, single-flight cache shared by access tokens and Key Vault objects.
//!
//! Concurrent lookups of one key wait for a single fetch; errors are never cached; values leave
//! when they stop being fresh, and when the total weight (bytes for objects) passes the bound,
//! the oldest entries go first. Keys are hashes ([`CacheKey`]), never raw credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// A SHA-256 over length-prefixed parts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A short prefix is enough to correlate log lines and reveals nothing usable.
        write!(f, "CacheKey({})", hex::encode(&self.0[..4]))
    }
}

/// Builds a [`CacheKey`] from parts, so ("ab","c") and ("a","bc") differ.
#[derive(Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn part(self, part: &str) -> Self {
        self.bytes(part.as_bytes())
    }

    pub fn key(self, key: &CacheKey) -> Self {
        self.bytes(&key.0)
    }

    fn bytes(mut self, part: &[u8]) -> Self {
        self.0.update((part.len() as u64).to_be_bytes());
        self.0.update(part);
        self
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

/// A cached value knows when it stops being usable and what it costs to keep.
pub trait Expiring {
    fn is_fresh(&self) -> bool;
    fn weight(&self) -> usize;
}

/// Whether a value came from the cache or from a fetch made for this lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Upstream,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<Arc<V>>>>;

struct Entry<V> {
    slot: Slot<V>,
    weight: usize,
    stored: Instant,
}

struct Inner<V> {
    entries: HashMap<CacheKey, Entry<V>>,
    weight: usize,
}

pub struct Cache<V> {
    inner: Mutex<Inner<V>>,
    max_weight: usize,
}

impl<V: Expiring> Cache<V> {
    /// A cache holding at most `max_weight` (sum of [`Expiring::weight`]).
    pub fn new(max_weight: usize) -> Self {
        Cache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                weight: 0,
            }),
            max_weight,
        }
    }

    /// The fresh value for `key`, or the result of `fetch`, run once for all concurrent callers.
    /// `fetch` makes the future only when it is needed: callers that wait for another's fetch
    /// then hold no fetch state (a burst of mounts waits in the thousands).
    pub async fn get_or_fetch<F, E>(
        &self,
        key: CacheKey,
        fetch: impl FnOnce() -> F,
    ) -> Result<(Arc<V>, Source), E>
    where
        F: std::future::Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut inner = self.inner.lock().expect("cache lock");
            inner
                .entries
                .entry(key)
                .or_insert_with(|| Entry {
                    slot: Slot::default(),
                    weight: 0,
                    stored: Instant::now(),
                })
                .slot
                .clone()
        };
        let mut guard = slot.lock().await;
        if let Some(value) = guard.as_ref().filter(|v| v.is_fresh()) {
            return Ok((value.clone(), Source::Cache));
        }
        let value = match fetch().await {
            Ok(value) => Arc::new(value),
            Err(e) => {
                let empty = guard.is_none();
                drop(guard);
                if empty {
                    self.forget_slot(&key, &slot);
                }
                return Err(e);
            }
        };
        *guard = Some(value.clone());
        drop(guard);
        self.account(key, &slot, value.weight());
        Ok((value, Source::Upstream))
    }

    /// Stores `value` under `key`, replacing what it held.
    pub fn insert(&self, key: CacheKey, value: Arc<V>) {
        let weight = value.weight();
        let slot = Slot::new(tokio::sync::Mutex::new(Some(value)));
        {
            let mut inner = self.inner.lock().expect("cache lock");
            let old = inner.entries.insert(
                key,
                Entry {
                    slot: slot.clone(),
                    weight: 0,
                    stored: Instant::now(),
                },
            );
            if let Some(old) = old {
                inner.weight -= old.weight;
            }
        }
        self.account(key, &slot, weight);
    }

    /// The fresh value `key` holds, without fetching (nothing while a fetch of it is running).
    pub fn peek(&self, key: &CacheKey) -> Option<Arc<V>> {
        let inner = self.inner.lock().expect("cache lock");
        let held = inner.entries.get(key)?.slot.try_lock().ok()?;
        held.as_ref().filter(|v| v.is_fresh()).cloned()
    }

    /// Drops the entry of a failed first fetch, so errors leave nothing behind.
    fn forget_slot(&self, key: &CacheKey, slot: &Slot<V>) {
        let mut inner = self.inner.lock().expect("cache lock");
        let ours = inner.entries.get(key).is_some_and(|e| {
            Arc::ptr_eq(&e.slot, slot) && e.slot.try_lock().is_ok_and(|held| held.is_none())
        });
        if ours {
            if let Some(e) = inner.entries.remove(key) {
                inner.weight -= e.weight;
            }
        }
    }

    /// Records the new weight of `key` and evicts until the bound holds again.
    fn account(&self, key: CacheKey, slot: &Slot<V>, weight: usize) {
        let mut inner = self.inner.lock().expect("cache lock");
        let Some(entry) = inner
            .entries
            .get_mut(&key)
            .filter(|e| Arc::ptr_eq(&e.slot, slot))
        else {
            return;
        };
        let old = std::mem::replace(&mut entry.weight, weight);
        entry.stored = Instant::now();
        inner.weight = inner.weight - old + weight;
        if inner.weight <= self.max_weight {
            return;
        }
        // Stale first, then oldest; entries with a fetch in progress are left alone.
        let mut candidates: Vec<(bool, Instant, CacheKey)> = inner
            .entries
            .iter()
            .filter(|(k, _)| **k != key)
            .filter_map(|(k, e)| {
                let fresh = e.slot.try_lock().ok()?.as_ref().map(|v| v.is_fresh())?;
                Some((fresh, e.stored, *k))
            })
            .collect();
        candidates.sort_by_key(|(fresh, stored, _)| (*fresh, *stored));
        for (_, _, k) in candidates {
            if inner.weight <= self.max_weight {
                break;
            }
            if let Some(e) = inner.entries.remove(&k) {
                inner.weight -= e.weight;
            }
        }
    }

    /// Forgets `value` if it is still what `key` holds (e.g. a token the server refused). A
    /// value fetched since, or being fetched, stays: concurrent callers that were all refused
    /// the same stale value then share one replacement instead of evicting each other's.
    pub fn invalidate(&self, key: &CacheKey, value: &Arc<V>) {
        let mut inner = self.inner.lock().expect("cache lock");
        let holds_it = inner.entries.get(key).is_some_and(|e| {
            e.slot
                .try_lock()
                .is_ok_and(|held| held.as_ref().is_some_and(|v| Arc::ptr_eq(v, value)))
        });
        if holds_it {
            if let Some(e) = inner.entries.remove(key) {
                inner.weight -= e.weight;
            }
        }
    }

    /// Sum of the weights held.
    #[cfg(test)]
    fn weight(&self) -> usize {
        self.inner.lock().expect("cache lock").weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Value {
        until: Instant,
        weight: usize,
    }

    impl Expiring for Value {
        fn is_fresh(&self) -> bool {
            Instant::now() < self.until
        }
        fn weight(&self) -> usize {
            self.weight
        }
    }

    fn value(ttl: Duration, weight: usize) -> Value {
        Value {
            until: Instant::now() + ttl,
            weight,
        }
    }

    fn key(s: &str) -> CacheKey {
        KeyBuilder::default().part(s).finish()
    }

    #[test]
    fn key_parts_are_unambiguous() {
        let a = KeyBuilder::default().part("ab").part("c").finish();
        let b = KeyBuilder::default().part("a").part("bc").finish();
        assert!(a != b);
        assert!(!format!("{a:?}").contains("ab"));
    }

    #[tokio::test]
    async fn single_flight_for_concurrent_lookups() {
        let cache = Arc::new(Cache::new(100));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(key("k"), || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(value(Duration::from_secs(60), 1))
                        })
                        .await
                        .unwrap()
                        .1
                })
            })
            .collect();
        let mut sources = Vec::new();
        for t in tasks {
            sources.push(t.await.unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            sources.iter().filter(|s| **s == Source::Upstream).count(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_errors_and_invalidation() {
        let cache = Cache::new(100);
        let fetch = || async { Ok::<_, ()>(value(Duration::from_secs(10), 1)) };
        assert_eq!(
            cache.get_or_fetch(key("k"), fetch).await.unwrap().1,
            Source::Upstream
        );
        assert_eq!(
            cache.get_or_fetch(key("k"), fetch).await.unwrap().1,
            Source::Cache
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            cache.get_or_fetch(key("k"), fetch).await.unwrap().1,
            Source::Upstream
        );
        let (held, _) = cache.get_or_fetch(key("k"), fetch).await.unwrap();
        let other = Arc::new(value(Duration::from_secs(60), 1));
        cache.invalidate(&key("k"), &other);
        assert!(cache.weight() > 0, "another value is not the one held");
        cache.invalidate(&key("k"), &held);
        assert_eq!(cache.weight(), 0);
        assert!(cache
            .get_or_fetch(key("e"), || async { Err::<Value, _>("boom") })
            .await
            .is_err());
        assert_eq!(
            cache.get_or_fetch(key("e"), fetch).await.unwrap().1,
            Source::Upstream
        );
    }

    #[tokio::test(start_paused = true)]
    async fn insert_peek_and_failed_fetches_leave_nothing() {
        let cache = Cache::new(100);
        assert!(cache.peek(&key("k")).is_none());
        cache.insert(key("k"), Arc::new(value(Duration::from_secs(10), 3)));
        assert_eq!(cache.weight(), 3);
        assert!(cache.peek(&key("k")).is_some());
        cache.insert(key("k"), Arc::new(value(Duration::from_secs(10), 5)));
        assert_eq!(cache.weight(), 5, "replaced, not added");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            cache.peek(&key("k")).is_none(),
            "stale values are not handed out"
        );
        for i in 0..10 {
            let _ = cache
                .get_or_fetch(key(&format!("e{i}")), || async { Err::<Value, _>(()) })
                .await;
        }
        assert_eq!(
            cache.inner.lock().unwrap().entries.len(),
            1,
            "errors leave no entries"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn weight_bound_evicts_oldest() {
        let cache = Cache::new(10);
        for name in ["a", "b", "c"] {
            cache
                .get_or_fetch(key(name), || async {
                    Ok::<_, ()>(value(Duration::from_secs(60), 4))
                })
                .await
                .unwrap();
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(cache.weight() <= 10);
        let again = cache
            .get_or_fetch(key("a"), || async {
                Ok::<_, ()>(value(Duration::from_secs(60), 4))
            })
            .await
            .unwrap();
        assert_eq!(again.1, Source::Upstream, "the oldest entry was evicted");
    }
}
