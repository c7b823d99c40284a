//! One connection to one relay, as a small state machine: [`Session`] holds what was subscribed and
//! where the paging of stored events stands, and has one method per thing that can happen (a
//! frame of each kind, the ping timer, the follow-up timer, a pass falling due). [`run`] connects and
//! feeds it until the connection ends or the collector stops.
//!
//! Subscriptions on each connection:
//! - `live`: new events of every watched kind, whatever their `created_at`;
//! - `backfill-<n>`: stored events from the resume point to now, paged backwards with
//!   `until`/`limit` because relays cap how many stored events one REQ returns ([`crate::paging`]:
//!   complete whatever the relay's cap and reading of `until`);
//! - `settle-<page>`: the same range again, 3 s and 30 s after the first backfill ends, for events
//!   the relay was still storing while both subscriptions started;
//! - `catchup-<page>`: then every minute the last few minutes, for events stored but never pushed;
//! - `dvms`: kind-0 profiles of the DVMs this collector has seen, and zap receipts naming them;
//! - `customers`: deletions by the customers seen (a customer cancelling its request).
//!
//! Which kinds go in which subscription comes from the catalogue, `dvmdash_core::kinds::CATALOGUE`.

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
use crate::paging::{Paging, RelayReading, UntilReading};
use crate::relay::PubkeySet;
use crate::relay::{RelayOptions, RelayStatus, Shared, handle_event};
use dvmdash_core::kinds::Collect;

