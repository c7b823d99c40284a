//! One relay: connect, subscribe, verify what arrives, hand new events to the stream writer,
//! reconnect with jittered backoff when the connection drops.
//!
//! Two subscriptions run on each connection. `live` asks for new events, whatever their
//! `created_at`. `backfill` pages
//! backwards from now to the resume point (newest event seen on this relay minus an overlap, or the
//! configured look-back on first contact) with `until`/`limit`, because relays cap how many stored
//! events one REQ returns. A reconnect therefore fetches only the gap, never days of history.
//! The range is read again a few seconds and half a minute later (`settle`), and then the last few
//! minutes every minute (`catchup`), for events a relay stored late or never pushed live.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dvmdash_core::event::Id32;
use dvmdash_core::kinds::Role;
use dvmdash_core::telemetry::{now_millis, now_secs};
use dvmdash_core::validate::{Validator, verify_crypto};
use futures_util::{SinkExt as _, StreamExt as _};
use metrics::{counter, gauge, histogram};
use rand::Rng as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics as m;
use crate::nip01::{self, Filter, RelayMessage};

/// A verified event on its way to the Redis stream.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub id: Id32,
    /// The event JSON exactly as the relay sent it.
    pub json: String,
    pub relay: Arc<str>,
    /// Unix ms when this collector received it.
    pub seen_ms: u64,
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
    /// Then, this often, re-read from the previous pass's end minus [`CATCHUP_OVERLAP_SECS`]:
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
    pub sink: mpsc::Sender<Accepted>,
    pub options: RelayOptions,
    /// DVM pubkeys seen (results, feedback, announcements): their kind-0 profiles are fetched too.
    pub dvms: DvmSet,
}

/// The DVM pubkeys a collector has seen, with a version that moves when one is added.
#[derive(Debug, Default)]
pub struct DvmSet {
    keys: std::sync::Mutex<std::collections::BTreeSet<String>>,
    version: AtomicU64,
}

impl DvmSet {
    /// Most authors in one profile subscription (each filter holds up to [`AUTHORS_PER_FILTER`]).
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

const AUTHORS_PER_FILTER: usize = 250;
const PROFILES: &str = "profiles";

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
}

const LIVE: &str = "live";

/// How far before the previous pass's end a catch-up pass starts, for events stored late.
pub const CATCHUP_OVERLAP_SECS: u64 = 120;

