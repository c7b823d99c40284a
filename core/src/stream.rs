//! The events stream, in one place: its names and limits and every operation on it.
//!
//! An event crosses Redis like this. A collector appends it with [`EventStream::append_new`]: one
//! Lua script per batch marks each id seen (`SET NX EX`) and appends only the ids it marked, so an id
//! is never marked without being on the stream and several collectors watching the same relays
//! append each event once. `dvmdash import` and `dvmdash bench` append with [`EventStream::append`]
//! (ids were deduplicated before). Ingesters read as members of the consumer group
//! [`INGESTER_GROUP`] ([`EventStream::read`]; their own pending entries first, after a crash), take
//! over entries a dead ingester left pending ([`EventStream::autoclaim`]), acknowledge only after
//! the insert ([`EventStream::ack`]) and move entries that can never be stored to the dead-letter
//! stream with their reason ([`EventStream::dead_letter`]). Every few seconds an ingester trims what
//! every consumer acknowledged ([`EventStream::trim_acknowledged`]), so Redis holds only the
//! backlog; [`EventStream::group_info`] reports it to metrics, the admin api and import's pacing.
//!
//! Relay coverage needs every delivery, not just the first: a collector appends the deliveries it
//! did not append as events (seen before in memory or in Redis, from another relay) as one
//! sightings entry per batch ([`EventStream::append_sightings`], [`Sighting`]); the ingester records
//! the relay of every event entry and every sighting.
//!
//! Replies are parsed from raw `redis::Value`s rather than the crate's typed stream replies: a
//! pending entry whose data was trimmed comes back with a nil body, which must be handled, not fail
//! the whole read.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use serde::{Deserialize, Serialize};

use crate::redis_keys::{
    FIELD_EVENT, FIELD_ORIGINAL_ID, FIELD_REASON, FIELD_RELAY, FIELD_SEEN_MS, FIELD_SIGHTINGS,
    INGESTER_GROUP, RedisNames,
};

/// A delivery of an event that is on the stream already (or was appended by another collector):
/// which relay delivered it and when, with what coverage statistics need of the event. Serialized
/// as a JSON array `[id, relay, seen_ms, pubkey, kind, created_at]` to keep entries small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting(
    /// Event id, 64 hex.
    pub String,
    /// The relay that delivered it.
    pub String,
    /// Unix ms of the delivery.
    pub u64,
    /// Author, 64 hex.
    pub String,
    pub u16,
    /// The event's `created_at`.
    pub u64,
);

/// Most sightings in one stream entry (a collector's batch is at most 500 events).
pub const MAX_SIGHTINGS_PER_ENTRY: usize = 5_000;

/// Approximate cap of the events stream (`MAXLEN ~`). Trimming by length ignores consumer groups,
/// so this is only a safety net far above any healthy backlog (alert `StreamBacklogHigh`); the
/// ingesters keep the stream short by trimming what they acknowledged.
pub const STREAM_MAXLEN: u64 = 1_000_000;
/// Approximate cap of the dead-letter stream.
pub const DEAD_LETTER_MAXLEN: u64 = 100_000;
/// How long a collector's seen-marker keeps an id from being appended again.
pub const SEEN_TTL_SECS: u64 = 86_400;
/// Largest parts of an entry copied into a dead letter: event, relay, seen time.
const DEAD_LETTER_LIMITS: (usize, usize, usize) = (1024 * 1024, 1024, 64);
/// Ids per `XACK`.
const ACK_CHUNK: usize = 5000;

/// Marks each id seen (NX) and appends the event only if it was not seen before. KEYS[1] = stream,
/// KEYS[2..] = seen keys; ARGV = ttl, maxlen, then (event, relay, seen_ms) per key. Returns 1 per
/// appended event, 0 per duplicate.
static APPEND_NEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"
local ttl, maxlen = ARGV[1], ARGV[2]
local out = {{}}
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 3
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', '{FIELD_EVENT}', ARGV[a], '{FIELD_RELAY}', ARGV[a + 1], '{FIELD_SEEN_MS}', ARGV[a + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#
    ))
});

