//! The response cache in front of every statistic: serialized answers kept for a TTL, bounded by
//! their size in bytes (moka with a weigher), concurrent misses for one key computed once, and
//! refresh-ahead: keys asked for recently, plus the warmed ones, are recomputed in the background
//! before they expire, so nobody waits on a cold key after the first request.
//!
//! Freshness: the ingester bumps a data version in Redis after every insert. The refresher
//! recomputes a hot answer that is behind the version once it is [`REFRESH_BEHIND`] old; a request
//! accepts an answer behind the version for up to [`MAX_BEHIND`] and recomputes it after that. So
//! new events show within about a second and a half, requests for hot keys never wait on a query,
//! and a steady stream of inserts costs about two recomputations per hot key and second. Answers
//! that are expensive to compute wait ten times their computation time instead (at most
//! [`MAX_PATIENCE`]), so refreshing takes about a tenth of the database at most.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use dvmdash_core::dto::CacheStats;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};

/// Computes one answer.
pub type Producer = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ApiResult<Bytes>> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Entry {
    body: Bytes,
    computed: Instant,
    /// The data version current when the computation started.
    version: u64,
    /// How long the computation took.
    cost: Duration,
}

impl Entry {
    /// How long an answer behind the data stays usable: the base bound, stretched for expensive
    /// answers so recomputing them takes at most a tenth of the database's time, but never beyond
    /// [`MAX_PATIENCE`]: under load a cheap answer can cost seconds, and ten times that would
    /// leave users looking at numbers minutes old.
    fn patience(&self, base: Duration) -> Duration {
        base.max(self.cost * 10).min(MAX_PATIENCE)
    }
}

/// The longest an answer behind the data is served, however expensive it is to recompute.
pub const MAX_PATIENCE: Duration = Duration::from_secs(10);

/// A request serves an answer that is behind the data for at most this long.
pub const MAX_BEHIND: Duration = Duration::from_millis(1500);
/// The refresher recomputes a hot answer behind the data once it is this old.
pub const REFRESH_BEHIND: Duration = Duration::from_millis(500);

struct Hot {
    producer: Producer,
    last_access: Instant,
    /// Warmed at start: refreshed for as long as the process runs.
    pinned: bool,
}

pub struct ResponseCache {
    entries: moka::future::Cache<String, Entry>,
    hot: std::sync::Mutex<HashMap<String, Hot>>,
    ttl: Duration,
    limit_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes: AtomicU64,
    evictions: Arc<AtomicU64>,
    version: AtomicU64,
}

/// A key that nobody asked for in this long stops being refreshed.
const HOT_WINDOW: Duration = Duration::from_secs(600);

impl ResponseCache {
    pub fn new(ttl: Duration, limit_bytes: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let ev = evictions.clone();
        let entries = moka::future::Cache::builder()
            .max_capacity(limit_bytes)
            .weigher(|k: &String, v: &Entry| u32::try_from(k.len() + v.body.len()).unwrap_or(u32::MAX))
            .time_to_live(ttl)
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    ev.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        ResponseCache {
            entries,
            hot: std::sync::Mutex::new(HashMap::new()),
            ttl,
            limit_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            evictions,
            version: AtomicU64::new(0),
        }
    }

    /// Records the latest data version (answers computed before it are behind).
    pub fn set_version(&self, v: u64) {
        self.version.fetch_max(v, Ordering::Relaxed);
    }

    fn behind(&self, e: &Entry) -> bool {
        e.version < self.version.load(Ordering::Relaxed)
    }

