//! dvmdash-collector: watches Nostr relays for DVM traffic and appends every new, verified event to
//! the Redis stream.
//!
//! - [`nip01`] - the relay protocol (messages we send and parse)
//! - [`relay`] - one relay: reconnect with backoff, verify each event before it is queued
//! - [`session`] - one connection as a state machine: subscriptions, passes over stored events, timers
//! - [`paging`] - one pass over a time range, complete whatever the relay's cap and reading of `until`
//! - [`reconcile`] - NIP-77 reconciliation for the passes after the first backfill, where a relay supports it
//! - [`sink`] - batched, idempotent appends to the stream (seen-marker and append in one script, `core::stream`)
//! - [`metrics`] - metric names
//!
//! Flow: relay frame -> [`relay::watch`] (precheck, in-memory dedup, signature) -> channel ->
//! [`sink::run`] (Redis dedup + append, `EventStreams::append_new`) -> `dvmdash:events` (or its
//! shards, `dvmdash:{s<i>}:events`).

pub mod membership;
pub mod metrics;
pub mod nip01;
pub mod paging;
pub mod reconcile;
pub mod relay;
pub mod session;
pub mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use dvmdash_core::config::{EventArgs, RedisArgs};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use relay::{Accepted, RelayOptions, RelayStatus};
pub use sink::SinkOptions;

/// Collector flags. Which relays to watch comes from the coordinator (see `membership`).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "collector_config")]
pub struct Config {
    /// This collector's id in the coordinator's registry; random when empty.
    #[arg(long = "collector-id", env = "DVMDASH_COLLECTOR_ID", default_value = "")]
    pub collector_id: String,
    /// Heartbeat period in milliseconds (the coordinator's timeout must be several times longer).
    #[arg(long, env = "DVMDASH_COLLECTOR_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// On first contact with a relay, fetch stored events this many seconds back.
    #[arg(long, env = "DVMDASH_COLLECTOR_LOOKBACK_SECS", default_value_t = 3600)]
    pub lookback_secs: u64,
    /// On reconnect, resume this many seconds before the newest event already seen there.
    #[arg(long, env = "DVMDASH_COLLECTOR_RESUME_OVERLAP_SECS", default_value_t = 600)]
    pub resume_overlap_secs: u64,
    /// After the first backfill of a connection, read the whole range again after this many
    /// milliseconds and after ten times as many: relays store some events after acknowledging them.
    #[arg(long, env = "DVMDASH_COLLECTOR_SETTLE_MS", default_value_t = 3000)]
    pub settle_ms: u64,
    /// Every this many seconds, re-read the last few minutes from each relay (0: never). Catches
    /// events a relay stored but did not push live (dropped under load, or stored late).
    #[arg(long, env = "DVMDASH_COLLECTOR_CATCHUP_SECS", default_value_t = 60)]
    pub catchup_secs: u64,
    /// Approximate cap of the Redis stream length (MAXLEN ~).
    #[arg(long, env = "DVMDASH_STREAM_MAXLEN", default_value_t = dvmdash_core::stream::STREAM_MAXLEN)]
    pub stream_maxlen: u64,
    /// How long an event id stays marked as seen in Redis.
    #[arg(long, env = "DVMDASH_SEEN_TTL_SECS", default_value_t = dvmdash_core::stream::SEEN_TTL_SECS)]
    pub seen_ttl_secs: u64,
    /// Event ids remembered in memory to drop duplicates before any cryptography.
    #[arg(long, env = "DVMDASH_COLLECTOR_SEEN_CACHE", default_value_t = 200_000)]
    pub seen_cache: usize,
}

impl Default for Config {
    fn default() -> Self {
        dvmdash_core::config::clap_defaults()
    }
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.stream_maxlen >= 10_000,
            "stream maxlen must be at least 10000"
        );
        anyhow::ensure!(self.seen_cache > 0, "seen cache must hold at least one id");
        anyhow::ensure!(self.heartbeat_ms >= 50, "heartbeat must be at least 50 ms");
        anyhow::ensure!(
            (1..=600_000).contains(&self.settle_ms),
            "settle delay must be between 1 ms and 10 minutes"
        );
        anyhow::ensure!(
            self.collector_id.len() <= 128
                && self
                    .collector_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "collector id may only hold letters, digits, '-', '_' and '.'"
        );
        Ok(())
    }

    /// The configured id, or a fresh random one.
    pub fn id(&self) -> String {
        if self.collector_id.is_empty() {
            format!("collector-{:016x}", rand::random::<u64>())
        } else {
            self.collector_id.clone()
        }
    }
}