const LIVE: &str = "live";
/// Follow-up subscriptions: events about the DVMs and customers seen (see [`Collect`]).
const DVMS: &str = "dvms";
const CUSTOMERS: &str = "customers";
/// Most pubkeys in one filter of a follow-up subscription.
const AUTHORS_PER_FILTER: usize = 250;
/// How often the DVMs and customers seen are checked for new ones to follow.
const FOLLOW_CHECK: Duration = Duration::from_secs(5);
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
    let mut follow_check = tokio::time::interval(FOLLOW_CHECK);
    loop {
        let flow = tokio::select! {
            _ = session.pass_due(), if session.pass_pending() => session.on_pass_due().await?,
            _ = stop.cancelled() => {
                session.close().await;
                return Ok(());
            }
            _ = follow_check.tick() => session.on_follow_check().await?,
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
    /// The pass over stored events in progress (or the last one, when `pass_done`).
    paging: Paging,
    /// `backfill`, `settle` or `catchup`; page subscriptions are `<label>-<n>`.
    pass_label: &'static str,
    /// The subscription of the page in flight.
    page_subscription: String,
    pass_started: Instant,
    pass_done: bool,
    /// Passes run after the first backfill, and where the next catch-up starts.
    passes: u32,
    pass_since: u64,
    next_pass_at: Option<tokio::time::Instant>,
    /// Versions of the DVM and customer sets last followed.
    dvms_sent: Option<u64>,
    customers_sent: Option<u64>,
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
        let kinds = shared.validator.kinds.subscription_kinds();
        let reading = RelayReading {
            until: UntilReading::Unknown,
            cap: opts.page_limit,
        };
        Session {
            relay,
            shared,
            status,
            tx,
            pace: governor::RateLimiter::direct(governor::Quota::per_second(opts.reqs_per_sec)),
            paging: Paging::new(since, now, kinds.len(), reading),
            kinds,
            since,
            pass_label: "backfill",
            page_subscription: String::new(),
            pass_started: Instant::now(),
            pass_done: false,
            passes: 0,
            pass_since: since,
            next_pass_at: None,
            dvms_sent: None,
            customers_sent: None,
            last_frame: Instant::now(),
        }
    }

    /// Opens `live` and the first backfill page, and marks the relay connected.
    pub(crate) async fn subscribe(&mut self) -> anyhow::Result<()> {
        // No `since` on the live subscription: relays filter live events by `created_at` too, so
        // any lower bound would drop back-dated events that reach the relay late. `limit: 1` keeps
        // its stored-events phase to one event; the backfill fetches the stored ones.
        let live = Filter {
            // Plus the live-only kinds (ephemeral ContextVM messages), which no page asks for.
            kinds: self.shared.validator.kinds.live_kinds(),
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
        self.next_pass_at.is_some() && self.pass_done
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
        self.paging = Paging::new(from, until, self.kinds.len(), self.paging.reading());
        self.pass_label = label;
        self.pass_started = Instant::now();
        self.pass_done = false;
        self.pass_since = until.saturating_sub(CATCHUP_OVERLAP_SECS);
        self.send_page().await?;
        Ok(Flow::Continue(()))
    }

    /// Follows the DVMs and customers seen so far, again whenever new ones appeared: the DVMs'
    /// profiles and the zap receipts naming them, the customers' deletions.
    async fn on_follow_check(&mut self) -> anyhow::Result<Flow> {
        let kinds = &self.shared.validator.kinds;
        let dvm_filters = |keys: &[String]| {
            let profiles = by_authors(keys, kinds.collected(Collect::ByDvms));
            let zaps = keys.chunks(AUTHORS_PER_FILTER).map(|p| Filter {
                kinds: kinds.collected(Collect::MentioningDvms),
                p_tags: p.to_vec(),
                ..Default::default()
            });
            profiles
                .chain(zaps)
                .filter(|f| !f.kinds.is_empty())
                .collect::<Vec<_>>()
        };
        if let Some(filters) = follow_filters(&self.shared.dvms, &mut self.dvms_sent, dvm_filters) {
            self.send_req(DVMS, &filters).await?;
        }
        let customer_filters = |keys: &[String]| {
            by_authors(keys, kinds.collected(Collect::ByCustomers))
                .filter(|f| !f.kinds.is_empty())
                .collect::<Vec<_>>()
        };
        if let Some(filters) =
            follow_filters(&self.shared.customers, &mut self.customers_sent, customer_filters)
        {
            self.send_req(CUSTOMERS, &filters).await?;
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

    /// Checks and queues the event; tells the paging about it when it belongs to the page in
    /// flight and was valid.
    async fn on_event(&mut self, subscription: &str, event: &str) -> anyhow::Result<()> {
        let created_at = handle_event(self.relay, self.shared, self.status, event).await?;
        if subscription == self.page_subscription
            && let Some(ts) = created_at
        {
            self.paging.on_event(ts);
        }
        Ok(())
    }

    /// The end of a page: request the next one, or schedule the next pass.
    async fn on_eose(&mut self, subscription: &str) -> anyhow::Result<()> {
        if subscription != self.page_subscription {
            return Ok(());
        }
        if self.paging.requests == 0 && self.pass_label == "backfill" {
            let ms = self.pass_started.elapsed().as_millis() as u64;
            self.status.eose_ms.store(ms, Ordering::Relaxed);
            histogram!(m::EOSE_SECONDS, "relay" => self.relay.to_string()).record(ms as f64 / 1000.0);
        }
        let old = std::mem::take(&mut self.page_subscription);
        self.tx.send(Message::text(nip01::close(&old))).await?;
        if self.paging.on_end() {
            self.send_page().await
        } else {
            self.end_pass();
            Ok(())
        }
    }

    /// The relay ended a subscription: without `live` the connection is useless; an ended page
    /// ends its pass (the next pass reads the range again).
    fn on_closed(&mut self, subscription: &str, message: &str) -> anyhow::Result<()> {
        counter!(m::NOTICES, "relay" => self.relay.to_string()).increment(1);
        warn!(relay = %self.relay, subscription, message, "relay closed a subscription");
        if subscription == LIVE {
            anyhow::bail!("relay closed the live subscription: {message}");
        }
        if subscription == self.page_subscription {
            self.page_subscription.clear();
            self.end_pass();
        }
        Ok(())
    }

    fn end_pass(&mut self) {
        let p = &self.paging;
        let relay = self.relay.to_string();
        counter!(m::PAGING_SPLIT_SECONDS, "relay" => relay.clone()).increment(u64::from(p.split_seconds));
        counter!(m::PAGING_UNRESOLVED_SECONDS, "relay" => relay).increment(u64::from(p.unresolved_seconds));
        if p.unresolved_seconds > 0 {
            warn!(relay = %self.relay, seconds = p.unresolved_seconds, pass = self.pass_label,
                "one kind filled a whole page within a second; some of its events may be missing");
        }
        debug!(relay = %self.relay, pass = self.pass_label, requests = p.requests,
            split_seconds = p.split_seconds, until = ?p.reading().until, cap = p.reading().cap, "pass complete");
        self.pass_done = true;
        self.next_pass_at = next_pass(self.passes, &self.shared.options);
        self.publish_paging();
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

    /// Requests the page the paging asks for next.
    async fn send_page(&mut self) -> anyhow::Result<()> {
        let Some(req) = self.paging.request() else {
            self.end_pass();
            return Ok(());
        };
        let filter = Filter {
            kinds: self.kinds[req.kinds].to_vec(),
            since: Some(req.since),
            until: Some(req.until),
            limit: Some(self.shared.options.page_limit),
            ..Default::default()
        };
        self.page_subscription = format!("{}-{}", self.pass_label, self.paging.requests);
        let subscription = self.page_subscription.clone();
        self.send_req(&subscription, &[filter]).await?;
        self.publish_paging();
        Ok(())
    }

    /// Shows where paging stands in the relay's status (published with the heartbeat).
    fn publish_paging(&self) {
        let p = &self.paging;
        let reading = p.reading();
        let state = dvmdash_core::dto::PagingState {
            pass: self.pass_label.to_owned(),
            passes: u64::from(self.passes) + 1,
            done: self.pass_done,
            requests: p.requests,
            since: p.since(),
            cursor: p.cursor(),
            until: reading.until.as_str().to_owned(),
            cap: reading.cap,
        };
        if let Ok(mut slot) = self.status.paging.lock() {
            *slot = Some(state);
        }
    }

    fn reject_message(&self) {
        self.status.reject(m::MALFORMED_MESSAGE);
        counter!(m::REJECTED, "relay" => self.relay.to_string(), "reason" => m::MALFORMED_MESSAGE)
            .increment(1);
    }
}

/// One filter per chunk of `keys` as authors, for `kinds`.
fn by_authors(keys: &[String], kinds: Vec<u16>) -> impl Iterator<Item = Filter> + '_ {
    keys.chunks(AUTHORS_PER_FILTER).map(move |a| Filter {
        kinds: kinds.clone(),
        authors: a.to_vec(),
        ..Default::default()
    })
}

/// The filters following `set`, when it changed since `sent` (which is then updated).
fn follow_filters(
    set: &PubkeySet,
    sent: &mut Option<u64>,
    filters: impl Fn(&[String]) -> Vec<Filter>,
) -> Option<Vec<Filter>> {
    let version = set.version();
    if version == 0 || *sent == Some(version) {
        return None;
    }
    *sent = Some(version);
    Some(filters(&set.snapshot())).filter(|f| !f.is_empty())
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use dvmdash_core::config::EventArgs;
    use dvmdash_core::validate::Keys;
    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::*;
    use crate::relay::{Accepted, PubkeySet};

    fn shared(sink: mpsc::Sender<Accepted>) -> Shared {
        Shared {
            validator: EventArgs::default().validator(),
            seen: quick_cache::sync::Cache::new(1000),
            sighted: quick_cache::sync::Cache::new(3000),
            sink,
            options: RelayOptions::default(),
            dvms: PubkeySet::default(),
            customers: PubkeySet::default(),
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
        // One second past now, so now is read whether the relay's `until` is inclusive or not.
        assert_eq!(until - since, shared.options.lookback_secs + 1);
        assert!(status.connected.load(Ordering::Relaxed));

        // A valid event in the page moves the next page's `until` to its `created_at`, inclusive.
        let keys = Keys::from_seed(b"session test");
        let event = keys.sign(until - 100, 5300, vec![], String::new());
        let event_frame = |sub: &str| {
            Some(Ok(Message::text(format!(
                "[\"EVENT\",\"{sub}\",{}]",
                event.to_json()
            ))))
        };
        assert!(
            s.on_frame(event_frame("backfill-0"))
                .await
                .expect("event")
                .is_continue()
        );
        assert_eq!(hex::encode(queued.try_recv().expect("queued").id), event.id);
        let eose = |sub: &str| text(serde_json::json!(["EOSE", sub]));
        assert!(s.on_frame(eose("backfill-0")).await.expect("eose").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames[0], serde_json::json!(["CLOSE", "backfill-0"]));
        assert_eq!(frames[1][1], "backfill-1");
        assert_eq!(frames[1][2]["until"], until - 100);

        // This relay leaves out the boundary second it is known to hold: `until` is exclusive
        // here, and the page is asked again one second later.
        assert!(s.on_frame(eose("backfill-1")).await.expect("eose").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames[1][1], "backfill-2");
        assert_eq!(frames[1][2]["until"], until - 99);
        assert!(
            s.on_frame(event_frame("backfill-2"))
                .await
                .expect("event")
                .is_continue()
        );
        assert!(s.on_frame(eose("backfill-2")).await.expect("eose").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames[1][1], "backfill-3");
        assert_eq!(
            frames[1][2]["until"],
            until - 100,
            "past the second, the exclusive way"
        );

        // An empty page ends the backfill and schedules the settle pass over the whole range.
        assert!(s.on_frame(eose("backfill-3")).await.expect("eose").is_continue());
        assert_eq!(sent(&mut s.tx), vec![serde_json::json!(["CLOSE", "backfill-3"])]);
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
        s.subscribe().await.expect("subscribe");
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
}
