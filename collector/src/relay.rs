//! One relay: sessions one after another ([`crate::session`]), reconnecting with jittered backoff
//! when the connection drops, and the gate every event passes before it is handed to the stream
//! writer ([`handle_event`]: cheap checks, in-memory dedup, then the signature).
//!
//! Each session pages backwards from now to the resume point (newest event seen on this relay minus
//! an overlap, or the configured look-back on first contact), so a reconnect fetches only the gap,
//! never days of history.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dvmdash_core::event::Id32;
use dvmdash_core::kinds::Role;
use dvmdash_core::telemetry::{now_millis, now_secs};
use dvmdash_core::validate::{Validator, verify_crypto};
use metrics::{counter, gauge};
use rand::Rng as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics as m;

/// A verified event on its way to the Redis stream.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub id: Id32,
    /// The event JSON exactly as the relay sent it; empty for a sighting.
    pub json: String,
    pub relay: Arc<str>,
    /// Unix ms when this collector received it.
    pub seen_ms: u64,
    /// Author (hex), kind and `created_at`, for the sighting if the event turns out to be known.
    pub pubkey: String,
    pub kind: u16,
    pub created_at: u64,
    /// `false`: a later delivery of an event this collector already queued (from another relay),
    /// to be recorded as a sighting only.
    pub first: bool,
}

impl Accepted {
    /// This delivery as a sighting of a known event.
    pub fn sighting(&self) -> dvmdash_core::stream::Sighting {
        dvmdash_core::stream::Sighting(
            hex::encode(self.id),
            self.relay.to_string(),
            self.seen_ms,
            self.pubkey.clone(),
            self.kind,
            self.created_at,
        )
    }
}

/// Tuning shared by every relay connection.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// On first contact, fetch stored events this far back.
    pub lookback_secs: u64,
    /// On reconnect, start this far before the newest event already seen on the relay.
    pub resume_overlap_secs: u64,
    pub connect_timeout: Duration,
    /// With no frame for this long the connection is presumed dead.
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    /// `limit` of each backfill page.
    pub page_limit: u32,
    /// Most REQs sent to one relay per second.
    pub reqs_per_sec: std::num::NonZeroU32,
    /// After the first backfill, wait this long and run it once more: an event a relay was still
    /// storing while both subscriptions started is in neither, whatever its `created_at`.
    pub settle_delay: Duration,
    /// Then, this often, re-read from the previous pass's end minus
    /// [`CATCHUP_OVERLAP_SECS`](crate::session::CATCHUP_OVERLAP_SECS):
    /// relays drop live pushes to slow subscribers and store some events late. Events already seen
    /// cost a cache lookup, not a signature check.
    pub catchup_interval: Option<Duration>,
    pub max_backoff: Duration,
    /// Largest websocket message accepted; bigger ones end the connection.
    pub max_message_bytes: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            lookback_secs: 3600,
            resume_overlap_secs: 600,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            page_limit: 500,
            reqs_per_sec: std::num::NonZeroU32::new(5).expect("5 is not zero"),
            settle_delay: Duration::from_secs(3),
            catchup_interval: Some(Duration::from_secs(60)),
            max_backoff: Duration::from_secs(60),
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What all relay tasks of one collector share.
pub struct Shared {
    pub validator: Validator,
    /// Ids already verified and queued (in-process dedup before any cryptography).
    pub seen: quick_cache::sync::Cache<Id32, ()>,
    /// (id, relay) deliveries already queued, so a relay repeating an event (pages overlap,
    /// reconnects) is not sighted twice.
    pub sighted: quick_cache::sync::Cache<(Id32, Arc<str>), ()>,
    pub sink: mpsc::Sender<Accepted>,
    pub options: RelayOptions,
    /// DVM pubkeys seen (results, feedback, announcements): their kind-0 profiles and the zap
    /// receipts naming them are fetched too.
    pub dvms: PubkeySet,
    /// Customers seen (authors of requests): their deletions are fetched too (a deletion counts
    /// only from the author of what it deletes).
    pub customers: PubkeySet,
}

/// Pubkeys a collector has seen in one role, with a version that moves when one is added.
#[derive(Debug, Default)]
pub struct PubkeySet {
    keys: std::sync::Mutex<std::collections::BTreeSet<String>>,
    version: AtomicU64,
}

impl PubkeySet {
    /// Most pubkeys followed (and so in one follow-up subscription).
    const MAX: usize = 5_000;

