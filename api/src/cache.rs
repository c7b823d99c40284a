//! The response cache in front of every statistic: serialized answers kept for a TTL, bounded by
//! their size in bytes (moka with a weigher), concurrent misses for one key computed once, and
//! refresh-ahead: keys asked for recently, plus the warmed ones, are recomputed in the background
//! before they expire, so nobody waits on a cold key after the first request.
//!
//! Freshness: the ingester bumps a data version in Redis after every insert. The refresher
//! recomputes a hot answer that is behind the version once it is [`REFRESH_BEHIND`] old; a request
//! takes an answer behind the version as it is for up to [`MAX_BEHIND`]. After that, up to
//! [`MAX_PATIENCE`], the request still gets the cached answer at once (`X-Cache: stale`) and starts
//! its recomputation in the background, so the next request sees the new one; only an answer
//! older than that makes a request wait for a computation. So new events show within about a
//! second and a half, requests for answers in the cache never wait on a query (under load the
//! refresher can fall behind: one pass over a dozen hot keys takes seconds when each costs a few
//! hundred milliseconds), and a steady stream of inserts costs about two recomputations per hot key
//! and second. Answers that are expensive to compute wait ten times their computation time instead
//! (at most [`MAX_PATIENCE`]), so refreshing takes about a tenth of the database at most.

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

/// The longest an answer behind the data is served, however expensive it is to recompute or late
/// its background recomputation: past this a request waits for a new answer.
pub const MAX_PATIENCE: Duration = Duration::from_secs(10);

/// A request serves an answer that is behind the data as it is for this long; after it, the
/// request also starts the answer's recomputation.
pub const MAX_BEHIND: Duration = Duration::from_millis(1500);
/// The refresher recomputes a hot answer behind the data once it is this old.
pub const REFRESH_BEHIND: Duration = Duration::from_millis(500);

/// How a request was answered (the `X-Cache` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// From the cache, current or within [`MAX_BEHIND`] of the data (or computed by another
    /// request while this one waited for the key).
    Hit,
    /// From the cache while its recomputation runs in the background: behind the data for longer
    /// than [`MAX_BEHIND`], less than [`MAX_PATIENCE`].
    Stale,
    /// Computed for this request (or failed).
    Miss,
}

impl Served {
    pub fn as_str(self) -> &'static str {
        match self {
            Served::Hit => "hit",
            Served::Stale => "stale",
            Served::Miss => "miss",
        }
    }

    /// The value of an `X-Cache` header; anything else is taken as a hit.
    pub fn from_header(value: &[u8]) -> Served {
        [Served::Stale, Served::Miss]
            .into_iter()
            .find(|s| s.as_str().as_bytes() == value)
            .unwrap_or(Served::Hit)
    }
}