/// Live view of the relays a collector watches.
pub type RelayStatuses = Arc<std::sync::Mutex<BTreeMap<String, Arc<RelayStatus>>>>;

/// Runs a collector until `shutdown`: registers with the coordinator and watches the relays it
/// assigns, following reassignments as they come.
pub async fn run(
    config: Config,
    events: EventArgs,
    redis: RedisArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate().context("invalid collector configuration")?;
    let Some(mut conn) = redis.connect(&shutdown).await? else {
        return Ok(());
    };
    // Refuse a differing stream split before registering, so a misconfigured collector is never
    // assigned relays it would collect into streams no ingester reads.
    redis
        .event_streams(&mut conn)
        .await
        .context("cannot write to the events stream")?;
    let id = config.id();
    let statuses = RelayStatuses::default();
    let names = redis.names();
    let points = membership::load_resume_points(&mut conn, &names, &statuses)
        .await
        .context("failed to read resume points")?;
    info!(collector = %id, resume_points = points, "collector registering");
    let (tx, rx) = watch::channel(Vec::new());
    let beat = Duration::from_millis(config.heartbeat_ms);
    let member_stop = CancellationToken::new();
    let member = tokio::spawn(membership::run(
        id,
        conn,
        names,
        statuses.clone(),
        tx,
        beat,
        member_stop.clone(),
    ));
    let result = run_with_relays(config, events, redis, rx, statuses, shutdown).await;
    // Deregister only after the relays stopped, so the final resume points are published.
    member_stop.cancel();
    let _ = member.await;
    result
}

/// Records when this deployment first watched the live-only kinds (kept if already set): they are
/// never back-filled, so their counts are "seen live since" then. A failure only leaves it unset.
async fn mark_live_watch(
    conn: &mut redis::aio::ConnectionManager,
    names: &dvmdash_core::redis_keys::RedisNames,
    kinds: &dvmdash_core::KindFilter,
) {
    if kinds.collected(dvmdash_core::kinds::Collect::Live).is_empty() {
        return;
    }
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg(names.live_watch_since())
        .arg(dvmdash_core::telemetry::now_secs())
        .arg("NX")
        .query_async(conn)
        .await;
    if let Err(err) = set {
        warn!(error = %err, "could not record when live-only kinds were first watched");
    }
}

/// Runs a collector whose relay set can change while it runs (`relays` sends the desired set).
pub async fn run_with_relays(
    config: Config,
    events: EventArgs,
    redis: RedisArgs,
    relays: watch::Receiver<Vec<String>>,
    statuses: RelayStatuses,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate().context("invalid collector configuration")?;
    events.validate().context("invalid event rules")?;
    let mut relays_rx = relays;
    crate::metrics::describe();
    let Some(mut conn) = redis.connect(&shutdown).await? else {
        return Ok(());
    };
    let streams = redis
        .event_streams(&mut conn)
        .await
        .context("cannot write to the events stream")?;
    let mut resume_conn = conn.clone();
    let names = redis.names();

    let (sink_tx, sink_rx) = mpsc::channel(10_000);
    let sink_opts = SinkOptions {
        stream_maxlen: config.stream_maxlen,
        seen_ttl_secs: config.seen_ttl_secs,
        ..SinkOptions::default()
    };
    let writer = tokio::spawn(sink::run(sink_rx, conn, streams, sink_opts, shutdown.clone()));

    let shared = Arc::new(shared_state(&config, &events, sink_tx));
    mark_live_watch(&mut resume_conn, &names, &shared.validator.kinds).await;
    let mut tasks = RelayTasks::new(shared.clone(), statuses);
    loop {
        let desired: Vec<String> = relays_rx.borrow_and_update().clone();
        tasks.apply(desired, &mut resume_conn, &names).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = relays_rx.changed() => if changed.is_err() { break },
        }
    }

    // Intake stops first; the writer then drains what was already verified and ends when the
    // queue closes, which needs every sender gone: the relay tasks' shared state included (held
    // by `tasks`, so it is consumed here). Keeping it alive left the writer waiting until the
    // process's stop timeout aborted it, with accepted events still queued.
    tasks.stop_all().await;
    drop(shared);
    writer.await.context("stream writer panicked")?;
    info!("collector stopped");
    Ok(())
}