    fn add(&self, pubkey: &str) {
        if let Ok(mut k) = self.keys.lock()
            && k.len() < Self::MAX
            && k.insert(pubkey.to_owned())
        {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.keys
            .lock()
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Live state of one relay, for status reporting.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// Whether this collector is watching the relay now; counters of relays it gave up stay in
    /// memory (a reassignment continues them) but are no longer published.
    pub assigned: AtomicBool,
    pub connected: AtomicBool,
    /// Newest `created_at` this relay delivered (valid events only): the resume point.
    pub newest_created_at: AtomicU64,
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub reconnects: AtomicU64,
    /// Unix ms of the last event received.
    pub last_event_ms: AtomicU64,
    /// Milliseconds from the first backfill REQ to its EOSE, on the latest connection.
    pub eose_ms: AtomicU64,
    /// `rejected` by reason.
    pub rejected_by: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Where the paging of the current connection stands.
    pub paging: std::sync::Mutex<Option<dvmdash_core::dto::PagingState>>,
    /// Whether the relay reconciles with NIP-77: [`NEGENTROPY_UNKNOWN`] until tried, then
    /// [`NEGENTROPY_YES`] or [`NEGENTROPY_NO`] (it refused, failed or stayed silent: paged with
    /// REQs from then on).
    pub negentropy: AtomicU8,
    /// Passes after the first backfill, by how they read the relay (`negentropy` or `req`).
    pub passes_by_method: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// The per-event metrics of this relay, registered on first use.
    meters: std::sync::OnceLock<RelayMeters>,
}

/// A relay's per-event metrics, registered once: a `counter!` with a relay label builds the
/// label and looks the series up on every call, and every copy of every event took two to four.
struct RelayMeters {
    received: metrics::Counter,
    duplicates: metrics::Counter,
    accepted: metrics::Counter,
    last_event: metrics::Gauge,
}

impl std::fmt::Debug for RelayMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayMeters")
    }
}

pub const NEGENTROPY_UNKNOWN: u8 = 0;
pub const NEGENTROPY_YES: u8 = 1;
pub const NEGENTROPY_NO: u8 = 2;

impl RelayStatus {
    /// The per-event metrics of `relay` (this status's relay).
    fn meters(&self, relay: &str) -> &RelayMeters {
        self.meters.get_or_init(|| RelayMeters {
            received: counter!(m::EVENTS_RECEIVED, "relay" => relay.to_owned()),
            duplicates: counter!(m::DUPLICATES, "relay" => relay.to_owned(), "layer" => "memory"),
            accepted: counter!(m::EVENTS_ACCEPTED, "relay" => relay.to_owned()),
            last_event: gauge!(m::LAST_EVENT, "relay" => relay.to_owned()),
        })
    }

    /// Counts one rejection.
    pub fn reject(&self, reason: &'static str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut by) = self.rejected_by.lock() {
            *by.entry(reason).or_default() += 1;
        }
    }

    /// Counts one finished pass read with `method`.
    pub fn count_pass(&self, method: &'static str) {
        if let Ok(mut by) = self.passes_by_method.lock() {
            *by.entry(method).or_default() += 1;
        }
    }

    /// `unknown`, `supported` or `unsupported`.
    pub fn negentropy_words(&self) -> &'static str {
        match self.negentropy.load(Ordering::Relaxed) {
            NEGENTROPY_YES => "supported",
            NEGENTROPY_NO => "unsupported",
            _ => "unknown",
        }
    }
}

/// Watches one relay until `stop` is cancelled.
pub async fn watch(url: String, shared: Arc<Shared>, status: Arc<RelayStatus>, stop: CancellationToken) {
    let relay: Arc<str> = Arc::from(url.as_str());
    m::init_relay(&relay);
    let mut failures: u32 = 0;
    loop {
        if failures > 0 {
            let delay = backoff(failures, shared.options.max_backoff);
            debug!(relay = %relay, delay_ms = delay.as_millis() as u64, "waiting before reconnect");
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            counter!(m::RECONNECTS, "relay" => relay.to_string()).increment(1);
            status.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let outcome = crate::session::run(&relay, &shared, &status, &stop).await;
        status.connected.store(false, Ordering::Relaxed);
        gauge!(m::RELAY_CONNECTED, "relay" => relay.to_string()).set(0.0);
        match outcome {
            Ok(()) if stop.is_cancelled() => break,
            Ok(()) => info!(relay = %relay, "relay closed the connection"),
            // Reconnect loops repeat: warn on the first failures and then on powers of two only.
            Err(err) if failures < 2 || (failures + 1).is_power_of_two() => {
                warn!(relay = %relay, error = %err, failures = failures + 1, "relay connection failed")
            }
            Err(err) => {
                debug!(relay = %relay, error = %err, failures = failures + 1, "relay connection failed")
            }
        }
        // A connection that lasted a while was healthy: start the backoff over.
        failures = if started.elapsed() > Duration::from_secs(60) {
            1
        } else {
            failures.saturating_add(1)
        };
    }
    info!(relay = %relay, "stopped watching relay");
}

/// Exponential backoff from 1 s, capped, with ±25 % jitter so many collectors do not reconnect in step.
fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(max);
    let jitter = rand::thread_rng().gen_range(0.75..1.25);
    base.mul_f64(jitter)
}

