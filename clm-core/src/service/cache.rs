//! Short-lived, per-process caches of rows that issuance reads on every call
//! (the issuer with its opened key, the policy). Without them each issuance
//! costs extra round trips that dominate the database's work under load.
//!
//! An entry lives at most `ttl` (ClmConfig::cache_ttl, default one second,
//! like EJBCA's profile cache): a change made through this handle drops the
//! entry at once (`forget`), a change made by another process sharing the
//! databases is seen within `ttl`. A zero `ttl` disables caching.
//!
//! Written here rather than taken from moka or quick_cache: the rule that a
//! load begun before a `forget` is not kept is what makes a revoked CA stay
//! gone, and neither crate offers it (quick_cache has no TTL at all).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Entries by key, each with the time it was loaded.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (Instant, Arc<V>)>>,
    /// Held while loading, so callers missing at the same moment load once.
    loading: tokio::sync::Mutex<()>,
    /// Bumped by `forget`: a load that started before it is not kept.
    generation: std::sync::atomic::AtomicU64,
}

impl<K: Eq + Hash + Copy, V> TtlCache<K, V> {
    /// An empty cache whose entries live `ttl` (zero: nothing is kept).
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The entry for `key` if it is younger than the ttl.
    pub fn get(&self, key: K) -> Option<Arc<V>> {
        let entries = self.entries.read().ok()?;
        let (loaded_at, value) = entries.get(&key)?;
        (loaded_at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// The entry for `key`, loading it with `load` when missing or stale.
    /// Concurrent misses wait for one load instead of each running their own.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let _loading = self.loading.lock().await;
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let loaded_at = Instant::now();
        let generation = self.generation.load(Ordering::SeqCst);
        let value = Arc::new(load().await?);
        if !self.ttl.is_zero()
            && let Ok(mut entries) = self.entries.write()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            // Stale entries of other keys go too, so the map stays small.
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            entries.insert(key, (loaded_at, value.clone()));
        }
        Ok(value)
    }

    /// Drops the entry for `key` (its row changed through this handle).
    pub fn forget(&self, key: K) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn load_counting(
        cache: &TtlCache<u32, u32>,
        loads: &std::sync::atomic::AtomicU32,
    ) -> u32 {
        let value = cache
            .get_or_load(1, || async {
                Ok::<_, ()>(loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
            })
            .await;
        value.map(|v| *v).unwrap_or(0)
    }

    #[tokio::test]
    async fn entries_are_reused_within_the_ttl_and_reloaded_after_forget() {
        let cache = TtlCache::new(Duration::from_secs(60));
        let loads = std::sync::atomic::AtomicU32::new(0);
        assert_eq!(load_counting(&cache, &loads).await, 1);
        assert_eq!(load_counting(&cache, &loads).await, 1);
        cache.forget(1);
        assert_eq!(load_counting(&cache, &loads).await, 2);
    }

    #[tokio::test]
    async fn a_zero_ttl_caches_nothing() {
        let cache = TtlCache::new(Duration::ZERO);
        let loads = std::sync::atomic::AtomicU32::new(0);
        assert_eq!(load_counting(&cache, &loads).await, 1);
        assert_eq!(load_counting(&cache, &loads).await, 2);
        assert!(cache.get(1).is_none());
    }

    #[tokio::test]
    async fn stale_entries_are_reloaded() {
        let cache = TtlCache::new(Duration::from_millis(20));
        let loads = std::sync::atomic::AtomicU32::new(0);
        assert_eq!(load_counting(&cache, &loads).await, 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(load_counting(&cache, &loads).await, 2);
    }

    #[tokio::test]
    async fn a_failed_load_caches_nothing() {
        let cache: TtlCache<u32, u32> = TtlCache::new(Duration::from_secs(60));
        let failed = cache
            .get_or_load(1, || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(failed.err(), Some("down"));
        assert!(cache.get(1).is_none());
    }
}