/// An event to append: its id (hex, for the seen-marker), its JSON exactly as received, the relay
/// that delivered it and when (unix ms).
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub id_hex: &'a str,
    pub json: &'a str,
    pub relay: &'a str,
    pub seen_ms: u64,
}

/// One stream entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    /// `None` when the entry was trimmed from the stream while pending.
    pub fields: Option<Fields>,
}

/// The fields a writer puts in an entry; missing ones stay empty so readers can say what is wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub event: Option<Vec<u8>>,
    pub relay: Option<Vec<u8>>,
    pub seen_ms: Option<Vec<u8>>,
    /// A sightings entry's JSON ([`Sighting`]s).
    pub sightings: Option<Vec<u8>>,
    /// Number of fields in the entry, to spot junk.
    pub count: usize,
}

/// Adds to `pipe` the `XADD` that puts a dead letter back on stream `key` as it was (an event with
/// its relay and time, or sightings), capped like every append.
pub(crate) fn push_replay(pipe: &mut redis::Pipeline, key: &str, letter: &DeadLetter) {
    let cmd = pipe
        .cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_MAXLEN)
        .arg("*");
    let f = &letter.fields;
    for (name, value) in [
        (FIELD_EVENT, &f.event),
        (FIELD_RELAY, &f.relay),
        (FIELD_SEEN_MS, &f.seen_ms),
        (FIELD_SIGHTINGS, &f.sightings),
    ] {
        if let Some(v) = value {
            cmd.arg(name).arg(v.as_slice());
        }
    }
    cmd.ignore();
}

/// One entry of the dead-letter stream: the entry as it was, why it could not be stored, and when
/// (the dead letter's own id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    /// The id the entry had on the events stream.
    pub original_id: String,
    pub reason: String,
    /// What was kept of the entry (empty when it had been trimmed before it was read).
    pub fields: Fields,
}

impl DeadLetter {
    /// Unix ms when it was dead-lettered (the millisecond part of its id).
    pub fn at_ms(&self) -> Option<u64> {
        self.id.split('-').next().and_then(|ms| ms.parse().ok())
    }

    /// Whether it holds something to put back on the stream (an event or sightings).
    pub fn replayable(&self) -> bool {
        self.fields.event.is_some() || self.fields.sightings.is_some()
    }
}

/// Backlog numbers of the ingesters' group, for metrics, the admin api and import's pacing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    pub length: u64,
    pub pending: u64,
    /// Entries not yet delivered to the group (`lag`, Redis >= 7).
    pub lag: Option<u64>,
    /// The last entry delivered to the group.
    pub last_delivered: Option<String>,
}

/// One consumer group of the events stream, as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupSummary {
    pub name: String,
    pub consumers: u64,
    /// Entries delivered and not yet acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group (Redis >= 7).
    pub lag: Option<u64>,
    pub last_delivered: Option<String>,
}

/// One consumer of a group, as `XINFO CONSUMERS` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerSummary {
    pub name: String,
    /// Entries delivered to it and not yet acknowledged.
    pub pending: u64,
    /// Milliseconds since its last read or claim.
    pub idle_ms: u64,
    /// Milliseconds since its last successful read (Redis >= 7.2).
    pub inactive_ms: Option<u64>,
}

/// The oldest entry a group has delivered and not had acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OldestPending {
    pub id: String,
    /// The consumer holding it.
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// Milliseconds since it was appended (from its id), at the caller's clock.
    pub age_ms: u64,
}

/// One events stream (the whole stream, or one shard of it: [`crate::stream_shards`]) and the
/// dead-letter stream under one key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStream {
    key: String,
    /// Seen-markers of this stream's events are this plus the id.
    seen_prefix: String,
    dead_letters: String,
    /// The ingester's exactly-once gate lock of this shard ([`RedisNames::gate_lock`]).
    gate_lock: String,
    /// The shard's index, which is also the lane its events are inserted by.
    index: u16,
}

impl EventStream {
    /// The unsplit stream (one shard).
    pub fn new(names: &RedisNames) -> Self {
        Self::shard(names, 0, 1)
    }