/// Watches one relay until `stop` is cancelled.
pub async fn watch(url: String, shared: Arc<Shared>, status: Arc<RelayStatus>, stop: CancellationToken) {
    let relay: Arc<str> = Arc::from(url.as_str());
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
        let outcome = session(&relay, &shared, &status, &stop).await;
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

/// State of the backward paging of stored events.
struct Backfill {
    since: u64,
    until: u64,
    page: u32,
    /// `backfill`, `settle` or `catchup`; page subscriptions are `<label>-<page>`.
    label: &'static str,
    subscription: String,
    /// Events in the current page, and the oldest `created_at` among them.
    count: u32,
    oldest: u64,
    started: Instant,
    done: bool,
}

async fn session(
    relay: &Arc<str>,
    shared: &Shared,
    status: &RelayStatus,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let opts = &shared.options;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(opts.max_message_bytes))
        .max_frame_size(Some(opts.max_message_bytes));
    let connect = tokio_tungstenite::connect_async_with_config(relay.as_ref(), Some(ws_config), true);
    let (ws, _) = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(opts.connect_timeout, connect) => r
            .map_err(|_| anyhow::anyhow!("connect timed out after {:?}", opts.connect_timeout))??,
    };
    let (mut tx, mut rx) = ws.split();
    // Subscriptions to one relay are paced, so a backfill never floods it with REQs.
    let pace = governor::RateLimiter::direct(governor::Quota::per_second(opts.reqs_per_sec));

    let now = now_secs();
    let kinds = shared.validator.kinds.subscription_kinds();
    let resume = status.newest_created_at.load(Ordering::Relaxed);
    let since = if resume > 0 {
        resume.saturating_sub(opts.resume_overlap_secs)
    } else {
        now.saturating_sub(opts.lookback_secs)
    };
    // No `since` on the live subscription: relays filter live events by `created_at` too, so any
    // lower bound would drop back-dated events that reach the relay late. `limit: 1` keeps its
    // stored-events phase to one event; the backfill below fetches the stored ones.
    let live = Filter {
        kinds: kinds.clone(),
        limit: Some(1),
        ..Default::default()
    };
    pace.until_ready().await;
    tx.send(Message::text(nip01::req(LIVE, &[live]))).await?;
    let mut backfill = Backfill::new("backfill", since, now);
    let page_filter = |b: &Backfill| Filter {
        kinds: kinds.clone(),
        since: Some(b.since),
        until: Some(b.until),
        limit: Some(opts.page_limit),
        ..Default::default()
    };
    pace.until_ready().await;
    tx.send(Message::text(nip01::req(
        &backfill.subscription,
        &[page_filter(&backfill)],
    )))
    .await?;

    status.connected.store(true, Ordering::Relaxed);
    gauge!(m::RELAY_CONNECTED, "relay" => relay.to_string()).set(1.0);
    info!(relay = %relay, since, "subscribed to relay");

    let mut ping = tokio::time::interval(opts.ping_interval);
    ping.tick().await;
    let mut last_frame = Instant::now();
    // Kind-0 profiles of the DVMs seen so far, re-requested when new DVMs appear.
    let mut profiles_sent: Option<u64> = None;
    let mut profile_check = tokio::time::interval(Duration::from_secs(5));
    // Later passes over the range: the settle pass once the first backfill is done (the whole
    // range again), then periodic catch-ups (from the previous pass's end minus an overlap).
    let mut next_pass_at: Option<tokio::time::Instant> = None;
    let mut passes = 0u32;
    let mut pass_since = since;
    loop {
        let frame = tokio::select! {
            _ = async { tokio::time::sleep_until(next_pass_at.unwrap_or_else(tokio::time::Instant::now)).await },
                if next_pass_at.is_some() && backfill.done =>
            {
                next_pass_at = None;
                passes += 1;
                let until = now_secs();
                // The settle passes read the whole range again; catch-ups only the recent part.
                let (label, from) = if passes <= SETTLE_PASSES { ("settle", since) } else { ("catchup", pass_since) };
                backfill = Backfill::new(label, from, until);
                pass_since = until.saturating_sub(CATCHUP_OVERLAP_SECS);
                pace.until_ready().await;
                tx.send(Message::text(nip01::req(&backfill.subscription, &[page_filter(&backfill)]))).await?;
                continue;
            }
            _ = stop.cancelled() => {
                // Polite goodbye; errors do not matter any more.
                let _ = tx.send(Message::text(nip01::close(LIVE))).await;
                let _ = tx.close().await;
                return Ok(());
            }
            _ = profile_check.tick() => {
                let v = shared.dvms.version();
                if v > 0 && profiles_sent != Some(v) {
                    profiles_sent = Some(v);
                    let filters: Vec<Filter> = shared
                        .dvms
                        .snapshot()
                        .chunks(AUTHORS_PER_FILTER)
                        .map(|a| Filter { kinds: vec![dvmdash_core::kinds::PROFILE_KIND], authors: a.to_vec(), ..Default::default() })
                        .collect();
                    pace.until_ready().await;
                    tx.send(Message::text(nip01::req(PROFILES, &filters))).await?;
                }
                continue;
            }
            _ = ping.tick() => {
                if last_frame.elapsed() > opts.idle_timeout {
                    anyhow::bail!("no frame for {:?}", opts.idle_timeout);
                }
                tx.send(Message::Ping(Vec::new().into())).await?;
                continue;
            }
            frame = rx.next() => frame,
        };
        let Some(frame) = frame else { return Ok(()) };
        last_frame = Instant::now();
        let text = match frame? {
            Message::Text(t) => t,
            Message::Binary(_) => {
                reject_message(relay, status);
                continue;
            }
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        match RelayMessage::parse(text.as_str()) {
            Ok(RelayMessage::Event { subscription, event }) => {
                let created_at = handle_event(relay, shared, status, event).await?;
                if subscription == backfill.subscription
                    && let Some(ts) = created_at
                {
                    backfill.count += 1;
                    backfill.oldest = backfill.oldest.min(ts);
                }
            }
            Ok(RelayMessage::EndOfStoredEvents { subscription }) if subscription == backfill.subscription => {
                if backfill.page == 0 {
                    let ms = backfill.started.elapsed().as_millis() as u64;
                    status.eose_ms.store(ms, Ordering::Relaxed);
                    histogram!(m::EOSE_SECONDS, "relay" => relay.to_string()).record(ms as f64 / 1000.0);
                }
                let old = std::mem::take(&mut backfill.subscription);
                tx.send(Message::text(nip01::close(&old))).await?;
                if next_page(&mut backfill) {
                    backfill.subscription = format!("{}-{}", backfill.label, backfill.page);
                    pace.until_ready().await;
                    tx.send(Message::text(nip01::req(
                        &backfill.subscription,
                        &[page_filter(&backfill)],
                    )))
                    .await?;
                } else {
                    debug!(relay = %relay, pass = backfill.label, pages = backfill.page + 1, "backfill complete");
                    next_pass_at = next_pass(passes, opts);
                }
            }
            Ok(RelayMessage::EndOfStoredEvents { .. }) | Ok(RelayMessage::Ok { .. }) => {}
            Ok(RelayMessage::Closed {
                subscription,
                message,
            }) => {
                counter!(m::NOTICES, "relay" => relay.to_string()).increment(1);
                warn!(relay = %relay, subscription, message, "relay closed a subscription");
                if subscription == LIVE {
                    anyhow::bail!("relay closed the live subscription: {message}");
                }
                if subscription == backfill.subscription {
                    backfill.done = true;
                    next_pass_at = next_pass(passes, opts);
                }
            }
            Ok(RelayMessage::Notice { message }) => {
                counter!(m::NOTICES, "relay" => relay.to_string()).increment(1);
                info!(relay = %relay, message = %dvmdash_core::nip90::truncate(&message, 200), "relay notice");
            }
            Ok(RelayMessage::Auth) | Ok(RelayMessage::Other { .. }) => {}
            Err(err) => {
                debug!(relay = %relay, error = %err, "malformed relay message");
                reject_message(relay, status);
            }
        }
    }
}

