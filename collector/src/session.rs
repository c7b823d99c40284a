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
//! - on a relay that supports NIP-77, the settle and catch-up passes reconcile instead
//!   (`<pass>-neg-<n>`, [`crate::reconcile`]) and fetch only the missing ids (`<pass>-ids-<n>`);
//!   a relay that refuses, fails or stays silent is paged as above;
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
use crate::reconcile::{IDS_PER_REQ, Known, Reconciliation, Step};
use crate::relay::PubkeySet;
use crate::relay::{NEGENTROPY_NO, NEGENTROPY_YES, RelayOptions, RelayStatus, Shared, handle_event};
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
/// A reconciliation the relay has not answered for this long is given up (the pass pages).
const NEG_TIMEOUT: Duration = Duration::from_secs(15);

/// How the pass in flight reads the relay.
#[derive(Debug)]
enum Method {
    /// Pages over the time range ([`Paging`]).
    Req,
    /// A NIP-77 reconciliation is in flight.
    Negentropy {
        subscription: String,
        reconciliation: Reconciliation,
    },
    /// Reconciled: fetching the missing ids.
    Fetch,
}

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
            _ = session.neg_due(), if session.neg_deadline.is_some() => session.on_neg_timeout().await?,
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
    /// Events of the main kinds this connection received, for reconciliation.
    known: Known,
    method: Method,
    /// Ids a reconciliation found missing and not yet asked for; how many were asked for.
    to_fetch: Vec<String>,
    fetched: u64,
    /// This connection's relay refused reconciliation: the rest of its passes page.
    neg_refused: bool,
    /// When an unanswered reconciliation is given up.
    neg_deadline: Option<tokio::time::Instant>,
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
        let mut kinds = shared.validator.kinds.subscription_kinds();
        // Sorted, so an event's kind is found by binary search.
        kinds.sort_unstable();
        kinds.dedup();
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
            known: Known::default(),
            method: Method::Req,
            to_fetch: Vec::new(),
            fetched: 0,
            neg_refused: false,
            neg_deadline: None,
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

    async fn neg_due(&self) {
        if let Some(at) = self.neg_deadline {
            tokio::time::sleep_until(at).await;
        }
    }

    async fn on_neg_timeout(&mut self) -> anyhow::Result<Flow> {
        self.neg_failed("no answer to the reconciliation").await?;
        Ok(Flow::Continue(()))
    }

    /// Starts the next pass: the settle passes read the whole range again, catch-ups only the
    /// recent part. Both reconcile where the relay supports NIP-77.
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
        self.fetched = 0;
        if !self.open_reconciliation(from, until).await? {
            self.method = Method::Req;
            self.send_page().await?;
        }
        Ok(Flow::Continue(()))
    }

    /// Opens a NIP-77 reconciliation of `[since, until]`, unless this connection's relay refused
    /// one or the connection's memory of events overflowed. Returns whether it did.
    async fn open_reconciliation(&mut self, since: u64, until: u64) -> anyhow::Result<bool> {
        if self.neg_refused || !self.known.usable() {
            return Ok(false);
        }
        let (reconciliation, first) = match Reconciliation::open(&self.known, since, until) {
            Ok(v) => v,
            Err(err) => {
                debug!(relay = %self.relay, error = %err, "cannot build a reconciliation; paging");
                return Ok(false);
            }
        };
        let subscription = format!("{}-neg-{}", self.pass_label, self.passes);
        let filter = Filter {
            kinds: self.kinds.clone(),
            since: Some(since),
            until: Some(until),
            ..Default::default()
        };
        self.pace.until_ready().await;
        self.tx
            .send(Message::text(nip01::neg_open(&subscription, &filter, &first)))
            .await?;
        self.method = Method::Negentropy {
            subscription,
            reconciliation,
        };
        self.neg_deadline = Some(tokio::time::Instant::now() + NEG_TIMEOUT);
        self.publish_paging();
        Ok(true)
    }

    /// The relay's next reconciliation message: answer it, or fetch what it showed missing.
    async fn on_neg_msg(&mut self, subscription: &str, message: &str) -> anyhow::Result<()> {
        let step = match &mut self.method {
            Method::Negentropy {
                subscription: ours,
                reconciliation,
            } if ours == subscription => reconciliation.on_message(message),
            _ => return Ok(()),
        };
        match step {
            Ok(Step::Continue(next)) => {
                self.neg_deadline = Some(tokio::time::Instant::now() + NEG_TIMEOUT);
                self.tx
                    .send(Message::text(nip01::neg_msg(subscription, &next)))
                    .await?;
            }
            Ok(Step::Done(need)) => {
                self.tx
                    .send(Message::text(nip01::neg_close(subscription)))
                    .await?;
                self.status.negentropy.store(NEGENTROPY_YES, Ordering::Relaxed);
                self.neg_deadline = None;
                debug!(relay = %self.relay, missing = need.len(), "reconciled");
                self.to_fetch = need;
                self.method = Method::Fetch;
                self.fetch_next().await?;
            }
            Err(err) => self.neg_failed(&format!("malformed NEG-MSG: {err}")).await?,
        }
        Ok(())
    }

    /// The reconciliation failed (`NEG-ERR`, a closed or silent exchange, a malformed answer):
    /// this connection pages from now on, starting with the pass in flight.
    async fn neg_failed(&mut self, reason: &str) -> anyhow::Result<()> {
        let Method::Negentropy { subscription, .. } = std::mem::replace(&mut self.method, Method::Req) else {
            return Ok(());
        };
        self.neg_deadline = None;
        self.neg_refused = true;
        self.status.negentropy.store(NEGENTROPY_NO, Ordering::Relaxed);
        counter!(m::NEGENTROPY_FAILURES, "relay" => self.relay.to_string()).increment(1);
        info!(relay = %self.relay, reason = %dvmdash_core::nip90::truncate(reason, 200),
            "relay does not reconcile (NIP-77); paging instead");
        self.tx
            .send(Message::text(nip01::neg_close(&subscription)))
            .await?;
        self.send_page().await
    }

    /// Asks for the next chunk of missing ids, or ends the pass when none are left.
    async fn fetch_next(&mut self) -> anyhow::Result<()> {
        if self.to_fetch.is_empty() {
            self.end_pass();
            return Ok(());
        }
        let n = self.to_fetch.len().min(IDS_PER_REQ);
        let ids: Vec<String> = self.to_fetch.drain(..n).collect();
        self.fetched += ids.len() as u64;
        self.page_subscription = format!("{}-ids-{}", self.pass_label, self.fetched);
        let subscription = self.page_subscription.clone();
        self.send_req(
            &subscription,
            &[Filter {
                ids,
                ..Default::default()
            }],
        )
        .await?;
        self.publish_paging();
        Ok(())
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
            }) => self.on_closed(&subscription, &message).await?,
            Ok(RelayMessage::Notice { message }) => {
                self.on_notice(&message);
                // A relay that does not know NEG-OPEN usually says so in a notice.
                if matches!(self.method, Method::Negentropy { .. }) {
                    self.neg_failed(&format!("notice: {message}")).await?;
                }
            }
            Ok(RelayMessage::NegMsg {
                subscription,
                message,
            }) => self.on_neg_msg(&subscription, &message).await?,
            Ok(RelayMessage::NegErr { subscription, reason }) => {
                if matches!(&self.method, Method::Negentropy { subscription: ours, .. } if *ours == subscription)
                {
                    self.neg_failed(&format!("NEG-ERR: {reason}")).await?;
                }
            }
            Ok(RelayMessage::Ok { .. } | RelayMessage::Auth | RelayMessage::Other { .. }) => {}
            Err(err) => {
                debug!(relay = %self.relay, error = %err, "malformed relay message");
                self.reject_message();
            }
        }
        Ok(Flow::Continue(()))
    }

    /// Checks and queues the event; remembers it for reconciliation, and tells the paging about
    /// it when it belongs to the page in flight. Only valid events count for either.
    async fn on_event(&mut self, subscription: &str, event: &str) -> anyhow::Result<()> {
        let Some((created_at, id, kind)) = handle_event(self.relay, self.shared, self.status, event).await?
        else {
            return Ok(());
        };
        if self.kinds.binary_search(&kind).is_ok() {
            self.known.insert(created_at, id, self.since);
        }
        if subscription == self.page_subscription && matches!(self.method, Method::Req) {
            self.paging.on_event(created_at);
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
        if matches!(self.method, Method::Fetch) {
            self.fetch_next().await
        } else if self.paging.on_end() {
            self.send_page().await
        } else {
            self.end_pass();
            Ok(())
        }
    }

    /// The relay ended a subscription: without `live` the connection is useless; an ended page
    /// ends its pass (the next pass reads the range again).
    async fn on_closed(&mut self, subscription: &str, message: &str) -> anyhow::Result<()> {
        let in_flight = subscription == LIVE
            || subscription == self.page_subscription
            || matches!(&self.method, Method::Negentropy { subscription: ours, .. } if ours == subscription);
        if !in_flight {
            // A subscription already done (relays close a REQ by ids once all are served).
            debug!(relay = %self.relay, subscription, message, "relay closed a finished subscription");
            return Ok(());
        }
        counter!(m::NOTICES, "relay" => self.relay.to_string()).increment(1);
        warn!(relay = %self.relay, subscription, message, "relay closed a subscription");
        if subscription == LIVE {
            anyhow::bail!("relay closed the live subscription: {message}");
        }
        if matches!(&self.method, Method::Negentropy { .. }) {
            return self.neg_failed(&format!("CLOSED: {message}")).await;
        }
        self.page_subscription.clear();
        if matches!(self.method, Method::Fetch) {
            // Refused to serve ids: this pass reads its range by pages instead, so nothing the
            // reconciliation found missing is skipped.
            self.to_fetch.clear();
            self.method = Method::Req;
            return self.send_page().await;
        }
        self.end_pass();
        Ok(())
    }

    fn end_pass(&mut self) {
        if self.passes > 0 {
            let method = self.method_name();
            self.status.count_pass(method);
            counter!(m::PASSES, "relay" => self.relay.to_string(), "method" => method).increment(1);
        }
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

    fn method_name(&self) -> &'static str {
        match self.method {
            Method::Req => "req",
            Method::Negentropy { .. } | Method::Fetch => "negentropy",
        }
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
            method: self.method_name().to_owned(),
            fetched: self.fetched,
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

    use dvmdash_core::validate::Keys;
    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::*;
    use crate::relay::shared_for_tests as shared;

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
        // This relay does not reconcile (NIP-77): every pass pages.
        s.neg_refused = true;
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

    /// Answers every page with EOSE until the pass ends.
    async fn finish_pages(s: &mut Session<'_, Vec<Message>>) {
        for _ in 0..20 {
            if s.pass_pending() {
                return;
            }
            let page = s.page_subscription.clone();
            assert!(
                s.on_frame(text(serde_json::json!(["EOSE", page])))
                    .await
                    .expect("eose")
                    .is_continue()
            );
            sent(&mut s.tx);
        }
        panic!("the pass never ended");
    }

    #[tokio::test]
    async fn reconciles_where_the_relay_can_and_pages_where_it_cannot() {
        use negentropy::{Id, Negentropy, NegentropyStorageVector};
        let (sink, mut queued) = mpsc::channel(100);
        let shared = shared(sink);
        let status = RelayStatus::default();
        let relay: Arc<str> = Arc::from("wss://relay.test");
        let mut s = Session::new(&relay, &shared, &status, Vec::new());
        s.subscribe().await.expect("subscribe");
        sent(&mut s.tx);
        let keys = Keys::from_seed(b"negentropy session");
        let now = now_secs();
        let events: Vec<_> = (0..3)
            .map(|i| keys.sign(now - 600 + i, 5300, vec![], String::new()))
            .collect();
        // The connection receives the first; the relay holds all three.
        let frame = |sub: &str, e: &dvmdash_core::Event| {
            Some(Ok(Message::text(format!(
                "[\"EVENT\",\"{sub}\",{}]",
                e.to_json()
            ))))
        };
        assert!(
            s.on_frame(frame("live", &events[0]))
                .await
                .expect("event")
                .is_continue()
        );
        finish_pages(&mut s).await;
        assert!(queued.try_recv().is_ok());

        // The settle pass opens a reconciliation over its range instead of paging.
        assert!(s.on_pass_due().await.expect("pass").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0][0], "NEG-OPEN");
        let sub = frames[0][1].as_str().unwrap().to_owned();
        let (since, until) = (
            frames[0][2]["since"].as_u64().unwrap(),
            frames[0][2]["until"].as_u64().unwrap(),
        );
        let mut storage = NegentropyStorageVector::new();
        for e in &events {
            let id: [u8; 32] = hex::decode(&e.id).unwrap().try_into().unwrap();
            assert!((since..=until).contains(&e.created_at));
            storage.insert(e.created_at, Id::from_byte_array(id)).unwrap();
        }
        storage.seal().unwrap();
        let mut relay_side = Negentropy::owned(storage, 0).unwrap();
        let mut message = frames[0][3].as_str().unwrap().to_owned();
        let ids_req = loop {
            let answer = relay_side.reconcile(&hex::decode(&message).unwrap()).unwrap();
            assert!(
                s.on_frame(text(serde_json::json!(["NEG-MSG", sub, hex::encode(answer)])))
                    .await
                    .expect("neg-msg")
                    .is_continue()
            );
            let frames = sent(&mut s.tx);
            match frames[0][0].as_str() {
                Some("NEG-MSG") => message = frames[0][2].as_str().unwrap().to_owned(),
                Some("NEG-CLOSE") => break frames[1].clone(),
                other => panic!("unexpected {other:?}: {frames:?}"),
            }
        };
        // Only the two it lacks are fetched, by id.
        assert_eq!(ids_req[0], "REQ");
        let mut asked: Vec<&str> = ids_req[2]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        asked.sort_unstable();
        let mut want = vec![events[1].id.as_str(), events[2].id.as_str()];
        want.sort_unstable();
        assert_eq!(asked, want);
        let ids_sub = ids_req[1].as_str().unwrap().to_owned();
        for e in &events[1..] {
            assert!(s.on_frame(frame(&ids_sub, e)).await.expect("event").is_continue());
        }
        assert!(
            s.on_frame(text(serde_json::json!(["EOSE", ids_sub])))
                .await
                .expect("eose")
                .is_continue()
        );
        assert!(s.pass_pending(), "the pass ended");
        assert_eq!(sent(&mut s.tx), vec![serde_json::json!(["CLOSE", ids_sub])]);
        // The relay then closes the ids subscription it served in full: nothing changes.
        assert!(
            s.on_frame(text(serde_json::json!(["CLOSED", ids_sub, ""])))
                .await
                .expect("closed")
                .is_continue()
        );
        let after = sent(&mut s.tx);
        assert!(after.is_empty() && s.pass_pending(), "{after:?}");
        assert_eq!(
            queued.try_recv().map(|a| hex::encode(a.id)).ok().as_deref(),
            Some(events[1].id.as_str())
        );
        assert_eq!(status.negentropy_words(), "supported");
        assert_eq!(
            status.passes_by_method.lock().unwrap().get("negentropy"),
            Some(&1)
        );
        let paging = status.paging.lock().unwrap().clone().unwrap();
        assert_eq!((paging.method.as_str(), paging.fetched), ("negentropy", 2));

        // The next pass: the relay refuses (NEG-ERR), so the pass pages, and so do later ones.
        sent(&mut s.tx);
        assert!(s.on_pass_due().await.expect("pass").is_continue());
        let frames = sent(&mut s.tx);
        assert_eq!(frames[0][0], "NEG-OPEN");
        let sub = frames[0][1].as_str().unwrap().to_owned();
        assert!(
            s.on_frame(text(serde_json::json!(["NEG-ERR", "someone-else", "x"])))
                .await
                .expect("neg-err")
                .is_continue()
        );
        assert!(
            sent(&mut s.tx).is_empty(),
            "another subscription's error changes nothing"
        );
        assert!(
            s.on_frame(text(serde_json::json!([
                "NEG-ERR",
                sub,
                "blocked: not supported"
            ])))
            .await
            .expect("neg-err")
            .is_continue()
        );
        let frames = sent(&mut s.tx);
        assert_eq!(frames[0], serde_json::json!(["NEG-CLOSE", sub]));
        assert_eq!(frames[1][0], "REQ");
        assert!(
            frames[1][1].as_str().unwrap().starts_with("settle-"),
            "{frames:?}"
        );
        assert_eq!(status.negentropy_words(), "unsupported");
        finish_pages(&mut s).await;
        assert_eq!(status.passes_by_method.lock().unwrap().get("req"), Some(&1));
        assert!(s.on_pass_due().await.expect("pass").is_continue());
        assert_eq!(sent(&mut s.tx)[0][0], "REQ", "no second try on this connection");
    }

    #[tokio::test]
    async fn a_silent_or_garbled_reconciliation_falls_back_to_paging() {
        for garbled in [true, false] {
            let (sink, _queued) = mpsc::channel(100);
            let shared = shared(sink);
            let status = RelayStatus::default();
            let relay: Arc<str> = Arc::from("wss://relay.test");
            let mut s = Session::new(&relay, &shared, &status, Vec::new());
            s.subscribe().await.expect("subscribe");
            finish_pages(&mut s).await;
            sent(&mut s.tx);
            assert!(s.on_pass_due().await.expect("pass").is_continue());
            let frames = sent(&mut s.tx);
            let sub = frames[0][1].as_str().unwrap().to_owned();
            assert!(s.neg_deadline.is_some());
            if garbled {
                assert!(
                    s.on_frame(text(serde_json::json!(["NEG-MSG", sub, "not hex at all"])))
                        .await
                        .expect("garbled")
                        .is_continue()
                );
            } else {
                assert!(s.on_neg_timeout().await.expect("timeout").is_continue());
            }
            let frames = sent(&mut s.tx);
            assert_eq!(frames[0][0], "NEG-CLOSE", "{frames:?}");
            assert_eq!(frames[1][0], "REQ", "{frames:?}");
            assert!(s.neg_deadline.is_none());
            assert_eq!(status.negentropy_words(), "unsupported");
        }
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