    /// Shard `i` of the stream split `count` ways.
    pub fn shard(names: &RedisNames, i: u16, count: u16) -> Self {
        EventStream {
            key: names.events_shard(i, count),
            seen_prefix: names.seen_prefix(i, count),
            dead_letters: names.dead_letter_stream(),
            gate_lock: names.gate_lock(i, count),
            index: i,
        }
    }

    /// The lock held while a batch of this shard is checked against every id stored and inserted.
    pub fn gate_lock(&self) -> &str {
        &self.gate_lock
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lane this shard's events are inserted by (`lane` of `events_raw`): its index. At most
    /// 256 shards, so it fits.
    pub fn lane(&self) -> u8 {
        u8::try_from(self.index).unwrap_or(u8::MAX)
    }

    pub fn dead_letter_key(&self) -> &str {
        &self.dead_letters
    }

    // ----- writers

    /// Appends the events whose ids were not seen in the last `seen_ttl_secs`, marking them seen,
    /// atomically per batch; `true` per appended event, `false` per duplicate.
    pub async fn append_new<C: ConnectionLike>(
        &self,
        conn: &mut C,
        events: &[NewEntry<'_>],
        seen_ttl_secs: u64,
        maxlen: u64,
    ) -> redis::RedisResult<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = APPEND_NEW.prepare_invoke();
        inv.key(&self.key);
        for e in events {
            inv.key(format!("{}{}", self.seen_prefix, e.id_hex));
        }
        inv.arg(seen_ttl_secs).arg(maxlen);
        for e in events {
            inv.arg(e.json).arg(e.relay).arg(e.seen_ms);
        }
        // EVALSHA, loading the script first if the server does not know it.
        let flags: Vec<i64> = inv.invoke_async(conn).await?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Appends deliveries of known events as one sightings entry (nothing when there are none),
    /// capped like events.
    pub async fn append_sightings<C: ConnectionLike>(
        &self,
        conn: &mut C,
        sightings: &[Sighting],
        maxlen: u64,
    ) -> redis::RedisResult<()> {
        for chunk in sightings.chunks(MAX_SIGHTINGS_PER_ENTRY) {
            // Strings and integers only: serializing cannot fail (an empty entry would be
            // dead-lettered by the ingester, visibly, if it ever did).
            let json = serde_json::to_string(chunk).unwrap_or_default();
            let _: String = redis::cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(maxlen)
                .arg("*")
                .arg(FIELD_SIGHTINGS)
                .arg(json)
                .query_async(conn)
                .await?;
        }
        Ok(())
    }

    /// Appends already deduplicated events in one pipelined round trip, capped at
    /// [`STREAM_MAXLEN`]. Returns the entry ids.
    pub async fn append<C: ConnectionLike>(
        &self,
        conn: &mut C,
        relay: &str,
        seen_ms: u64,
        events: &[String],
    ) -> redis::RedisResult<Vec<String>> {
        let entries = events.iter().map(|e| (e.as_str(), relay, seen_ms));
        self.append_with(conn, entries, Some(STREAM_MAXLEN)).await
    }

    /// [`EventStream::append`] with each entry's own relay and time (`id_hex` is not used: the
    /// entries were deduplicated before).
    pub async fn append_each<C: ConnectionLike>(
        &self,
        conn: &mut C,
        entries: &[NewEntry<'_>],
    ) -> redis::RedisResult<Vec<String>> {
        let entries = entries.iter().map(|e| (e.json, e.relay, e.seen_ms));
        self.append_with(conn, entries, Some(STREAM_MAXLEN)).await
    }

    /// [`EventStream::append`] without the length cap, for benchmarks that queue more than the cap
    /// on purpose to measure the ingesters (trimming would drop unread entries).
    pub async fn append_uncapped<C: ConnectionLike>(
        &self,
        conn: &mut C,
        relay: &str,
        seen_ms: u64,
        events: &[String],
    ) -> redis::RedisResult<Vec<String>> {
        let entries = events.iter().map(|e| (e.as_str(), relay, seen_ms));
        self.append_with(conn, entries, None).await
    }

    /// One pipelined `XADD` per (event, relay, seen_ms).
    async fn append_with<'a, C: ConnectionLike>(
        &self,
        conn: &mut C,
        entries: impl ExactSizeIterator<Item = (&'a str, &'a str, u64)>,
        maxlen: Option<u64>,
    ) -> redis::RedisResult<Vec<String>> {
        if entries.len() == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (event, relay, seen_ms) in entries {
            let cmd = pipe.cmd("XADD").arg(&self.key);
            if let Some(max) = maxlen {
                cmd.arg("MAXLEN").arg("~").arg(max);
            }
            cmd.arg("*")
                .arg(FIELD_EVENT)
                .arg(event)
                .arg(FIELD_RELAY)
                .arg(relay)
                .arg(FIELD_SEEN_MS)
                .arg(seen_ms);
        }
        pipe.query_async(conn).await
    }

    // ----- the ingesters' consumer group

    /// Creates the consumer group (from the start of the stream, so nothing already queued is
    /// skipped); a group that exists is left alone.
    pub async fn ensure_group<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(INGESTER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match r {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// A dedicated connection for blocking reads: no response timeout, since `BLOCK` holds the
    /// reply (the client's default of 500 ms would cut every blocking read short).
    pub async fn reader(client: &redis::Client) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(5)));
        client.get_multiplexed_async_connection_with_config(&cfg).await
    }

    /// `XREADGROUP` as `consumer`: `start` is `>` for new entries or `0` for its own pending ones.
    pub async fn read<C: ConnectionLike>(
        &self,
        conn: &mut C,
        consumer: &str,
        start: &str,
        count: usize,
        block: Option<Duration>,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(INGESTER_GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(start);
        let reply: Value = cmd.query_async(conn).await?;
        Ok(parse_read_reply(reply))
    }

    /// Takes over entries idle longer than `min_idle` from any consumer (a dead ingester's),
    /// following the cursor. Returns the entries and the ids whose data was already trimmed.
    pub async fn autoclaim<C: ConnectionLike>(
        &self,
        conn: &mut C,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> redis::RedisResult<(Vec<Entry>, Vec<String>)> {
        let mut cursor = "0-0".to_owned();
        let mut entries = Vec::new();
        let mut deleted = Vec::new();
        loop {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(INGESTER_GROUP)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(conn)
                .await?;
            let Value::Array(parts) = reply else { break };
            let mut parts = parts.into_iter();
            let next = parts
                .next()
                .and_then(|v| as_string(&v))
                .unwrap_or_else(|| "0-0".into());
            if let Some(Value::Array(items)) = parts.next() {
                entries.extend(items.into_iter().filter_map(parse_entry));
            }
            if let Some(Value::Array(ids)) = parts.next() {
                deleted.extend(ids.iter().filter_map(as_string));
            }
            if next == "0-0" || entries.len() >= count {
                break;
            }
            cursor = next;
        }
        Ok((entries, deleted))
    }

    /// `XACK` in chunks.
    pub async fn ack<C: ConnectionLike>(&self, conn: &mut C, ids: &[String]) -> redis::RedisResult<()> {
        for chunk in ids.chunks(ACK_CHUNK) {
            let _: i64 = redis::cmd("XACK")
                .arg(&self.key)
                .arg(INGESTER_GROUP)
                .arg(chunk)
                .query_async(conn)
                .await?;
        }
        Ok(())
    }

    /// Copies entries to the dead-letter stream with their reason (pipelined, one round trip).
    pub async fn dead_letter<C: ConnectionLike>(
        &self,
        conn: &mut C,
        items: &[(Entry, String)],
    ) -> redis::RedisResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (max_event, max_relay, max_seen) = DEAD_LETTER_LIMITS;
        let mut pipe = redis::pipe();
        for (entry, reason) in items {
            let cmd = pipe
                .cmd("XADD")
                .arg(&self.dead_letters)
                .arg("MAXLEN")
                .arg("~")
                .arg(DEAD_LETTER_MAXLEN)
                .arg("*");
            cmd.arg(FIELD_ORIGINAL_ID)
                .arg(&entry.id)
                .arg(FIELD_REASON)
                .arg(reason);
            if let Some(f) = &entry.fields {
                if let Some(e) = &f.event {
                    cmd.arg(FIELD_EVENT).arg(&e[..e.len().min(max_event)]);
                }
                if let Some(r) = &f.relay {
                    cmd.arg(FIELD_RELAY).arg(&r[..r.len().min(max_relay)]);
                }
                if let Some(t) = &f.seen_ms {
                    cmd.arg(FIELD_SEEN_MS).arg(&t[..t.len().min(max_seen)]);
                }
                if let Some(s) = &f.sightings {
                    cmd.arg(FIELD_SIGHTINGS).arg(&s[..s.len().min(max_event)]);
                }
            }
            cmd.ignore();
        }
        pipe.query_async::<()>(conn).await
    }

    /// The newest dead letter's id: a walk over the dead letters stops there, so letters added
    /// meanwhile (a replayed entry that fails again) are not read in the same walk.
    pub async fn last_dead_letter_id<C: ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<Option<String>> {
        let v: Value = redis::cmd("XREVRANGE")
            .arg(&self.dead_letters)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        let Value::Array(items) = v else {
            return Ok(None);
        };
        Ok(items.into_iter().next().and_then(parse_entry).map(|e| e.id))
    }

    /// Dead letters after `after` (exclusive; from the oldest when `None`) up to `until`
    /// (inclusive), oldest first, at most `count`.
    pub async fn dead_letter_page<C: ConnectionLike>(
        &self,
        conn: &mut C,
        after: Option<&str>,
        until: &str,
        count: usize,
    ) -> redis::RedisResult<Vec<DeadLetter>> {
        let start = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let v: Value = redis::cmd("XRANGE")
            .arg(&self.dead_letters)
            .arg(start)
            .arg(until)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(conn)
            .await?;
        let Value::Array(items) = v else {
            return Ok(Vec::new());
        };
        Ok(items.into_iter().filter_map(parse_dead_letter).collect())
    }

    /// The dead letters with these ids that still exist, in the order given.
    pub async fn dead_letters_by_id<C: ConnectionLike>(
        &self,
        conn: &mut C,
        ids: &[String],
    ) -> redis::RedisResult<Vec<DeadLetter>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XRANGE").arg(&self.dead_letters).arg(id).arg(id);
        }
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                Value::Array(items) => items.into_iter().next().and_then(parse_dead_letter),
                _ => None,
            })
            .collect())
    }

    /// Removes dead letters for good; returns how many existed.
    pub async fn discard_dead_letters<C: ConnectionLike>(
        &self,
        conn: &mut C,
        ids: &[String],
    ) -> redis::RedisResult<u64> {
        let mut removed = 0;
        for chunk in ids.chunks(ACK_CHUNK) {
            removed += redis::cmd("XDEL")
                .arg(&self.dead_letters)
                .arg(chunk)
                .query_async::<u64>(conn)
                .await?;
        }
        Ok(removed)
    }

    // ----- inspection and trimming

    /// Length of the stream and the ingesters' group's pending count, lag and last delivery.
    pub async fn group_info<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<GroupInfo> {
        let length: u64 = redis::cmd("XLEN").arg(&self.key).query_async(conn).await?;
        let ingesters = self
            .groups(conn)
            .await?
            .into_iter()
            .find(|g| g.name == INGESTER_GROUP);
        Ok(ingesters.map_or(
            GroupInfo {
                length,
                ..Default::default()
            },
            |g| GroupInfo {
                length,
                pending: g.pending,
                lag: g.lag,
                last_delivered: g.last_delivered,
            },
        ))
    }

    /// The id below which every entry was delivered to the ingesters and acknowledged: the oldest
    /// pending entry, or just after the last delivered one when nothing is pending.
    pub async fn acknowledged_below<C: ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> redis::RedisResult<Option<String>> {
        let info = self.group_info(conn).await?;
        let summary: Value = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(INGESTER_GROUP)
            .query_async(conn)
            .await?;
        if let Value::Array(parts) = summary
            && let Some(oldest) = parts.get(1).and_then(as_string)
        {
            return Ok(Some(oldest));
        }
        Ok(info
            .last_delivered
            .filter(|id| id != "0-0")
            .and_then(|id| next_id(&id)))
    }

    /// Drops entries every ingester has acknowledged (approximately, whole radix-tree nodes), so
    /// Redis holds only the backlog. Returns how many entries went.
    pub async fn trim_acknowledged<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<u64> {
        let Some(below) = self.acknowledged_below(conn).await? else {
            return Ok(0);
        };
        redis::cmd("XTRIM")
            .arg(&self.key)
            .arg("MINID")
            .arg("~")
            .arg(below)
            .query_async(conn)
            .await
    }

    /// Every consumer group of the stream (normally only the ingesters').
    pub async fn groups<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<Vec<GroupSummary>> {
        let reply: Value = match redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(conn)
            .await
        {
            // Before the first entry the stream does not exist: no groups yet, not a failure.
            Err(e) if is_no_such_key(&e) => return Ok(Vec::new()),
            other => other?,
        };
        Ok(info_records(reply)
            .into_iter()
            .map(|r| {
                let get = |name: &str| r.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                GroupSummary {
                    name: get("name").and_then(as_string).unwrap_or_default(),
                    consumers: get("consumers").and_then(as_u64).unwrap_or(0),
                    pending: get("pending").and_then(as_u64).unwrap_or(0),
                    lag: get("lag").and_then(as_u64),
                    last_delivered: get("last-delivered-id").and_then(as_string),
                }
            })
            .collect())
    }

    /// The consumers of `group` with what each holds and how long it has been idle.
    pub async fn consumers<C: ConnectionLike>(
        &self,
        conn: &mut C,
        group: &str,
    ) -> redis::RedisResult<Vec<ConsumerSummary>> {
        let reply: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.key)
            .arg(group)
            .query_async(conn)
            .await?;
        Ok(info_records(reply)
            .into_iter()
            .map(|r| {
                let get = |name: &str| r.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                ConsumerSummary {
                    name: get("name").and_then(as_string).unwrap_or_default(),
                    pending: get("pending").and_then(as_u64).unwrap_or(0),
                    idle_ms: get("idle").and_then(as_u64).unwrap_or(0),
                    inactive_ms: get("inactive").and_then(as_u64),
                }
            })
            .collect())
    }

    /// The oldest entry `group` has pending, if any.
    pub async fn oldest_pending<C: ConnectionLike>(
        &self,
        conn: &mut C,
        group: &str,
        now_ms: u64,
    ) -> redis::RedisResult<Option<OldestPending>> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(1)
            .query_async(conn)
            .await?;
        let Value::Array(items) = reply else {
            return Ok(None);
        };
        let Some(Value::Array(first)) = items.into_iter().next() else {
            return Ok(None);
        };
        let field = |i: usize| first.get(i);
        let Some(id) = field(0).and_then(as_string) else {
            return Ok(None);
        };
        let appended: u64 = id
            .split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(now_ms);
        Ok(Some(OldestPending {
            consumer: field(1).and_then(as_string).unwrap_or_default(),
            idle_ms: field(2).and_then(as_u64).unwrap_or(0),
            deliveries: field(3).and_then(as_u64).unwrap_or(0),
            age_ms: now_ms.saturating_sub(appended),
            id,
        }))
    }

    /// Entries waiting in the dead-letter stream.
    pub async fn dead_letters<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<u64> {
        redis::cmd("XLEN").arg(&self.dead_letters).query_async(conn).await
    }
}