    /// Follows the ingester's data version in Redis until `shutdown`.
    pub async fn watch_version(
        self: Arc<Self>,
        client: redis::Client,
        key: String,
        shutdown: CancellationToken,
    ) {
        let mut conn: Option<redis::aio::MultiplexedConnection> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if conn.is_none() {
                conn = client.get_multiplexed_async_connection().await.ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            match redis::cmd("GET").arg(&key).query_async::<Option<u64>>(c).await {
                Ok(v) => self.set_version(v.unwrap_or(0)),
                Err(_) => conn = None,
            }
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached answer for `key`, or the producer's (computed once for concurrent callers).
    /// Returns the body and whether it came from the cache.
    pub async fn get(&self, key: &str, producer: Producer, pin: bool) -> ApiResult<(Bytes, bool)> {
        if let Ok(mut hot) = self.hot.lock() {
            let h = hot.entry(key.to_owned()).or_insert_with(|| Hot {
                producer: producer.clone(),
                last_access: Instant::now(),
                pinned: pin,
            });
            h.last_access = Instant::now();
            h.pinned |= pin;
        }
        let usable = |e: &Entry| !self.behind(e) || e.computed.elapsed() < e.patience(MAX_BEHIND);
        if let Some(e) = self.entries.get(key).await
            && usable(&e)
        {
            self.count(true);
            return Ok((e.body, true));
        }
        let result = self.compute(key, producer, usable).await;
        // Computed here (or failed): a miss. Computed by another request while this one waited
        // for the key: a hit.
        self.count(matches!(result, Ok((_, false))));
        let (body, computed) = result?;
        Ok((body, !computed))
    }

    fn count(&self, hit: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::metrics::CACHE_HITS).increment(1);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::metrics::CACHE_MISSES).increment(1);
        }
    }

    /// Computes `key` unless, once we hold the key, the entry already is `good`. Computations of one
    /// key are serialized, so concurrent misses compute once and an older result never replaces a
    /// newer one. Returns the body and whether this call computed it.
    async fn compute(
        &self,
        key: &str,
        producer: Producer,
        good: impl Fn(&Entry) -> bool,
    ) -> ApiResult<(Bytes, bool)> {
        let version = &self.version;
        let result = self
            .entries
            .entry_by_ref(key)
            .and_try_compute_with(|existing| async move {
                if let Some(e) = existing
                    && good(e.value())
                {
                    return Ok(moka::ops::compute::Op::Nop);
                }
                let started = version.load(Ordering::Relaxed);
                let began = Instant::now();
                let body = producer().await?;
                Ok::<_, ApiError>(moka::ops::compute::Op::Put(Entry {
                    body,
                    computed: Instant::now(),
                    version: started,
                    cost: began.elapsed(),
                }))
            })
            .await?;
        use moka::ops::compute::CompResult;
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => Ok((e.into_value().body, true)),
            CompResult::Unchanged(e) => Ok((e.into_value().body, false)),
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                Err(ApiError::Internal("cache entry vanished".into()))
            }
        }
    }

    /// Recomputes hot keys that are behind the data or half way to expiry, until `shutdown`.
    pub async fn refresh_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(250).min(self.ttl / 4));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            metrics::gauge!(crate::metrics::CACHE_ENTRIES).set(self.entries.entry_count() as f64);
            metrics::gauge!(crate::metrics::CACHE_BYTES).set(self.entries.weighted_size() as f64);
            let due: Vec<(String, Producer)> = {
                let Ok(mut hot) = self.hot.lock() else { continue };
                hot.retain(|_, h| h.pinned || h.last_access.elapsed() < HOT_WINDOW);
                hot.iter().map(|(k, h)| (k.clone(), h.producer.clone())).collect()
            };
            let fresh = |e: &Entry| {
                let age = e.computed.elapsed();
                age < self.ttl / 2 && (!self.behind(e) || age < e.patience(REFRESH_BEHIND))
            };
            for (key, producer) in due {
                if shutdown.is_cancelled() {
                    return;
                }
                if self.entries.get(&key).await.is_some_and(|e| fresh(&e)) {
                    continue;
                }
                match self.compute(&key, producer, fresh).await {
                    Ok((_, true)) => {
                        self.refreshes.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(crate::metrics::CACHE_REFRESHES).increment(1);
                    }
                    Ok((_, false)) => {}
                    Err(err) => tracing::debug!(key = %key, error = %err, "background refresh failed"),
                }
            }
        }
    }

    pub async fn stats(&self) -> CacheStats {
        self.entries.run_pending_tasks().await;
        let bytes = self.entries.weighted_size();
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        CacheStats {
            items: self.entries.entry_count(),
            memory_usage_mb: mb(bytes),
            memory_limit_mb: mb(self.limit_bytes),
            utilization_percent: if self.limit_bytes > 0 {
                bytes as f64 * 100.0 / self.limit_bytes as f64
            } else {
                0.0
            },
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            ttl_seconds: self.ttl.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(calls: Arc<AtomicUsize>, body: &'static str) -> Producer {
        Arc::new(move || {
            let calls = calls.clone();
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Bytes::from_static(body.as_bytes()))
            })
        })
    }

    #[tokio::test]
    async fn concurrent_misses_compute_once_then_hit() {
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(30), 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let p = counting(calls.clone(), "{}");
        let (a, b) = tokio::join!(cache.get("k", p.clone(), false), cache.get("k", p.clone(), false));
        assert_eq!(
            a.unwrap().1 as u8 + b.unwrap().1 as u8,
            1,
            "one computed, the other waited for it"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one computation for concurrent misses"
        );
        assert!(cache.get("k", p, false).await.unwrap().1, "then a hit");
        let s = cache.stats().await;
        assert_eq!((s.hits, s.misses, s.items), (2, 1, 1));
        assert_eq!(s.bytes, 3, "key plus body bytes");
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = ResponseCache::new(Duration::from_secs(30), 1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let failing: Producer = Arc::new(move || {
            let c = c.clone();
            Box::pin(async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::NotFound("nope".into()))
            })
        });
        for _ in 0..2 {
            let err = cache.get("x", failing.clone(), false).await.unwrap_err();
            assert!(matches!(err, ApiError::NotFound(_)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn size_bound_evicts() {
        let cache = ResponseCache::new(Duration::from_secs(30), 100);
        for i in 0..50 {
            let body: &'static str = "0123456789";
            cache
                .get(
                    &format!("key{i}"),
                    counting(Arc::new(AtomicUsize::new(0)), body),
                    false,
                )
                .await
                .unwrap();
        }
        let s = cache.stats().await;
        assert!(s.bytes <= 100, "{} bytes held", s.bytes);
        assert!(s.evictions > 0);
    }

    #[tokio::test]
    async fn newer_data_makes_answers_stale_after_the_minimum_age() {
        let cache = ResponseCache::new(Duration::from_secs(30), 1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        let p = counting(calls.clone(), "x");
        cache.get("k", p.clone(), false).await.unwrap();
        cache.set_version(1);
        assert!(
            cache.get("k", p.clone(), false).await.unwrap().1,
            "too young to recompute"
        );
        tokio::time::sleep(MAX_BEHIND + Duration::from_millis(50)).await;
        assert!(
            !cache.get("k", p.clone(), false).await.unwrap().1,
            "behind the data: recomputed"
        );
        assert!(cache.get("k", p, false).await.unwrap().1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn hot_keys_refresh_before_expiry() {
        let cache = Arc::new(ResponseCache::new(Duration::from_millis(400), 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        cache
            .get("hot", counting(calls.clone(), "1"), true)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(cache.clone().refresh_loop(stop.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.cancel();
        task.await.unwrap();
        assert!(calls.load(Ordering::SeqCst) >= 3, "refreshed in the background");
        assert!(cache.stats().await.refreshes >= 2);
        assert!(
            cache.get("hot", counting(calls, "1"), false).await.unwrap().1,
            "still warm"
        );
    }
}
