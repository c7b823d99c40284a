//! dvmdash-ingester: moves events from the Redis stream into ClickHouse, at least once, idempotently.
//!
//! One loop per shard of the stream (`DVMDASH_STREAM_SHARDS`, [`dvmdash_core::stream_shards`]) runs
//! in every ingester process, each a consumer of its shard's group under the same consumer name.
//!
//! - [`batch`] - entries -> rows, setting aside poison entries
//! - [`gate`] - the exactly-once check against every id ever stored, under a Redis lock per shard
//! - [`recovery`] - finishing an insert that failed part-way, from what ClickHouse committed
//! - [`metrics`] - metric names
//!
//! The invariant: an entry is acknowledged only after the batch holding it was inserted (or the entry
//! was copied to the dead-letter stream). A crash at any point leaves the batch pending; it is read
//! again on restart (own pending entries first) or claimed by another ingester, and re-inserted with
//! the same deduplication token. An insert that fails in this ingester is not blindly retried: what
//! it committed is read back from ClickHouse and only the rest is written ([`recovery`]).

pub mod batch;
pub mod gate;
pub mod metrics;
pub mod recovery;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::metrics::{counter, gauge, histogram};
use anyhow::Context as _;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs};
use dvmdash_core::job_ledger;
use dvmdash_core::redis_keys::RedisNames;
use dvmdash_core::store::{EVENT_RELAYS, EVENTS_RAW, EventRelayRow, RawEventRow};
use dvmdash_core::telemetry::{now_millis, now_secs};
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::batch::Prepared;
use crate::metrics as m;
use dvmdash_core::stream::{Entry, EventStream};
use dvmdash_core::stream_shards::EventStreams;

/// Ingester flags.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "ingester_config")]
pub struct Config {
    /// Most stream entries per ClickHouse insert.
    #[arg(
        long = "batch-size",
        env = "DVMDASH_INGESTER_BATCH_SIZE",
        default_value_t = 10_000
    )]
    pub batch_size: usize,
    /// How long to wait for a batch to fill before inserting what there is, in milliseconds.
    #[arg(
        long = "batch-wait-ms",
        env = "DVMDASH_INGESTER_BATCH_WAIT_MS",
        default_value_t = 500
    )]
    pub batch_wait_ms: u64,
    /// This ingester's name in the consumer group; must be stable across restarts so its pending
    /// entries are found again, and unique among running ingesters.
    #[arg(long = "consumer", env = "DVMDASH_INGESTER_CONSUMER", default_value_t = default_consumer())]
    pub consumer: String,
    /// Entries pending this long with another consumer are taken over (it is presumed dead).
    #[arg(
        long = "claim-idle-ms",
        env = "DVMDASH_INGESTER_CLAIM_IDLE_MS",
        default_value_t = 60_000
    )]
    pub claim_idle_ms: u64,
    /// How often the job finalizer links the jobs new events touched, in milliseconds (one
    /// finalizer per deployment runs, under a lease); 0 turns it off in this process.
    #[arg(
        long = "jobs-interval-ms",
        env = "DVMDASH_JOBS_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub jobs_interval_ms: u64,
}

fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into());
    format!("ingester-{host}")
}

impl Default for Config {
    fn default() -> Self {
        dvmdash_core::config::clap_defaults()
    }
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=1_000_000).contains(&self.batch_size),
            "batch size must be 1..=1000000"
        );
        anyhow::ensure!(
            !self.consumer.trim().is_empty(),
            "consumer name must not be empty"
        );
        anyhow::ensure!(
            self.jobs_interval_ms <= 3_600_000,
            "the job finalizer's interval must be at most an hour (0 turns it off)"
        );
        Ok(())
    }
}

/// How long a gate or repair lock lives without renewal (its holder renews it every third of this).
const LOCK_TTL: Duration = Duration::from_secs(10);

