//! The collector benchmark: three relays on loopback (rust-nostr's relay, in this process) each hold
//! the same signed events; one `dvmdash collector` process, assigned them by a `dvmdash
//! coordinator` process, reads all three from its first-contact backfill. Timed from the
//! collector's start until the stream holds every event once; the collector's own CPU time gives
//! the rate per core, apart from the relays' work (which shares the two cores, as on one machine).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dvmdash_core::config::RedisArgs;
use dvmdash_core::redis_keys::FIELD_EVENT;
use dvmdash_core::stream_shards::EventStreams;
use nostr_relay_builder::prelude::{
    Event, JsonUtil as _, LocalRelay, MemoryDatabase, MemoryDatabaseOptions, NostrDatabase as _,
};
use tokio_util::sync::CancellationToken;

use super::roles::RoleProcess;
use super::{BenchArgs, Results};

const RELAYS: usize = 3;

pub async fn run(r: &mut Results, args: &BenchArgs, suffix: &str) -> anyhow::Result<()> {
    let n = args.collect_events.max(1);
    // Inside the collector's first-contact lookback (an hour by default).
    let events = super::events_over(n, &format!("collect{suffix}"), 3000);
    let parsed: Vec<Event> = events
        .iter()
        .map(|j| Event::from_json(j).context("a benchmark event does not parse"))
        .collect::<anyhow::Result<_>>()?;
    drop(events);
    let mut relays: Vec<LocalRelay> = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..RELAYS {
        let (relay, url) = relay_holding(&parsed, n).await?;
        relays.push(relay);
        urls.push(url);
    }
    drop(parsed);
    let redis = RedisArgs {
        redis_prefix: format!("bench{suffix}collect"),
        ..args.redis.clone()
    };
    let result = collect(r, &redis, &urls, n as u64).await;
    if let Ok(Some(mut conn)) = redis.connect(&CancellationToken::new()).await {
        super::delete_prefix(&mut conn, &redis.redis_prefix).await;
    }
    for relay in relays {
        relay.shutdown();
    }
    result
}

/// A loopback relay whose database already holds `events` (stored directly, not published: the
/// benchmark times reading, not filling).
async fn relay_holding(events: &[Event], n: usize) -> anyhow::Result<(LocalRelay, String)> {
    let db = MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: Some(n + 1000),
    });
    for e in events {
        db.save_event(e)
            .await
            .map_err(|e| anyhow::anyhow!("storing a benchmark event in the relay: {e}"))?;
    }
    crate::demo::start_relay_with(0, Some(db)).await
}

async fn collect(r: &mut Results, redis: &RedisArgs, urls: &[String], n: u64) -> anyhow::Result<()> {
    let mut conn = redis
        .connect(&CancellationToken::new())
        .await?
        .context("Redis is gone")?;
    let streams = EventStreams::new(&redis.names(), redis.stream_shards);
    let mut coordinator = RoleProcess::spawn(
        "coordinator",
        &["coordinator"],
        &[
            ("DVMDASH_RELAYS", urls.join(",")),
            ("DVMDASH_RELAY_REDUNDANCY", "1".into()),
        ],
        redis,
        None,
    )?;
    let started = Instant::now();
    let mut collector = RoleProcess::spawn("collector", &["collector"], &[], redis, None)?;
    let mut seen = StreamCounter::new(&streams);
    while seen.events < n {
        coordinator.check_alive()?;
        collector.check_alive()?;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the collector queued {} of {n} events in 10 minutes",
            seen.events
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen.advance(&mut conn).await?;
    }
    let elapsed = started.elapsed();
    let busy = collector.usage()?;
    // The later passes over the same range (the collector re-reads after a settle delay) must not
    // queue any event again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    seen.advance(&mut conn).await?;
    let used = collector.stop().await?;
    let coord = coordinator.stop().await?;
    anyhow::ensure!(
        seen.events == n && seen.ids.len() as u64 == n,
        "the stream holds {} event entries ({} distinct ids) for {n} distinct events",
        seen.events,
        seen.ids.len()
    );
    let rate = n as f64 / elapsed.as_secs_f64();
    r.add(
        "collect",
        &format!("{RELAYS} relays, {n} events each, to the stream (backfill: 5 REQs/s per relay)"),
        rate,
        "events/s",
        "",
    );
    r.add(
        "collect",
        "unique verified events per CPU second of the collector",
        n as f64 / busy.cpu_secs.max(f64::EPSILON),
        "events/s",
        ">= 25000 per core",
    );
    r.add(
        "collect",
        &format!("collector CPU per unique event ({RELAYS} copies read)"),
        busy.cpu_secs * 1e6 / n as f64,
        "us",
        "",
    );
    r.add(
        "collect",
        "collector process: peak resident memory",
        used.peak_mb,
        "MB",
        "< 150",
    );
    r.add(
        "collect",
        "coordinator process: peak resident memory",
        coord.peak_mb,
        "MB",
        "< 150",
    );
    Ok(())
}

/// Reads the stream's shards as they grow: event entries and their distinct ids (sightings
/// entries, which record which relays delivered an event, are not events).
struct StreamCounter {
    keys: Vec<String>,
    /// The last entry id read from each shard.
    after: Vec<String>,
    events: u64,
    ids: std::collections::HashSet<String>,
}

impl StreamCounter {
    fn new(streams: &EventStreams) -> Self {
        let keys: Vec<String> = streams.all().iter().map(|s| s.key().to_owned()).collect();
        StreamCounter {
            after: vec!["-".to_owned(); keys.len()],
            keys,
            events: 0,
            ids: Default::default(),
        }
    }

    async fn advance(&mut self, conn: &mut redis::aio::ConnectionManager) -> anyhow::Result<()> {
        use redis::AsyncCommands as _;
        for (key, after) in self.keys.iter().zip(self.after.iter_mut()) {
            loop {
                let start = if after == "-" {
                    "-".to_owned()
                } else {
                    format!("({after}")
                };
                let reply: redis::streams::StreamRangeReply =
                    conn.xrange_count(key, start, "+", 10_000).await?;
                let Some(last) = reply.ids.last() else { break };
                *after = last.id.clone();
                for entry in &reply.ids {
                    if let Some(redis::Value::BulkString(json)) = entry.map.get(FIELD_EVENT) {
                        self.events += 1;
                        if let Some(id) = dvmdash_core::stream_shards::event_id_in(json) {
                            self.ids.insert(id);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