/// Checks one event and queues it if new. Returns its `created_at`, id and kind when it was valid
/// (new or duplicate), for paging and reconciliation. Errors only when the writer is gone
/// (shutting down).
pub(crate) async fn handle_event(
    relay: &Arc<str>,
    shared: &Shared,
    status: &RelayStatus,
    json: &str,
) -> anyhow::Result<Option<(u64, Id32, u16)>> {
    status.received.fetch_add(1, Ordering::Relaxed);
    let meters = status.meters(relay);
    meters.received.increment(1);
    let now = now_secs();
    // Another copy of an event already verified is recognised from its head alone, without
    // building the event: with three relays delivering everything, two copies in three.
    let known = shared
        .validator
        .precheck_head(json, now)
        .ok()
        .filter(|head| shared.seen.get(&head.id).is_some());
    let (id, pubkey, created_at, kind, duplicate) = match known {
        Some(head) => (
            head.id,
            Cow::Borrowed(head.pubkey),
            head.created_at,
            head.kind,
            true,
        ),
        None => {
            let checked = match shared.validator.precheck(json, now) {
                Ok((event, id)) => {
                    // Relays send the same events at the same moment, so copies of one event are
                    // often checked at once on different relay tasks. The first takes the id's
                    // place in `seen` and verifies; the others wait for it and are duplicates if it
                    // was valid, or verify their own copy if it was not (a forged copy cannot hide
                    // the real one).
                    match shared.seen.get_value_or_guard_async(&id).await {
                        Ok(()) => Ok((event, id, true)),
                        Err(place) => verify_crypto(&event, &id).map(|()| {
                            let _ = place.insert(());
                            (event, id, false)
                        }),
                    }
                }
                Err(reason) => Err(reason),
            };
            match checked {
                Ok((event, id, duplicate)) => (
                    id,
                    Cow::Owned(event.pubkey),
                    event.created_at,
                    event.kind,
                    duplicate,
                ),
                Err(reason) => {
                    status.reject(reason.as_str());
                    counter!(m::REJECTED, "relay" => relay.to_string(), "reason" => reason.as_str())
                        .increment(1);
                    debug!(relay = %relay, %reason, "event rejected");
                    return Ok(None);
                }
            }
        }
    };
    // The resume point never moves past now, whatever a relay claims.
    status
        .newest_created_at
        .fetch_max(created_at.min(now), Ordering::Relaxed);
    status.last_event_ms.store(now_millis(), Ordering::Relaxed);
    // Built only when queued: most duplicates repeat a known (id, relay) pair and queue nothing.
    let delivery = |json: String| Accepted {
        id,
        json,
        relay: relay.clone(),
        seen_ms: now_millis(),
        pubkey: pubkey.clone().into_owned(),
        kind,
        created_at,
        first: !duplicate,
    };
    let pair = (id, relay.clone());
    let new_pair = shared.sighted.get(&pair).is_none();
    if new_pair {
        shared.sighted.insert(pair, ());
    }
    if duplicate {
        status.duplicates.fetch_add(1, Ordering::Relaxed);
        meters.duplicates.increment(1);
        if new_pair {
            // Another relay delivered it too: recorded for coverage, not stored again.
            queue(shared, relay, delivery(String::new())).await?;
        }
        return Ok(Some((created_at, id, kind)));
    }
    match shared.validator.kinds.role(kind) {
        Role::Result
        | Role::Feedback
        | Role::Announcement
        | Role::ServiceAnnouncement
        | Role::Heartbeat
        | Role::Capabilities => shared.dvms.add(&pubkey),
        Role::Request => shared.customers.add(&pubkey),
        _ => {}
    }
    status.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::trace!(relay = %relay, kind, id = %hex::encode(id), "event accepted");
    meters.accepted.increment(1);
    meters.last_event.set(now as f64);
    queue(shared, relay, delivery(json.to_owned())).await?;
    Ok(Some((created_at, id, kind)))
}