struct Ingester {
    /// Unique per shard loop of a process: a restarted ingester must not inherit the lock of its
    /// killed predecessor, whose insert may still be finishing (it waits for the lock to expire
    /// instead), and two loops of one process must not take each other's lock for their own.
    lock_owner: String,
    config: Config,
    names: RedisNames,
    stream: EventStream,
    /// How many shards the stream has (recorded again if Redis lost its data).
    shard_count: u16,
    redis: ConnectionManager,
    clickhouse: clickhouse::Client,
    events: EventArgs,
    /// The views on events_raw, read when an interrupted insert is first completed.
    targets: Option<recovery::Targets>,
    /// The newest `created_at` (not in the future) this process stored, over every shard loop:
    /// ingestion lag.
    newest_created: Arc<AtomicU64>,
    /// Request hours this process stored lately, shared by the shard loops (a request and its
    /// answers usually sit on different shards).
    recent_requests: Arc<std::sync::Mutex<job_ledger::RecentRequests>>,
}

/// Runs until `shutdown`. A batch being inserted is finished (inserted and acknowledged) first; a
/// shard loop still waiting for a lock leaves its batch pending, to be read again at the
/// next start (or claimed by another ingester).
pub async fn run(
    config: Config,
    events: EventArgs,
    redis: RedisArgs,
    clickhouse: ClickHouseArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate().context("invalid ingester configuration")?;
    events.validate().context("invalid event rules")?;
    clickhouse.validate().map_err(anyhow::Error::msg)?;
    crate::metrics::describe();
    job_ledger::metrics::describe();
    let client = redis.client()?;
    let Some(mut conn) = redis.connect(&shutdown).await? else {
        return Ok(());
    };
    let streams = redis
        .event_streams(&mut conn)
        .await
        .context("cannot read the events stream")?;
    streams
        .ensure_groups(&mut conn)
        .await
        .context("failed to create the consumer group")?;
    let (names, clickhouse) = (redis.names(), clickhouse.client());
    let newest_created = Arc::new(AtomicU64::new(0));
    let recent_requests = Arc::default();
    let finalizer = (config.jobs_interval_ms > 0).then(|| {
        let finalizer = job_ledger::Finalizer::new(clickhouse.clone(), conn.clone(), names.clone());
        let owner = format!("{}-{:016x}", config.consumer, rand::random::<u64>());
        tokio::spawn(job_ledger::run(
            finalizer,
            owner,
            Duration::from_millis(config.jobs_interval_ms),
            shutdown.clone(),
        ))
    });
    let mut loops = tokio::task::JoinSet::new();
    for stream in streams.all() {
        let ing = Ingester {
            lock_owner: format!("{}-{:016x}", config.consumer, rand::random::<u64>()),
            config: config.clone(),
            names: names.clone(),
            stream: stream.clone(),
            shard_count: streams.count(),
            redis: conn.clone(),
            clickhouse: clickhouse.clone(),
            events: events.clone(),
            targets: None,
            newest_created: newest_created.clone(),
            recent_requests: Arc::clone(&recent_requests),
        };
        let (client, shutdown) = (client.clone(), shutdown.clone());
        // A task per shard, so batches of different shards are prepared on different cores.
        loops.spawn(async move {
            info!(consumer = %ing.config.consumer, stream = %ing.stream.key(), "ingester started");
            let mut ing = ing;
            ing.run_loop(&client, &shutdown).await;
            info!(consumer = %ing.config.consumer, stream = %ing.stream.key(), "ingester stopped");
        });
    }
    let mut failed = None;
    while let Some(done) = loops.join_next().await {
        if let Err(err) = done {
            // A panicking loop must not leave its shard unread while the process looks alive:
            // stop the others too, letting them finish their batches, then fail.
            shutdown.cancel();
            failed.get_or_insert(err);
        }
    }
    if let Some(finalizer) = finalizer {
        shutdown.cancel();
        let _ = finalizer.await;
    }
    match failed {
        Some(err) => anyhow::bail!("an ingester loop failed: {err}"),
        None => Ok(()),
    }
}

/// Where the main loop stands between batches.
struct LoopState {
    /// The connection that blocks on the stream (its own, so a blocking read never delays the
    /// other commands); `None` after it failed.
    reader: Option<redis::aio::MultiplexedConnection>,
    /// Read this consumer's own pending entries (left by a restart or a failed batch) before
    /// anything new.
    own_pending: bool,
    last_claim: Instant,
    last_info: Instant,
    failures: u32,
}

