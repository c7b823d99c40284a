//! The stream writer: appends verified events to the Redis stream in batches.
//!
//! Each batch is one [`EventStreams::append_new`] call per shard of the stream it touches
//! (seen-marker and append, atomically, so several collectors watching the same relays put each
//! event on the stream once). A failed write is
//! retried (with backoff) until it succeeds or shutdown gives up; nothing is dropped silently.
//! Deliveries of events already on the stream (from another relay, or appended by another
//! collector) go into one sightings entry per batch, for relay coverage.

use std::time::{Duration, Instant};

use dvmdash_core::stream::{NewEntry, SEEN_TTL_SECS, STREAM_MAXLEN, Sighting};
use dvmdash_core::stream_shards::EventStreams;
use metrics::{counter, gauge, histogram};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::metrics as m;
use crate::relay::Accepted;

#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Approximate stream length cap (`MAXLEN ~`). Keep it far above the backlog alert threshold:
    /// trimming ignores consumer groups, so entries trimmed before an ingester read them are lost.
    pub stream_maxlen: u64,
    /// How long an id stays marked as seen in Redis.
    pub seen_ttl_secs: u64,
    /// Events per script call, and a byte budget per call.
    pub batch_events: usize,
    pub batch_bytes: usize,
    /// After shutdown, how long to keep retrying a failing write before giving up.
    pub shutdown_grace: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            stream_maxlen: STREAM_MAXLEN,
            seen_ttl_secs: SEEN_TTL_SECS,
            batch_events: 500,
            batch_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Writes until every sender is dropped and the queue is empty.
pub async fn run(
    mut rx: mpsc::Receiver<Accepted>,
    redis: ConnectionManager,
    streams: EventStreams,
    opts: SinkOptions,
    shutdown: CancellationToken,
) {
    let mut writer = Writer { redis, streams, opts };
    let mut batch: Vec<Accepted> = Vec::with_capacity(writer.opts.batch_events);
    loop {
        if rx.recv_many(&mut batch, writer.opts.batch_events).await == 0 {
            return;
        }
        gauge!(m::SINK_QUEUE).set(rx.len() as f64);
        // Split by bytes so one call never carries an unbounded payload.
        let mut start = 0;
        while start < batch.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < batch.len()
                && (end == start || bytes + batch[end].json.len() <= writer.opts.batch_bytes)
            {
                bytes += batch[end].json.len();
                end += 1;
            }
            writer.write_with_retry(&batch[start..end], &rx, &shutdown).await;
            start = end;
        }
        batch.clear();
    }
}

struct Writer {
    redis: ConnectionManager,
    streams: EventStreams,
    opts: SinkOptions,
}

impl Writer {
    async fn write_with_retry(
        &mut self,
        events: &[Accepted],
        queue: &mpsc::Receiver<Accepted>,
        shutdown: &CancellationToken,
    ) {
        let mut delay = Duration::from_millis(100);
        let mut gave_up_at: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self.write(events).await {
                Ok(flags) => {
                    histogram!(m::STREAM_WRITE_SECONDS).record(started.elapsed().as_secs_f64());
                    for (ev, added) in events.iter().zip(flags) {
                        if added {
                            counter!(m::STREAM_WRITTEN).increment(1);
                        } else if ev.first {
                            counter!(m::DUPLICATES, "relay" => ev.relay.to_string(), "layer" => "redis")
                                .increment(1);
                        }
                    }
                    return;
                }
                Err(err) => {
                    counter!(m::STREAM_WRITE_FAILURES).increment(1);
                    warn!(error = %err, events = events.len(), "stream write failed, retrying");
                    gauge!(m::SINK_QUEUE).set(queue.len() as f64);
                }
            }
            if shutdown.is_cancelled() {
                let since = *gave_up_at.get_or_insert_with(Instant::now);
                if since.elapsed() > self.opts.shutdown_grace {
                    // The events stay on their relays; the next start resumes from before them.
                    error!(
                        events = events.len(),
                        "giving up stream write at shutdown; events will be re-fetched"
                    );
                    return;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Appends the first deliveries as events (those another collector appended come back
    /// `false`), then every delivery that was not appended as a sightings entry. Returns, per
    /// delivery, whether it was appended as an event. A retry after a failure in between repeats
    /// nothing harmful: the events are marked seen, and sightings are idempotent downstream.
    async fn write(&mut self, deliveries: &[Accepted]) -> redis::RedisResult<Vec<bool>> {
        let firsts: Vec<&Accepted> = deliveries.iter().filter(|d| d.first).collect();
        let ids: Vec<String> = firsts.iter().map(|ev| hex::encode(ev.id)).collect();
        let entries: Vec<NewEntry<'_>> = firsts
            .iter()
            .zip(&ids)
            .map(|(ev, id)| NewEntry {
                id_hex: id,
                json: ev.json.as_str(),
                relay: ev.relay.as_ref(),
                seen_ms: ev.seen_ms,
            })
            .collect();
        let appended = self
            .streams
            .append_new(
                &mut self.redis,
                &entries,
                self.opts.seen_ttl_secs,
                self.opts.stream_maxlen,
            )
            .await?;
        let mut appended = appended.into_iter();
        let flags: Vec<bool> = deliveries
            .iter()
            .map(|d| d.first && appended.next().unwrap_or(false))
            .collect();
        let sightings: Vec<Sighting> = deliveries
            .iter()
            .zip(&flags)
            .filter(|(_, added)| !**added)
            .map(|(d, _)| d.sighting())
            .collect();
        self.streams
            .append_sightings(&mut self.redis, &sightings, self.opts.stream_maxlen)
            .await?;
        counter!(m::SIGHTINGS).increment(sightings.len() as u64);
        Ok(flags)
    }
}