/// Hands a delivery to the stream writer. A full queue means the writer is behind: reading from the
/// relay waits (backpressure, nothing dropped) and the wait is counted.
async fn queue(shared: &Shared, relay: &Arc<str>, accepted: Accepted) -> anyhow::Result<()> {
    let accepted = match shared.sink.try_send(accepted) {
        Ok(()) => return Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => anyhow::bail!("stream writer stopped"),
        Err(mpsc::error::TrySendError::Full(a)) => a,
    };
    let waited = Instant::now();
    shared
        .sink
        .send(accepted)
        .await
        .map_err(|_| anyhow::anyhow!("stream writer stopped"))?;
    counter!(m::BACKPRESSURE, "relay" => relay.to_string()).increment(waited.elapsed().as_micros() as u64);
    Ok(())
}

/// A `Shared` for unit tests: default event rules, small caches, no pubkeys yet.
#[cfg(test)]
pub(crate) fn shared_for_tests(sink: mpsc::Sender<Accepted>) -> Shared {
    Shared {
        validator: dvmdash_core::config::EventArgs::default().validator(),
        seen: quick_cache::sync::Cache::new(1000),
        sighted: quick_cache::sync::Cache::new(3000),
        sink,
        options: RelayOptions::default(),
        dvms: PubkeySet::default(),
        customers: PubkeySet::default(),
    }
}

#[cfg(test)]
mod tests {
    use dvmdash_core::validate::Keys;

    use super::*;

    use super::shared_for_tests as shared;

    /// Copies of one event checked at the same moment on several relay tasks: one is the event,
    /// every other copy a duplicate (each still a sighting of its relay).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn copies_checked_at_once_store_the_event_once() {
        const RELAYS: usize = 8;
        let keys = Keys::from_seed(b"concurrent copies");
        for round in 0..20u64 {
            let (sink, mut queued) = mpsc::channel(100);
            let shared = Arc::new(shared(sink));
            let json = keys
                .sign(now_secs() - 60 - round, 5300, vec![], String::new())
                .to_json();
            let start = Arc::new(tokio::sync::Barrier::new(RELAYS));
            let tasks: Vec<_> = (0..RELAYS)
                .map(|i| {
                    let (shared, json, start) = (shared.clone(), json.clone(), start.clone());
                    tokio::spawn(async move {
                        let relay: Arc<str> = Arc::from(format!("wss://relay{i}.test"));
                        let status = RelayStatus::default();
                        start.wait().await;
                        handle_event(&relay, &shared, &status, &json).await.unwrap();
                        status.accepted.load(Ordering::Relaxed)
                    })
                })
                .collect();
            let mut accepted = 0;
            for t in tasks {
                accepted += t.await.unwrap();
            }
            drop(shared);
            let mut first = 0;
            let mut sightings = 0;
            while let Some(a) = queued.recv().await {
                if a.first {
                    first += 1;
                    assert!(!a.json.is_empty());
                } else {
                    sightings += 1;
                }
            }
            assert_eq!((accepted, first, sightings), (1, 1, RELAYS - 1), "round {round}");
        }
    }

    /// A copy with a forged signature checked first does not hide the real event behind it.
    #[tokio::test]
    async fn a_forged_copy_first_does_not_hide_the_event() {
        let (sink, mut queued) = mpsc::channel(10);
        let shared = shared(sink);
        let keys = Keys::from_seed(b"forged copy");
        let real = keys.sign(now_secs() - 60, 5300, vec![], String::new());
        let mut forged = real.clone();
        let flipped = if forged.sig.starts_with('0') { "1" } else { "0" };
        forged.sig.replace_range(..1, flipped);
        let status = RelayStatus::default();
        let (bad, good): (Arc<str>, Arc<str>) = (Arc::from("wss://bad.test"), Arc::from("wss://good.test"));
        let out = handle_event(&bad, &shared, &status, &forged.to_json())
            .await
            .unwrap();
        assert!(out.is_none());
        assert_eq!(status.rejected.load(Ordering::Relaxed), 1);
        let out = handle_event(&good, &shared, &status, &real.to_json())
            .await
            .unwrap();
        assert!(out.is_some());
        let queued = queued.try_recv().unwrap();
        assert!(queued.first);
        assert_eq!(&*queued.relay, "wss://good.test");
        assert_eq!(status.accepted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(60);
        assert!(backoff(1, max) <= Duration::from_millis(1250));
        assert!(backoff(3, max) >= Duration::from_secs(3));
        assert!(backoff(30, max) <= Duration::from_secs(75));
    }
}