/// Passes over the whole range after the first backfill: at `settle_delay` and ten times that.
/// A relay under load can store an event seconds after acknowledging it; if the event is
/// back-dated, the recent-only catch-ups would never see it.
const SETTLE_PASSES: u32 = 2;

/// When the next pass over the range is due, after `passes` passes beyond the first backfill.
fn next_pass(passes: u32, opts: &RelayOptions) -> Option<tokio::time::Instant> {
    let wait = match passes {
        0 => Some(opts.settle_delay),
        p if p < SETTLE_PASSES => Some(opts.settle_delay * 10),
        _ => opts.catchup_interval,
    };
    wait.map(|w| tokio::time::Instant::now() + w)
}

impl Backfill {
    fn new(label: &'static str, since: u64, until: u64) -> Self {
        Backfill {
            since,
            until,
            page: 0,
            label,
            subscription: format!("{label}-0"),
            count: 0,
            oldest: u64::MAX,
            started: Instant::now(),
            done: false,
        }
    }
}

/// Moves the backfill window one page back; false when it is complete.
fn next_page(b: &mut Backfill) -> bool {
    if b.done || b.count == 0 {
        b.done = true;
        return false;
    }
    if b.oldest >= b.until {
        // The whole page sat on the boundary second: step past it.
        b.until = b.until.saturating_sub(1);
    } else {
        // `until` is inclusive: events sharing the oldest second come again and are dropped as seen.
        b.until = b.oldest;
    }
    b.page += 1;
    b.count = 0;
    b.oldest = u64::MAX;
    if b.until < b.since {
        b.done = true;
    }
    !b.done
}

