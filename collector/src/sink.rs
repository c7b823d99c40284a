//! The stream writer: appends verified events to the Redis stream in batches.
//!
//! Each batch is one Lua script call. For every event it sets the id's seen-marker with `SET NX EX`
//! and, only when that succeeded, `XADD`s the event, atomically: an id is never marked seen without
//! being on the stream, so a crash cannot lose an event, and several collectors watching the same
//! relays put each event on the stream once. A failed write is retried (with backoff) until it
//! succeeds or shutdown gives up; nothing is dropped silently.

use std::time::{Duration, Instant};

use dvmdash_core::redis_keys::RedisNames;
use metrics::{counter, gauge, histogram};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::metrics as m;
use crate::relay::Accepted;

/// Marks each id seen (NX) and appends the event only if it was not seen before.
/// KEYS[1] = stream, KEYS[2..] = seen keys; ARGV = ttl, maxlen, then (event, relay, seen_ms) per key.
const APPEND_NEW: &str = r#"
local ttl, maxlen = ARGV[1], ARGV[2]
local out = {}
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 3
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[a], 'r', ARGV[a + 1], 't', ARGV[a + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#;

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
            stream_maxlen: 1_000_000,
            seen_ttl_secs: 86_400,
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
    names: RedisNames,
    opts: SinkOptions,
    shutdown: CancellationToken,
) {
    let mut writer = Writer {
        redis,
        script: redis::Script::new(APPEND_NEW),
        stream: names.events_stream(),
        names,
        opts,
    };
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
    script: redis::Script,
    stream: String,
    names: RedisNames,
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
                        if added == 1 {
                            counter!(m::STREAM_WRITTEN).increment(1);
                        } else {
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

    async fn write(&mut self, events: &[Accepted]) -> redis::RedisResult<Vec<i64>> {
        let mut inv = self.script.prepare_invoke();
        inv.key(&self.stream);
        for ev in events {
            inv.key(self.names.seen(&hex::encode(ev.id)));
        }
        inv.arg(self.opts.seen_ttl_secs).arg(self.opts.stream_maxlen);
        for ev in events {
            inv.arg(ev.json.as_str()).arg(ev.relay.as_ref()).arg(ev.seen_ms);
        }
        // EVALSHA, loading the script first if the server does not know it.
        inv.invoke_async(&mut self.redis).await
    }
}

/// The field names used above, checked against the shared constants.
#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::redis_keys::{FIELD_EVENT, FIELD_RELAY, FIELD_SEEN_MS};

    #[test]
    fn script_uses_the_shared_field_names() {
        assert!(APPEND_NEW.contains(&format!("'{FIELD_EVENT}', ARGV[a]")));
        assert!(APPEND_NEW.contains(&format!("'{FIELD_RELAY}', ARGV[a + 1]")));
        assert!(APPEND_NEW.contains(&format!("'{FIELD_SEEN_MS}', ARGV[a + 2]")));
    }
}