impl Ingester {
    /// Reads batches and stores them until `shutdown`, taking over entries dead consumers left.
    async fn run_loop(&mut self, client: &redis::Client, shutdown: &CancellationToken) {
        let mut st = LoopState {
            reader: None,
            own_pending: true,
            last_claim: Instant::now(),
            last_info: Instant::now() - Duration::from_secs(60),
            failures: 0,
        };
        while !shutdown.is_cancelled() {
            if st.last_info.elapsed() > Duration::from_secs(5) {
                self.report_backlog().await;
                st.last_info = Instant::now();
            }
            let Some(entries) = self.next_batch(&mut st, client, shutdown).await else {
                continue;
            };
            // On shutdown the batch in hand is still finished; an error leaves it pending.
            if !entries.is_empty()
                && let Err(err) = self.process(entries, shutdown).await
            {
                warn!(error = %err, "batch left pending; retrying it");
                // Our own pending entries are read again first, so the batch is retried now
                // rather than after the claim timeout.
                st.own_pending = true;
                sleep_or_stop(shutdown, backoff(&mut st.failures)).await;
            }
            if !st.own_pending
                && st.last_claim.elapsed() > Duration::from_millis(self.config.claim_idle_ms / 2)
            {
                st.last_claim = Instant::now();
                if let Err(err) = self.claim_from_dead_consumers(shutdown).await {
                    warn!(error = %err, "claiming idle entries failed");
                }
            }
        }
    }

    /// The next batch: own pending entries first, oldest first, then new ones. `None` when there
    /// is nothing to store this round (own pending entries just ran out, or a failure was waited
    /// out with backoff).
    async fn next_batch(
        &mut self,
        st: &mut LoopState,
        client: &redis::Client,
        shutdown: &CancellationToken,
    ) -> Option<Vec<Entry>> {
        let conn = match &mut st.reader {
            Some(c) => c,
            None => match EventStream::reader(client).await {
                Ok(c) => st.reader.insert(c),
                Err(err) => {
                    warn!(error = %err, "redis unavailable for reading, retrying");
                    sleep_or_stop(shutdown, backoff(&mut st.failures)).await;
                    return None;
                }
            },
        };
        let gathered = if st.own_pending {
            let (consumer, size) = (&self.config.consumer, self.config.batch_size);
            self.stream.read(conn, consumer, "0", size, None).await
        } else {
            self.gather(conn, shutdown).await
        };
        match gathered {
            Ok(entries) if st.own_pending && entries.is_empty() => {
                st.failures = 0;
                st.own_pending = false;
                None
            }
            Ok(entries) => {
                st.failures = 0;
                Some(entries)
            }
            Err(err) if err.code() == Some("NOGROUP") => {
                // Redis lost its data (a restart without persistence, a flush): the group is gone
                // with it. Recreate it rather than loop on the error until someone restarts us.
                warn!("the consumer group is missing (Redis lost its data?); creating it again");
                let recorded = EventStreams::open(&mut self.redis, &self.names, self.shard_count).await;
                if let Err(err) = recorded {
                    warn!(error = %format!("{err:#}"), "recording the stream shard count again failed");
                }
                if let Err(err) = self.stream.ensure_group(&mut self.redis).await {
                    warn!(error = %err, "recreating the consumer group failed");
                }
                st.own_pending = false;
                sleep_or_stop(shutdown, backoff(&mut st.failures)).await;
                None
            }
            Err(err) => {
                warn!(error = %err, "stream read failed, reconnecting");
                st.reader = None;
                sleep_or_stop(shutdown, backoff(&mut st.failures)).await;
                None
            }
        }
    }
}

fn backoff(failures: &mut u32) -> Duration {
    *failures = failures.saturating_add(1);
    Duration::from_millis(100u64 << (*failures).min(6)).min(Duration::from_secs(5))
}