/// The stream id right after `id` (`ms-seq` -> `ms-(seq+1)`).
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let seq: u64 = seq.parse().ok()?;
    Some(format!("{ms}-{}", seq.checked_add(1)?))
}

pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether Redis refused a command because its key does not exist (`XINFO` on a new deployment).
fn is_no_such_key(e: &redis::RedisError) -> bool {
    e.to_string().to_ascii_lowercase().contains("no such key")
}

/// The records of an `XINFO` reply as name/value pairs (arrays in RESP2, maps in RESP3).
fn info_records(reply: Value) -> Vec<Vec<(String, Value)>> {
    let Value::Array(records) = reply else {
        return Vec::new();
    };
    records
        .into_iter()
        .filter_map(|r| match r {
            Value::Array(items) => Some(
                items
                    .chunks(2)
                    .filter_map(|p| Some((as_string(p.first()?)?, p.get(1)?.clone())))
                    .collect(),
            ),
            Value::Map(items) => Some(
                items
                    .into_iter()
                    .filter_map(|(k, v)| Some((as_string(&k)?, v)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn parse_read_reply(reply: Value) -> Vec<Entry> {
    // [[stream, [[id, [f, v, ...] | nil], ...]]] (RESP2) or {stream: [...]} (RESP3)
    let streams = match reply {
        Value::Array(s) => s
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Value::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|items| match items {
            Value::Array(items) => items,
            _ => Vec::new(),
        })
        .filter_map(parse_entry)
        .collect()
}

fn parse_dead_letter(v: Value) -> Option<DeadLetter> {
    let Value::Array(parts) = &v else { return None };
    let kv = match parts.get(1) {
        Some(Value::Array(kv)) => kv.clone(),
        _ => Vec::new(),
    };
    let (mut original_id, mut reason) = (String::new(), String::new());
    let mut it = kv.iter();
    while let (Some(k), Some(val)) = (it.next(), it.next()) {
        match as_string(k).as_deref() {
            Some(FIELD_ORIGINAL_ID) => original_id = as_string(val).unwrap_or_default(),
            Some(FIELD_REASON) => reason = as_string(val).unwrap_or_default(),
            _ => {}
        }
    }
    let entry = parse_entry(v)?;
    Some(DeadLetter {
        id: entry.id,
        original_id,
        reason,
        fields: entry.fields.unwrap_or_default(),
    })
}

fn parse_entry(v: Value) -> Option<Entry> {
    let Value::Array(mut parts) = v else { return None };
    if parts.is_empty() {
        return None;
    }
    let body = if parts.len() > 1 { parts.pop() } else { None };
    let id = as_string(&parts[0])?;
    let fields = match body {
        Some(Value::Array(kv)) => {
            let mut f = Fields {
                count: kv.len() / 2,
                ..Default::default()
            };
            let mut it = kv.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                let (Some(k), Value::BulkString(v)) = (as_string(&k), v) else {
                    continue;
                };
                match k.as_str() {
                    FIELD_EVENT => f.event = Some(v),
                    FIELD_RELAY => f.relay = Some(v),
                    FIELD_SEEN_MS => f.seen_ms = Some(v),
                    FIELD_SIGHTINGS => f.sightings = Some(v),
                    _ => {}
                }
            }
            Some(f)
        }
        _ => None,
    };
    Some(Entry { id, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn dead_letters_parse_with_their_reason_and_age() {
        let v = Value::Array(vec![
            bulk("1700000000123-4"),
            Value::Array(vec![
                bulk("id"),
                bulk("1699999999999-0"),
                bulk("reason"),
                bulk("event rejected: too_large"),
                bulk("e"),
                bulk("{}"),
                bulk("r"),
                bulk("wss://x"),
            ]),
        ]);
        let l = parse_dead_letter(v).expect("a dead letter");
        assert_eq!(l.original_id, "1699999999999-0");
        assert_eq!(l.reason, "event rejected: too_large");
        assert_eq!(l.at_ms(), Some(1_700_000_000_123));
        assert!(l.replayable());
        let empty = parse_dead_letter(Value::Array(vec![bulk("5-0")])).expect("a trimmed one");
        assert!(!empty.replayable() && empty.reason.is_empty());
        assert!(parse_dead_letter(Value::Int(3)).is_none());
    }

    #[test]
    fn next_ids() {
        assert_eq!(next_id("1700000000000-0").as_deref(), Some("1700000000000-1"));
        assert_eq!(next_id("5-41").as_deref(), Some("5-42"));
        assert_eq!(next_id("junk"), None);
    }

    #[test]
    fn parses_reads_including_trimmed_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("e"), bulk("{}"), bulk("r"), bulk("wss://x")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
                Value::Int(5),
            ]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 2);
        let f = entries[0].fields.as_ref().unwrap();
        assert_eq!(f.event.as_deref(), Some(&b"{}"[..]));
        assert_eq!(f.relay.as_deref(), Some(&b"wss://x"[..]));
        assert_eq!(f.seen_ms, None);
        assert_eq!(
            entries[1],
            Entry {
                id: "2-0".into(),
                fields: None
            }
        );
        assert!(parse_read_reply(Value::Nil).is_empty());
    }
}
