//! One connection to one relay, as a small state machine: [`Session`] holds what was subscribed and
//! where the paging of stored events stands, and has one method per thing that can happen (a
//! frame of each kind, the ping timer, the profile timer, a pass falling due). [`run`] connects and
//! feeds it until the connection ends or the collector stops.
//!
//! Subscriptions on each connection:
//! - `live`: new events of every watched kind, whatever their `created_at`;
//! - `backfill-<page>`: stored events from the resume point to now, paged backwards with
//!   `until`/`limit` because relays cap how many stored events one REQ returns;
//! - `settle-<page>`: the same range again, 3 s and 30 s after the first backfill ends, for events
//!   the relay was still storing while both subscriptions started;
//! - `catchup-<page>`: then every minute the last few minutes, for events stored but never pushed;
//! - `profiles`: kind-0 metadata of the DVMs this collector has seen.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dvmdash_core::telemetry::now_secs;
use futures_util::{Sink, SinkExt as _, StreamExt as _};
use metrics::{counter, gauge, histogram};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics as m;
use crate::nip01::{self, Filter, RelayMessage};
use crate::relay::{RelayOptions, RelayStatus, Shared, handle_event};

const LIVE: &str = "live";
const PROFILES: &str = "profiles";
/// Most authors in one filter of the `profiles` subscription.
const AUTHORS_PER_FILTER: usize = 250;
/// How often the set of DVMs is checked for new ones whose profiles to request.
const PROFILE_CHECK: Duration = Duration::from_secs(5);
/// How far before the previous pass's end a catch-up pass starts, for events stored late.
pub const CATCHUP_OVERLAP_SECS: u64 = 120;
/// Passes over the whole range after the first backfill: at `settle_delay` and ten times that.
/// A relay under load can store an event seconds after acknowledging it; if the event is
/// back-dated, the recent-only catch-ups would never see it.
const SETTLE_PASSES: u32 = 2;