async fn sleep_or_stop(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

impl Ingester {
    /// Reads new entries: blocks for the first, then lingers up to the batch wait for more.
    async fn gather(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        shutdown: &CancellationToken,
    ) -> redis::RedisResult<Vec<Entry>> {
        let (size, consumer) = (self.config.batch_size, &self.config.consumer);
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Vec::new()),
            r = self.stream.read(conn, consumer, ">", size, Some(Duration::from_secs(1))) => r?,
        };
        let mut entries = first;
        if entries.is_empty() {
            return Ok(entries);
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.batch_wait_ms);
        while entries.len() < size && !shutdown.is_cancelled() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(1) {
                break;
            }
            let more = self
                .stream
                .read(conn, consumer, ">", size - entries.len(), Some(left))
                .await?;
            if more.is_empty() {
                break;
            }
            entries.extend(more);
        }
        Ok(entries)
    }

    /// Inserts one batch and acknowledges it. Entries that can never be stored (not an event, not
    /// valid) go to the dead-letter stream with their reason. A batch ClickHouse refuses is retried,
    /// never dead-lettered: its events were validated, so a refusal means a schema or server
    /// problem an operator must fix (the insert-failure alert fires), and dropping would lose data.
    async fn process(&mut self, entries: Vec<Entry>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let validator = self.events.validator();
        let t0 = Instant::now();
        let mut prepared = batch::prepare(entries, &validator, &validator.kinds, now_secs());
        // The shard's lane: its rows' rollup partitions are written by this shard alone.
        let lane = self.stream.lane();
        for row in &mut prepared.rows {
            row.lane = lane;
        }
        debug!(
            entries = prepared.ids.len(),
            prepare_ms = t0.elapsed().as_millis() as u64,
            "batch prepared"
        );
        histogram!(m::BATCH_EVENTS).record(prepared.ids.len() as f64);
        if !prepared.rows.is_empty() {
            self.insert_with_retry(&prepared, shutdown).await?;
        }
        if !prepared.sightings.is_empty() {
            self.insert_sightings_with_retry(&prepared.sightings, shutdown)
                .await?;
        }
        // After the insert (so the finalizer never links before the rows are visible) and before
        // the acknowledgement (so a crash between them redelivers the batch and records again).
        let touched = {
            let mut recent = self
                .recent_requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            job_ledger::touches(&prepared.rows, &mut recent)
        };
        job_ledger::record(
            &mut self.redis,
            &self.names,
            &touched,
            &job_ledger::answers(&prepared.rows),
        )
        .await
        .context("recording the jobs and answers this batch touched")?;
        let dead: Vec<(Entry, String)> = prepared.poison;
        if !dead.is_empty() {
            for (entry, reason) in &dead {
                warn!(entry = %entry.id, reason = %reason, "entry moved to the dead-letter stream");
            }
            self.stream.dead_letter(&mut self.redis, &dead).await?;
            counter!(m::DEAD_LETTERED).increment(dead.len() as u64);
        }
        if prepared.trimmed > 0 {
            error!(
                entries = prepared.trimmed,
                "pending entries were trimmed from the stream before ingest"
            );
            counter!(m::TRIMMED).increment(prepared.trimmed as u64);
        }
        counter!(m::DUPLICATES).increment(prepared.duplicates as u64);
        self.stream.ack(&mut self.redis, &prepared.ids).await?;
        counter!(m::BATCHES).increment(1);
        debug!(
            entries = prepared.ids.len(),
            rows = prepared.rows.len(),
            "batch stored"
        );
        Ok(())
    }

    /// Tells the api its cached answers are behind; a failure only delays freshness.
    async fn bump_data_version(&mut self) {
        let bumped: redis::RedisResult<i64> = redis::cmd("INCR")
            .arg(self.names.data_version())
            .query_async(&mut self.redis)
            .await;
        if let Err(err) = bumped {
            debug!(error = %err, "could not bump the data version");
        }
    }

    /// Records which relays delivered the batch's events. Needs no gate: rows are keyed by (event,
    /// relay) and readers count distinct pairs, so a retried batch repeats rows harmlessly.
    async fn insert_sightings_with_retry(
        &mut self,
        rows: &[EventRelayRow],
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut failures = 0u32;
        loop {
            match insert_sightings(&self.clickhouse, rows).await {
                Ok(()) => {
                    counter!(m::SIGHTINGS_INSERTED).increment(rows.len() as u64);
                    self.bump_data_version().await;
                    return Ok(());
                }
                Err(err) => {
                    counter!(m::INSERT_FAILURES).increment(1);
                    warn!(error = %err, rows = rows.len(), "inserting relay sightings failed, retrying");
                }
            }
            if shutdown.is_cancelled() {
                anyhow::bail!("shutting down with relay sightings not inserted; the batch stays pending");
            }
            sleep_or_stop(shutdown, backoff(&mut failures)).await;
        }
    }

    /// Inserts the batch's events not stored before (see [`gate`]). The shard's gate lock is held
    /// from the check to the end, so no other ingester can pass one of these ids, or write this
    /// shard's lane, meanwhile. No lock is shared with other shards: their inserts run side by
    /// side, and what a failed insert committed is read from its own lane (see [`recovery`]). The
    /// events chosen by the first successful check are reused on every retry, so a partly applied
    /// insert is completed, never duplicated.
    async fn insert_with_retry(
        &mut self,
        prepared: &Prepared,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let token = prepared.dedup_token(self.stream.key());
        let gate = self.lock(self.stream.gate_lock().to_owned(), shutdown).await?;
        let result = self.insert_gated(prepared, &token, shutdown).await;
        gate.release().await;
        result
    }

    /// Waits for the lock `key`; an error when `shutdown` fires first.
    async fn lock(&self, key: String, shutdown: &CancellationToken) -> anyhow::Result<gate::Lock> {
        let lock = gate::Lock::acquire(
            self.redis.clone(),
            key,
            self.lock_owner.clone(),
            LOCK_TTL,
            shutdown,
        )
        .await?;
        lock.context("shutting down before the batch was stored")
    }

    async fn insert_gated(
        &mut self,
        prepared: &Prepared,
        base: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut fresh: Option<Vec<&RawEventRow>> = None;
        let mut failures = 0u32;
        let mut token = base.to_owned();
        loop {
            let started = Instant::now();
            let checked = match fresh.take() {
                Some(rows) => Ok(rows),
                None => self.unstored(prepared).await,
            };
            let attempt = match checked {
                Ok(rows) => {
                    let rows = fresh.insert(rows);
                    self.insert_once(rows, base, &mut token, failures, shutdown)
                        .await?
                }
                Err(err) => Err(err),
            };
            match attempt {
                Ok(inserted) => {
                    self.record_stored(prepared, inserted, started.elapsed()).await;
                    return Ok(());
                }
                Err(err) => {
                    counter!(m::INSERT_FAILURES).increment(1);
                    warn!(error = %format!("{err:#}"), rows = prepared.rows.len(), attempt = failures + 1, "clickhouse insert failed, retrying");
                }
            }
            if shutdown.is_cancelled() {
                anyhow::bail!("shutting down while clickhouse is failing");
            }
            // Keep the backlog gauges moving while ClickHouse is down: that is when they matter.
            self.report_backlog().await;
            sleep_or_stop(shutdown, backoff(&mut failures)).await;
        }
    }

    /// The batch's rows not stored before (the exactly-once check, see [`gate`]).
    async fn unstored<'p>(&self, prepared: &'p Prepared) -> anyhow::Result<Vec<&'p RawEventRow>> {
        let started = Instant::now();
        let stored = gate::stored_ids(&self.clickhouse, &prepared.rows).await?;
        debug!(gate_ms = started.elapsed().as_millis() as u64, "gate checked");
        let rows: Vec<&RawEventRow> = prepared
            .rows
            .iter()
            .filter(|r| !stored.contains(&r.event_id))
            .collect();
        counter!(m::ALREADY_STORED).increment((prepared.rows.len() - rows.len()) as u64);
        Ok(rows)
    }

    /// One insert of the checked `rows`, and when it fails, the rest of whatever part of it
    /// landed. Returns the rows stored, or the error to retry after when nothing landed (then
    /// `token` is already the next attempt's, which no lost attempt used); fails outright only
    /// when shutting down with the batch unresolved.
    async fn insert_once(
        &mut self,
        rows: &[&RawEventRow],
        base: &str,
        token: &mut String,
        failures: u32,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<anyhow::Result<usize>> {
        if rows.is_empty() {
            return Ok(Ok(0));
        }
        let t0 = Instant::now();
        // The block numbers before an insert that then fails: what it left is found from them.
        let before = match recovery::blocks(&self.clickhouse).await {
            Ok(before) => before,
            Err(err) => return Ok(Err(anyhow::Error::from(err))),
        };
        let Err(err) = insert(&self.clickhouse, rows, token).await else {
            debug!(
                rows = rows.len(),
                insert_ms = t0.elapsed().as_millis() as u64,
                "rows inserted"
            );
            return Ok(Ok(rows.len()));
        };
        warn!(error = %format!("{err:#}"), rows = rows.len(), "clickhouse insert failed; finding out what it committed");
        if self.finish_interrupted(rows, &before, shutdown).await? {
            counter!(m::INSERT_FAILURES).increment(1);
            return Ok(Ok(rows.len()));
        }
        // Nothing landed: try again whole, under a token no lost attempt used.
        *token = format!("{base}#{}", failures + 1);
        Ok(Err(anyhow::Error::from(err)))
    }

    async fn record_stored(&mut self, prepared: &Prepared, inserted: usize, took: Duration) {
        if inserted > 0 {
            self.bump_data_version().await;
        }
        histogram!(m::INSERT_SECONDS).record(took.as_secs_f64());
        counter!(m::EVENTS_INSERTED).increment(inserted as u64);
        gauge!(m::LAST_SUCCESS).set(now_secs() as f64);
        let now = now_secs();
        if let Some(newest) = prepared
            .rows
            .iter()
            .map(|r| u64::from(r.created_at).min(now))
            .max()
        {
            let newest = self
                .newest_created
                .fetch_max(newest, Ordering::Relaxed)
                .max(newest);
            gauge!(m::NEWEST_EVENT_AGE).set(now.saturating_sub(newest) as f64);
        }
        if let Some(oldest) = prepared.rows.iter().map(|r| r.received_at).min() {
            let lag = (now_millis() as i64 - oldest).max(0) as f64 / 1000.0;
            histogram!(m::LATENCY_SECONDS).record(lag);
        }
    }

    /// The views on events_raw (read once) and the partitions written since `before`.
    async fn landed(
        &mut self,
        before: &recovery::Blocks,
        writer: recovery::Writer<'_>,
    ) -> anyhow::Result<(recovery::Targets, recovery::Partitions)> {
        let targets = match &self.targets {
            Some(t) => t.clone(),
            None => {
                let t = recovery::Targets::discover(&self.clickhouse).await?;
                self.targets = Some(t.clone());
                t
            }
        };
        let landed = recovery::committed_since(&self.clickhouse, &targets, before, None, writer).await?;
        Ok((targets, landed))
    }

    /// After an insert failed: `true` when part of it had landed and the rest is now written
    /// (see [`recovery`]), `false` when nothing landed.
    async fn finish_interrupted(
        &mut self,
        rows: &[&RawEventRow],
        before: &recovery::Blocks,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        // Wait for ClickHouse (keeping the backlog gauges moving: an outage is when they matter),
        // then read what the failed insert left.
        let writer = recovery::Writer {
            lane: self.stream.lane(),
            rows,
        };
        let mut failures = 0u32;
        let (targets, landed) = loop {
            match self.landed(before, writer).await {
                Ok(found) => break found,
                Err(err) => {
                    // Still the failed insert: ClickHouse down, or a schema this ingester cannot
                    // recover on (run `dvmdash migrate`). The insert-failure alert must see it.
                    counter!(m::INSERT_FAILURES).increment(1);
                    warn!(error = %format!("{err:#}"), "clickhouse cannot say yet what the failed insert committed")
                }
            }
            if shutdown.is_cancelled() {
                anyhow::bail!("shutting down before a failed insert was resolved");
            }
            self.report_backlog().await;
            sleep_or_stop(shutdown, backoff(&mut failures)).await;
        };
        if landed.is_empty() {
            return Ok(false);
        }
        warn!(landed = ?landed, "a failed insert was partly committed; writing the rest");
        // One scratch table serves every lane's repairs, so they take turns (rarely: a repair
        // follows a crash mid-insert).
        let lock = self.lock(self.names.repair_lock(), shutdown).await?;
        let completed = recovery::complete(&self.clickhouse, &targets, writer, landed, shutdown).await;
        lock.release().await;
        completed?;
        counter!(m::BATCHES_COMPLETED).increment(1);
        info!(rows = rows.len(), "partly committed batch completed");
        Ok(true)
    }

    /// Takes over entries a dead ingester left pending and processes them like our own.
    async fn claim_from_dead_consumers(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let idle = Duration::from_millis(self.config.claim_idle_ms);
        let consumer = self.config.consumer.clone();
        let (entries, deleted) = self
            .stream
            .autoclaim(&mut self.redis, &consumer, idle, self.config.batch_size)
            .await?;
        if !deleted.is_empty() {
            error!(
                entries = deleted.len(),
                "claimed entries were already trimmed from the stream (lost)"
            );
            counter!(m::TRIMMED).increment(deleted.len() as u64);
            self.stream.ack(&mut self.redis, &deleted).await?;
        }
        if !entries.is_empty() {
            info!(entries = entries.len(), "took over entries from an idle consumer");
            counter!(m::CLAIMED).increment(entries.len() as u64);
            self.process(entries, shutdown).await?;
        }
        Ok(())
    }

    async fn report_backlog(&mut self) {
        let newest = self.newest_created.load(Ordering::Relaxed);
        if newest > 0 {
            gauge!(m::NEWEST_EVENT_AGE).set(now_secs().saturating_sub(newest) as f64);
        }
        match self.stream.group_info(&mut self.redis).await {
            Ok(info) => {
                let stream = self.stream.key().to_owned();
                let labels = [
                    ("stream", stream),
                    ("group", dvmdash_core::redis_keys::INGESTER_GROUP.to_owned()),
                ];
                gauge!(m::STREAM_LENGTH, &labels).set(info.length as f64);
                gauge!(m::STREAM_PENDING, &labels).set(info.pending as f64);
                // Redis < 7 reports no lag; length minus pending is then the closest upper bound.
                let lag = info.lag.unwrap_or(info.length.saturating_sub(info.pending));
                gauge!(m::STREAM_LAG, &labels).set(lag as f64);
                let oldest = self
                    .stream
                    .oldest_pending(
                        &mut self.redis,
                        dvmdash_core::redis_keys::INGESTER_GROUP,
                        now_millis(),
                    )
                    .await;
                if let Ok(oldest) = oldest {
                    let age = oldest.map_or(0, |o| o.age_ms);
                    gauge!(m::OLDEST_PENDING_AGE, &labels).set(age as f64 / 1000.0);
                }
            }
            Err(err) => debug!(error = %err, "reading stream backlog failed"),
        }
        // Acknowledged entries are of no further use; keep Redis memory to the backlog.
        match self.stream.trim_acknowledged(&mut self.redis).await {
            Ok(n) if n > 0 => debug!(entries = n, "trimmed acknowledged entries"),
            Ok(_) => {}
            Err(err) => debug!(error = %err, "trimming acknowledged entries failed"),
        }
    }
}

async fn insert_sightings(
    client: &clickhouse::Client,
    rows: &[EventRelayRow],
) -> clickhouse::error::Result<()> {
    let mut insert = client
        .insert::<EventRelayRow>(EVENT_RELAYS)
        .await?
        .with_timeouts(Some(Duration::from_secs(60)), Some(Duration::from_secs(300)));
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

async fn insert(
    client: &clickhouse::Client,
    rows: &[&RawEventRow],
    token: &str,
) -> clickhouse::error::Result<()> {
    let mut insert = client
        .insert::<RawEventRow>(EVENTS_RAW)
        .await?
        .with_setting("insert_deduplication_token", token)
        .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
        .with_timeouts(Some(Duration::from_secs(60)), Some(Duration::from_secs(300)));
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}