fn reject_message(relay: &Arc<str>, status: &RelayStatus) {
    status.rejected.fetch_add(1, Ordering::Relaxed);
    counter!(m::REJECTED, "relay" => relay.to_string(), "reason" => m::MALFORMED_MESSAGE).increment(1);
}

/// Checks one event and queues it if new. Returns its `created_at` when it was valid (new or
/// duplicate), for backfill paging. Errors only when the writer is gone (shutting down).
async fn handle_event(
    relay: &Arc<str>,
    shared: &Shared,
    status: &RelayStatus,
    json: &str,
) -> anyhow::Result<Option<u64>> {
    status.received.fetch_add(1, Ordering::Relaxed);
    counter!(m::EVENTS_RECEIVED, "relay" => relay.to_string()).increment(1);
    let now = now_secs();
    let checked = shared.validator.precheck(json, now).and_then(|(event, id)| {
        if shared.seen.get(&id).is_some() {
            return Ok((event, id, true));
        }
        verify_crypto(&event, &id).map(|()| (event, id, false))
    });
    let (event, id, duplicate) = match checked {
        Ok(v) => v,
        Err(reason) => {
            status.rejected.fetch_add(1, Ordering::Relaxed);
            counter!(m::REJECTED, "relay" => relay.to_string(), "reason" => reason.as_str()).increment(1);
            debug!(relay = %relay, %reason, "event rejected");
            return Ok(None);
        }
    };
    // The resume point never moves past now, whatever a relay claims.
    status
        .newest_created_at
        .fetch_max(event.created_at.min(now), Ordering::Relaxed);
    status.last_event_ms.store(now_millis(), Ordering::Relaxed);
    if duplicate {
        status.duplicates.fetch_add(1, Ordering::Relaxed);
        counter!(m::DUPLICATES, "relay" => relay.to_string(), "layer" => "memory").increment(1);
        return Ok(Some(event.created_at));
    }
    shared.seen.insert(id, ());
    if matches!(
        shared.validator.kinds.role(event.kind),
        Role::Result | Role::Feedback | Role::Announcement
    ) {
        shared.dvms.add(&event.pubkey);
    }
    status.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::trace!(relay = %relay, kind = event.kind, id = %event.id, "event accepted");
    counter!(m::EVENTS_ACCEPTED, "relay" => relay.to_string()).increment(1);
    gauge!(m::LAST_EVENT, "relay" => relay.to_string()).set(now as f64);
    let accepted = Accepted {
        id,
        json: json.to_owned(),
        relay: relay.clone(),
        seen_ms: now_millis(),
    };
    // A full queue means the stream writer is behind: reading from the relay waits (backpressure,
    // nothing dropped) and the wait is counted.
    let accepted = match shared.sink.try_send(accepted) {
        Ok(()) => return Ok(Some(event.created_at)),
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
    Ok(Some(event.created_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(since: u64, until: u64) -> Backfill {
        Backfill::new("backfill", since, until)
    }

    #[test]
    fn backfill_pages_backwards_until_empty() {
        let mut b = page(100, 1000);
        b.count = 500;
        b.oldest = 800;
        assert!(next_page(&mut b));
        assert_eq!(b.until, 800);
        b.count = 3;
        b.oldest = 800; // only the boundary second again
        assert!(next_page(&mut b));
        assert_eq!(b.until, 799);
        b.count = 0;
        assert!(!next_page(&mut b));
    }

    #[test]
    fn backfill_stops_at_since() {
        let mut b = page(100, 1000);
        b.count = 10;
        b.oldest = 50;
        assert!(!next_page(&mut b));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(60);
        assert!(backoff(1, max) <= Duration::from_millis(1250));
        assert!(backoff(3, max) >= Duration::from_secs(3));
        assert!(backoff(30, max) <= Duration::from_secs(75));
    }
}