/// What every relay task of this collector shares: the event rules, the in-memory dedup cache, the
/// queue to the stream writer and the connection tuning.
fn shared_state(config: &Config, events: &EventArgs, sink: mpsc::Sender<Accepted>) -> relay::Shared {
    relay::Shared {
        validator: events.validator(),
        seen: quick_cache::sync::Cache::new(config.seen_cache),
        // A few relays deliver most events: room for three deliveries per remembered id.
        sighted: quick_cache::sync::Cache::new(config.seen_cache.saturating_mul(3)),
        sink,
        dvms: relay::PubkeySet::default(),
        customers: relay::PubkeySet::default(),
        options: RelayOptions {
            lookback_secs: config.lookback_secs,
            resume_overlap_secs: config.resume_overlap_secs,
            settle_delay: Duration::from_millis(config.settle_ms),
            catchup_interval: (config.catchup_secs > 0).then(|| Duration::from_secs(config.catchup_secs)),
            max_message_bytes: (events.max_event_bytes * 2).max(16 * 1024 * 1024),
            ..RelayOptions::default()
        },
    }
}

/// The running relay tasks, one per assigned relay.
struct RelayTasks {
    shared: Arc<relay::Shared>,
    statuses: RelayStatuses,
    stop: CancellationToken,
    running: BTreeMap<String, (CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl RelayTasks {
    fn new(shared: Arc<relay::Shared>, statuses: RelayStatuses) -> Self {
        RelayTasks {
            shared,
            statuses,
            stop: CancellationToken::new(),
            running: BTreeMap::new(),
        }
    }

    /// Stops the tasks of relays no longer wanted and starts the new ones.
    async fn apply(
        &mut self,
        desired: Vec<String>,
        conn: &mut redis::aio::ConnectionManager,
        names: &dvmdash_core::redis_keys::RedisNames,
    ) {
        let statuses = &self.statuses;
        self.running.retain(|url, (stop, _)| {
            let keep = desired.contains(url);
            if !keep {
                info!(relay = %url, "relay unassigned");
                stop.cancel();
                if let Ok(s) = statuses.lock()
                    && let Some(status) = s.get(url)
                {
                    status.assigned.store(false, Ordering::Relaxed);
                }
            }
            keep
        });
        // A relay taken over from another collector resumes where that collector got to.
        if desired.iter().any(|u| !self.running.contains_key(u))
            && let Err(err) = membership::load_resume_points(conn, names, &self.statuses).await
        {
            tracing::warn!(error = %err, "reading resume points failed; new relays start from the look-back");
        }
        for url in desired {
            if !self.running.contains_key(&url) {
                self.start(url);
            }
        }
        info!(relays = self.running.len(), "collector relay set updated");
    }

    fn start(&mut self, url: String) {
        let status = self
            .statuses
            .lock()
            .map(|mut s| s.entry(url.clone()).or_default().clone())
            .unwrap_or_default();
        status.assigned.store(true, Ordering::Relaxed);
        let stop = self.stop.child_token();
        let handle = tokio::spawn(relay::watch(
            url.clone(),
            self.shared.clone(),
            status,
            stop.clone(),
        ));
        self.running.insert(url, (stop, handle));
    }

    /// Stops every task, aborting those that do not finish within 5 s.
    async fn stop_all(mut self) {
        self.stop.cancel();
        for (url, (_, mut handle)) in std::mem::take(&mut self.running) {
            if tokio::time::timeout(Duration::from_secs(5), &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(relay = %url, "relay task did not stop in time, aborting it");
                handle.abort();
                let _ = handle.await;
            }
        }
    }
}