/// What a request may do with a cached entry.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Serve,
    ServeAndRefresh,
    Recompute,
}

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
    /// Keys a request is recomputing in the background, so many stale requests start one.
    refreshing: std::sync::Mutex<std::collections::HashSet<String>>,
    stale: AtomicU64,
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
            refreshing: std::sync::Mutex::new(Default::default()),
            stale: AtomicU64::new(0),
        }
    }

    /// Records the latest data version (answers computed before it are behind).
    pub fn set_version(&self, v: u64) {
        self.version.fetch_max(v, Ordering::Relaxed);
    }

    fn behind(&self, e: &Entry) -> bool {
        e.version < self.version.load(Ordering::Relaxed)
    }

    /// Whether a request may take `e` as it is.
    fn usable(&self, e: &Entry) -> bool {
        !self.behind(e) || e.computed.elapsed() < e.patience(MAX_BEHIND)
    }

    fn verdict(&self, e: &Entry) -> Verdict {
        if self.usable(e) {
            Verdict::Serve
        } else if e.computed.elapsed() < MAX_PATIENCE {
            Verdict::ServeAndRefresh
        } else {
            Verdict::Recompute
        }
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
    /// Returns the body and how it was served.
    pub async fn get(
        self: &Arc<Self>,
        key: &str,
        producer: Producer,
        pin: bool,
    ) -> ApiResult<(Bytes, Served)> {
        if let Ok(mut hot) = self.hot.lock() {
            let h = hot.entry(key.to_owned()).or_insert_with(|| Hot {
                producer: producer.clone(),
                last_access: Instant::now(),
                pinned: pin,
            });
            h.last_access = Instant::now();
            h.pinned |= pin;
        }
        if let Some(e) = self.entries.get(key).await {
            match self.verdict(&e) {
                Verdict::Serve => {
                    self.count(Served::Hit);
                    return Ok((e.body, Served::Hit));
                }
                Verdict::ServeAndRefresh => {
                    self.refresh_in_background(key, producer);
                    self.count(Served::Stale);
                    return Ok((e.body, Served::Stale));
                }
                Verdict::Recompute => {}
            }
        }
        let result = self.compute(key, producer, |e| self.usable(e)).await;
        // Computed here (or failed): a miss. Computed by another request while this one waited
        // for the key: a hit.
        let served = if matches!(result, Ok((_, false))) {
            Served::Hit
        } else {
            Served::Miss
        };
        self.count(served);
        let (body, _) = result?;
        Ok((body, served))
    }

    fn count(&self, served: Served) {
        // A stale answer is a hit too (`/api/cache/stats` keeps DVMDash's hits and misses).
        if served != Served::Miss {
            self.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(crate::metrics::CACHE_HITS).increment(1);
        }
        match served {
            Served::Hit => {}
            Served::Stale => {
                self.stale.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::CACHE_STALE).increment(1);
            }
            Served::Miss => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::CACHE_MISSES).increment(1);
            }
        }
    }

    /// Recomputes `key` on a task of its own unless a request already started that.
    fn refresh_in_background(self: &Arc<Self>, key: &str, producer: Producer) {
        /// Takes the key off the list however the task ends (the runtime dropping it included).
        struct Done(Arc<ResponseCache>, String);
        impl Drop for Done {
            fn drop(&mut self) {
                if let Ok(mut busy) = self.0.refreshing.lock() {
                    busy.remove(&self.1);
                }
            }
        }
        let first = self
            .refreshing
            .lock()
            .is_ok_and(|mut busy| busy.insert(key.to_owned()));
        if !first {
            return;
        }
        let done = Done(self.clone(), key.to_owned());
        tokio::spawn(async move {
            let (cache, key) = (&done.0, &done.1);
            cache.refresh(key, producer, |e| cache.usable(e)).await;
        });
    }

    /// Recomputes `key` off any request's path unless it already is `good`, counting a refresh
    /// when it did.
    async fn refresh(&self, key: &str, producer: Producer, good: impl Fn(&Entry) -> bool) {
        match self.compute(key, producer, good).await {
            Ok((_, true)) => {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::CACHE_REFRESHES).increment(1);
            }
            Ok((_, false)) => {}
            Err(err) => tracing::debug!(key = %key, error = %err, "background refresh failed"),
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
                self.refresh(&key, producer, fresh).await;
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
            stale_hits: self.stale.load(Ordering::Relaxed),
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
        let mut served = [a.unwrap().1, b.unwrap().1];
        served.sort_by_key(|s| s.as_str());
        assert_eq!(
            served,
            [Served::Hit, Served::Miss],
            "one computed, the other waited for it"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one computation for concurrent misses"
        );
        assert_eq!(
            cache.get("k", p, false).await.unwrap().1,
            Served::Hit,
            "then a hit"
        );
        let s = cache.stats().await;
        assert_eq!((s.hits, s.misses, s.items), (2, 1, 1));
        assert_eq!(s.bytes, 3, "key plus body bytes");
    }

    #[test]
    fn the_header_reads_back_as_written() {
        for s in [Served::Hit, Served::Stale, Served::Miss] {
            assert_eq!(Served::from_header(s.as_str().as_bytes()), s);
        }
        assert_eq!(Served::from_header(b"<junk>"), Served::Hit);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(30), 1 << 20));
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
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(30), 100));
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

    /// A producer whose answers count up: "1", "2", …, each taking `delay`.
    fn numbered(calls: Arc<AtomicUsize>, delay: Duration) -> Producer {
        Arc::new(move || {
            let calls = calls.clone();
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                Ok(Bytes::from(n.to_string()))
            })
        })
    }

    #[tokio::test]
    async fn an_answer_behind_the_data_is_served_at_once_while_one_request_recomputes_it() {
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(30), 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        // Cheap the first time (so it is behind after MAX_BEHIND), slow to recompute.
        cache
            .get("k", numbered(calls.clone(), Duration::ZERO), false)
            .await
            .unwrap();
        let p = numbered(calls.clone(), Duration::from_millis(300));
        cache.set_version(1);
        let (body, served) = cache.get("k", p.clone(), false).await.unwrap();
        assert_eq!(
            (&body[..], served),
            (&b"1"[..], Served::Hit),
            "too young to recompute"
        );
        tokio::time::sleep(MAX_BEHIND + Duration::from_millis(50)).await;
        // Many requests at once past the bound: each gets the old answer without waiting, and
        // together they start one recomputation.
        let started = Instant::now();
        let all = futures_util::future::join_all((0..20).map(|_| cache.get("k", p.clone(), false))).await;
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "served without waiting for the 300 ms computation: {:?}",
            started.elapsed()
        );
        for r in all {
            let (body, served) = r.unwrap();
            assert_eq!((&body[..], served), (&b"1"[..], Served::Stale));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one recomputation for all of them"
        );
        let (body, served) = cache.get("k", p, false).await.unwrap();
        assert_eq!((&body[..], served), (&b"2"[..], Served::Hit), "the new answer");
        let s = cache.stats().await;
        assert_eq!((s.hits, s.stale_hits, s.misses, s.refreshes), (22, 20, 1, 1));
        assert!(
            cache.refreshing.lock().unwrap().is_empty(),
            "the key is free again"
        );
    }

    #[tokio::test]
    async fn past_the_longest_patience_a_request_waits_for_a_new_answer() {
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(60), 1 << 20));
        let entry = |age: Duration, cost: Duration| Entry {
            body: Bytes::from_static(b"old"),
            computed: Instant::now().checked_sub(age).unwrap(),
            version: 0,
            cost,
        };
        let ms = Duration::from_millis;
        // Current answers are served whatever their age.
        assert_eq!(cache.verdict(&entry(ms(20_000), ms(5))), Verdict::Serve);
        cache.set_version(1);
        assert_eq!(cache.verdict(&entry(ms(1_000), ms(5))), Verdict::Serve);
        assert_eq!(cache.verdict(&entry(ms(2_000), ms(5))), Verdict::ServeAndRefresh);
        // An expensive answer is given ten times its cost before it counts as behind...
        assert_eq!(cache.verdict(&entry(ms(2_000), ms(300))), Verdict::Serve);
        assert_eq!(
            cache.verdict(&entry(ms(3_500), ms(300))),
            Verdict::ServeAndRefresh
        );
        // ...but never more than the longest patience, and past it nothing old is served.
        assert_eq!(cache.verdict(&entry(ms(10_500), ms(5))), Verdict::Recompute);
        assert_eq!(cache.verdict(&entry(ms(10_500), ms(5_000))), Verdict::Recompute);

        // A request for such an entry computes, and gets the new answer.
        cache.entries.insert("k".into(), entry(ms(10_500), ms(5))).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let (body, served) = cache
            .get("k", numbered(calls.clone(), Duration::ZERO), false)
            .await
            .unwrap();
        assert_eq!((&body[..], served), (&b"1"[..], Served::Miss));
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
        assert_eq!(
            cache.get("hot", counting(calls, "1"), false).await.unwrap().1,
            Served::Hit,
            "still warm"
        );
    }
}