/// Connects to `relay` and runs one session until the connection ends (`Ok`) or fails (`Err`), or
/// `stop` is cancelled (`Ok`, after a polite goodbye).
pub async fn run(
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
    let (tx, mut rx) = ws.split();
    let mut session = Session::new(relay, shared, status, tx);
    session.subscribe().await?;
    let mut ping = tokio::time::interval(opts.ping_interval);
    ping.tick().await;
    let mut profile_check = tokio::time::interval(PROFILE_CHECK);
    loop {
        let flow = tokio::select! {
            _ = session.pass_due(), if session.pass_pending() => session.on_pass_due().await?,
            _ = stop.cancelled() => {
                session.close().await;
                return Ok(());
            }
            _ = profile_check.tick() => session.on_profile_check().await?,
            _ = ping.tick() => session.on_ping().await?,
            frame = rx.next() => session.on_frame(frame).await?,
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

/// What a handler tells the loop: go on, or the relay ended the connection.
type Flow = ControlFlow<()>;

/// The state of one connection. Generic over the sending half so the state machine can be tested
/// without a socket.
pub(crate) struct Session<'a, T> {
    relay: &'a Arc<str>,
    shared: &'a Shared,
    status: &'a RelayStatus,
    tx: T,
    /// Subscriptions to one relay are paced, so a backfill never floods it with REQs.
    pace: governor::DefaultDirectRateLimiter,
    kinds: Vec<u16>,
    /// Start of the range the first backfill and the settle passes read.
    since: u64,
    /// The pass over stored events in progress (or the last one, when `done`).
    backfill: Backfill,
    /// Passes run after the first backfill, and where the next catch-up starts.
    passes: u32,
    pass_since: u64,
    next_pass_at: Option<tokio::time::Instant>,
    /// Version of the DVM set whose profiles were last requested.
    profiles_sent: Option<u64>,
    last_frame: Instant,
}

impl<'a, T> Session<'a, T>
where
    T: Sink<Message> + Unpin,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    pub(crate) fn new(relay: &'a Arc<str>, shared: &'a Shared, status: &'a RelayStatus, tx: T) -> Self {
        let opts = &shared.options;
        let now = now_secs();
        let resume = status.newest_created_at.load(Ordering::Relaxed);
        let since = if resume > 0 {
            resume.saturating_sub(opts.resume_overlap_secs)
        } else {
            now.saturating_sub(opts.lookback_secs)
        };
        Session {
            relay,
            shared,
            status,
            tx,
            pace: governor::RateLimiter::direct(governor::Quota::per_second(opts.reqs_per_sec)),
            kinds: shared.validator.kinds.subscription_kinds(),
            since,
            backfill: Backfill::new("backfill", since, now),
            passes: 0,
            pass_since: since,
            next_pass_at: None,
            profiles_sent: None,
            last_frame: Instant::now(),
        }
    }

    /// Opens `live` and the first backfill page, and marks the relay connected.
    pub(crate) async fn subscribe(&mut self) -> anyhow::Result<()> {
        // No `since` on the live subscription: relays filter live events by `created_at` too, so
        // any lower bound would drop back-dated events that reach the relay late. `limit: 1` keeps
        // its stored-events phase to one event; the backfill fetches the stored ones.
        let live = Filter {
            kinds: self.kinds.clone(),
            limit: Some(1),
            ..Default::default()
        };
        self.send_req(LIVE, &[live]).await?;
        self.send_page().await?;
        self.status.connected.store(true, Ordering::Relaxed);
        gauge!(m::RELAY_CONNECTED, "relay" => self.relay.to_string()).set(1.0);
        info!(relay = %self.relay, since = self.since, "subscribed to relay");
        Ok(())
    }

    // ----- timers

    fn pass_pending(&self) -> bool {
        self.next_pass_at.is_some() && self.backfill.done
    }

    async fn pass_due(&self) {
        if let Some(at) = self.next_pass_at {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Starts the next pass: the settle passes read the whole range again, catch-ups only the
    /// recent part.
    pub(crate) async fn on_pass_due(&mut self) -> anyhow::Result<Flow> {
        self.next_pass_at = None;
        self.passes += 1;
        let until = now_secs();
        let (label, from) = if self.passes <= SETTLE_PASSES {
            ("settle", self.since)
        } else {
            ("catchup", self.pass_since)
        };
        self.backfill = Backfill::new(label, from, until);
        self.pass_since = until.saturating_sub(CATCHUP_OVERLAP_SECS);
        self.send_page().await?;
        Ok(Flow::Continue(()))
    }

    /// Requests the profiles of the DVMs seen so far, again whenever new ones appeared.
    async fn on_profile_check(&mut self) -> anyhow::Result<Flow> {
        let version = self.shared.dvms.version();
        if version > 0 && self.profiles_sent != Some(version) {
            self.profiles_sent = Some(version);
            let filters: Vec<Filter> = self
                .shared
                .dvms
                .snapshot()
                .chunks(AUTHORS_PER_FILTER)
                .map(|authors| Filter {
                    kinds: vec![dvmdash_core::kinds::PROFILE_KIND],
                    authors: authors.to_vec(),
                    ..Default::default()
                })
                .collect();
            self.send_req(PROFILES, &filters).await?;
        }
        Ok(Flow::Continue(()))
    }

    /// Keeps the connection open, and gives it up when the relay has been silent too long.
    async fn on_ping(&mut self) -> anyhow::Result<Flow> {
        let idle = self.shared.options.idle_timeout;
        if self.last_frame.elapsed() > idle {
            anyhow::bail!("no frame for {idle:?}");
        }
        self.tx.send(Message::Ping(Vec::new().into())).await?;
        Ok(Flow::Continue(()))
    }

    /// Polite goodbye; errors do not matter any more.
    async fn close(&mut self) {
        let _ = self.tx.send(Message::text(nip01::close(LIVE))).await;
        let _ = self.tx.close().await;
    }

    // ----- frames

    /// One websocket frame, or `None` when the stream ended.
    pub(crate) async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> anyhow::Result<Flow> {
        let Some(frame) = frame else {
            return Ok(Flow::Break(()));
        };
        self.last_frame = Instant::now();
        match frame? {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => {
                self.reject_message();
                Ok(Flow::Continue(()))
            }
            Message::Close(_) => Ok(Flow::Break(())),
            _ => Ok(Flow::Continue(())),
        }
    }

    async fn on_text(&mut self, text: &str) -> anyhow::Result<Flow> {
        match RelayMessage::parse(text) {
            Ok(RelayMessage::Event { subscription, event }) => self.on_event(&subscription, event).await?,
            Ok(RelayMessage::EndOfStoredEvents { subscription }) => self.on_eose(&subscription).await?,
            Ok(RelayMessage::Closed {
                subscription,
                message,
            }) => self.on_closed(&subscription, &message)?,
            Ok(RelayMessage::Notice { message }) => self.on_notice(&message),
            Ok(RelayMessage::Ok { .. } | RelayMessage::Auth | RelayMessage::Other { .. }) => {}
            Err(err) => {
                debug!(relay = %self.relay, error = %err, "malformed relay message");
                self.reject_message();
            }
        }
        Ok(Flow::Continue(()))
    }

    /// Checks and queues the event; counts it towards the current backfill page when it belongs
    /// to it and was valid.
    async fn on_event(&mut self, subscription: &str, event: &str) -> anyhow::Result<()> {
        let created_at = handle_event(self.relay, self.shared, self.status, event).await?;
        if subscription == self.backfill.subscription
            && let Some(ts) = created_at
        {
            self.backfill.count += 1;
            self.backfill.oldest = self.backfill.oldest.min(ts);
        }
        Ok(())
    }

    /// The end of a backfill page: request the next one, or schedule the next pass.
    async fn on_eose(&mut self, subscription: &str) -> anyhow::Result<()> {
        if subscription != self.backfill.subscription {
            return Ok(());
        }
        if self.backfill.page == 0 {
            let ms = self.backfill.started.elapsed().as_millis() as u64;
            self.status.eose_ms.store(ms, Ordering::Relaxed);
            histogram!(m::EOSE_SECONDS, "relay" => self.relay.to_string()).record(ms as f64 / 1000.0);
        }
        let old = std::mem::take(&mut self.backfill.subscription);
        self.tx.send(Message::text(nip01::close(&old))).await?;
        if next_page(&mut self.backfill) {
            self.backfill.subscription = format!("{}-{}", self.backfill.label, self.backfill.page);
            self.send_page().await?;
        } else {
            debug!(relay = %self.relay, pass = self.backfill.label, pages = self.backfill.page + 1, "backfill complete");
            self.next_pass_at = next_pass(self.passes, &self.shared.options);
        }
        Ok(())
    }

    /// The relay ended a subscription: without `live` the connection is useless; an ended
    /// backfill counts as complete.
    fn on_closed(&mut self, subscription: &str, message: &str) -> anyhow::Result<()> {
        counter!(m::NOTICES, "relay" => self.relay.to_string()).increment(1);
        warn!(relay = %self.relay, subscription, message, "relay closed a subscription");
        if subscription == LIVE {
            anyhow::bail!("relay closed the live subscription: {message}");
        }
        if subscription == self.backfill.subscription {
            self.backfill.done = true;
            self.next_pass_at = next_pass(self.passes, &self.shared.options);
        }
        Ok(())
    }

    fn on_notice(&self, message: &str) {
        counter!(m::NOTICES, "relay" => self.relay.to_string()).increment(1);
        info!(relay = %self.relay, message = %dvmdash_core::nip90::truncate(message, 200), "relay notice");
    }

    // ----- sending

    async fn send_req(&mut self, subscription: &str, filters: &[Filter]) -> anyhow::Result<()> {
        self.pace.until_ready().await;
        self.tx
            .send(Message::text(nip01::req(subscription, filters)))
            .await?;
        Ok(())
    }

    /// Requests the current backfill page.
    async fn send_page(&mut self) -> anyhow::Result<()> {
        let b = &self.backfill;
        let filter = Filter {
            kinds: self.kinds.clone(),
            since: Some(b.since),
            until: Some(b.until),
            limit: Some(self.shared.options.page_limit),
            ..Default::default()
        };
        let subscription = b.subscription.clone();
        self.send_req(&subscription, &[filter]).await
    }

    fn reject_message(&self) {
        self.status.rejected.fetch_add(1, Ordering::Relaxed);
        counter!(m::REJECTED, "relay" => self.relay.to_string(), "reason" => m::MALFORMED_MESSAGE)
            .increment(1);
    }
}

/// State of the backward paging of stored events.
#[derive(Debug)]
pub(crate) struct Backfill {
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

/// When the next pass over the range is due, after `passes` passes beyond the first backfill.
fn next_pass(passes: u32, opts: &RelayOptions) -> Option<tokio::time::Instant> {
    let wait = match passes {
        0 => Some(opts.settle_delay),
        p if p < SETTLE_PASSES => Some(opts.settle_delay * 10),
        _ => opts.catchup_interval,
    };
    wait.map(|w| tokio::time::Instant::now() + w)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use dvmdash_core::config::EventArgs;
    use dvmdash_core::validate::Keys;
    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::*;
    use crate::relay::{Accepted, DvmSet};

    fn shared(sink: mpsc::Sender<Accepted>) -> Shared {
        Shared {
            validator: EventArgs::default().validator(),
            seen: quick_cache::sync::Cache::new(1000),
            sink,
            options: RelayOptions::default(),
            dvms: DvmSet::default(),
        }
    }

    /// The frames sent so far, as JSON, and forgets them.
    fn sent(tx: &mut Vec<Message>) -> Vec<Value> {
        tx.drain(..)
            .filter_map(|m| match m {
                Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
                _ => None,
            })
            .collect()
    }

    fn text(v: Value) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        Some(Ok(Message::text(v.to_string())))
    }

    #[tokio::test]
    async fn pages_backwards_then_settles_then_catches_up() {
        let (sink, mut queued) = mpsc::channel(100);
        let shared = shared(sink);
        let status = RelayStatus::default();
        let relay: Arc<str> = Arc::from("wss://relay.test");
        let mut s = Session::new(&relay, &shared, &status, Vec::new());
        s.subscribe().await.expect("subscribe");
        let reqs = sent(&mut s.tx);
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(reqs[0][1], "live");
        assert!(reqs[0][2].get("since").is_none(), "live has no lower bound");
        assert_eq!(reqs[1][1], "backfill-0");
        let (since, until) = (
            reqs[1][2]["since"].as_u64().unwrap(),
            reqs[1][2]["until"].as_u64().unwrap(),
        );
        assert_eq!(until - since, shared.options.lookback_secs);
        assert!(status.connected.load(Ordering::Relaxed));

        // A valid event in the page moves the next page's `until` to its `created_at`.
        let keys = Keys::from_seed(b"session test");
        let event = keys.sign(until - 100, 5300, vec![], String::new());
        let frame = format!("[\"EVENT\",\"backfill-0\",{}]", event.to_json());
        assert!(
            s.on_frame(Some(Ok(Message::text(frame))))
                .await
                .expect("event")
                .is_continue()
        );
        assert_eq!(hex::encode(queued.try_recv().expect("queued").id), event.id);
        assert!(
            s.on_frame(text(serde_json::json!(["EOSE", "backfill-0"])))
                .await
                .expect("eose")
                .is_continue()
        );
        let frames = sent(&mut s.tx);
        assert_eq!(frames[0], serde_json::json!(["CLOSE", "backfill-0"]));
        assert_eq!(frames[1][1], "backfill-1");
        assert_eq!(frames[1][2]["until"], until - 100);

        // An empty page ends the backfill and schedules the settle pass over the whole range.
        assert!(
            s.on_frame(text(serde_json::json!(["EOSE", "backfill-1"])))
                .await
                .expect("eose")
                .is_continue()
        );
        assert_eq!(sent(&mut s.tx), vec![serde_json::json!(["CLOSE", "backfill-1"])]);
        assert!(s.pass_pending());
        for (pass, label, from) in [(1, "settle-0", since), (2, "settle-0", since)] {
            assert!(s.on_pass_due().await.expect("pass").is_continue());
            let frames = sent(&mut s.tx);
            assert_eq!(frames[0][1], label, "pass {pass}");
            assert_eq!(frames[0][2]["since"], from, "pass {pass}");
            assert!(
                s.on_frame(text(serde_json::json!(["EOSE", label])))
                    .await
                    .expect("eose")
                    .is_continue()
            );
            sent(&mut s.tx);
        }
        // Then catch-ups over the recent part only.
        assert!(s.on_pass_due().await.expect("pass").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames[0][1], "catchup-0");
        assert!(frames[0][2]["since"].as_u64().unwrap() > since);
    }

    #[tokio::test]
    async fn hostile_frames_are_counted_and_the_end_is_noticed() {
        let (sink, _queued) = mpsc::channel(100);
        let shared = shared(sink);
        let status = RelayStatus::default();
        let relay: Arc<str> = Arc::from("wss://relay.test");
        let mut s = Session::new(&relay, &shared, &status, Vec::new());
        for junk in ["not json", "{\"EVENT\":1}", "[\"EVENT\"]", &"[".repeat(100_000)] {
            let flow = s.on_frame(Some(Ok(Message::text(junk)))).await.expect("junk");
            assert!(flow.is_continue());
        }
        let flow = s
            .on_frame(Some(Ok(Message::Binary(vec![0u8; 10].into()))))
            .await
            .expect("binary");
        assert!(flow.is_continue());
        assert_eq!(status.rejected.load(Ordering::Relaxed), 5);
        // A forged event is rejected, not queued.
        let bad = serde_json::json!(["EVENT", "live", {"id": "00".repeat(32), "pubkey": "11".repeat(32),
            "created_at": now_secs(), "kind": 5300, "tags": [], "content": "", "sig": "22".repeat(64)}]);
        assert!(s.on_frame(text(bad)).await.expect("forged").is_continue());
        assert_eq!(status.rejected.load(Ordering::Relaxed), 6);
        assert_eq!(status.accepted.load(Ordering::Relaxed), 0);
        // CLOSED on `live` makes the session fail (and reconnect); on a backfill page it ends it.
        assert!(
            s.on_frame(text(serde_json::json!(["CLOSED", "backfill-0", "rate-limited"])))
                .await
                .expect("closed backfill")
                .is_continue()
        );
        assert!(s.pass_pending());
        let err = s
            .on_frame(text(serde_json::json!(["CLOSED", "live", "bye"])))
            .await;
        assert!(err.is_err());
        assert!(
            s.on_frame(Some(Ok(Message::Close(None))))
                .await
                .expect("close")
                .is_break()
        );
        assert!(s.on_frame(None).await.expect("end").is_break());
    }

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
}
