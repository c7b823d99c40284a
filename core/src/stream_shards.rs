//! The events stream split by event id into N shard streams, so the stream's traffic can be spread
//! over several Redis nodes (a Redis Cluster) and every shard has its own ingester consumers.
//!
//! - An event's shard is the first two bytes of its id, modulo N. Ids are SHA-256 hashes, so the
//!   shards fill evenly, and every copy of an event (from any relay, any collector, an import or a
//!   replayed dead letter) lands on the same shard: its seen-marker there keeps it off the stream
//!   a second time.
//! - One shard (the default, `DVMDASH_STREAM_SHARDS=1`) keeps the unsplit names, `<prefix>:events`
//!   and `<prefix>:seen:<id>`. With N > 1, shard i is `<prefix>:{s<i>}:events` with markers
//!   `<prefix>:{s<i>}:seen:<id>`. The braces are a Redis Cluster hash tag: a shard's stream and its
//!   markers share a slot, so the collector's append script, which touches both, runs on one node.
//! - The count is recorded in Redis (`<prefix>:stream:shards`) by the first role that opens the
//!   streams. A writer or reader configured with another count refuses to start: it would append
//!   where no ingester reads, or read only part of the streams.
//! - The dead-letter stream stays one for all shards. Replaying puts each letter back on its
//!   event's shard.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use redis::aio::ConnectionLike;
use serde::Deserialize;

use crate::redis_keys::RedisNames;
use crate::stream::{DeadLetter, EventStream, GroupInfo, NewEntry, Sighting, push_replay};

/// Most shards a stream can be split into.
pub const MAX_SHARDS: u16 = 256;

/// The shard of an event id (hex) among `count`; an id that is not hex goes to shard 0 (the
/// ingester dead-letters it there with its reason).
pub fn shard_of(id_hex: &str, count: u16) -> u16 {
    if count <= 1 {
        return 0;
    }
    let head = id_hex.get(..4).and_then(|h| u16::from_str_radix(h, 16).ok());
    head.map_or(0, |h| h % count)
}

/// Every shard of the events stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStreams {
    shards: Vec<EventStream>,
}

impl EventStreams {
    /// The streams of a `count`-way split, without checking what Redis recorded (see
    /// [`EventStreams::open`]).
    pub fn new(names: &RedisNames, count: u16) -> Self {
        let count = count.clamp(1, MAX_SHARDS);
        EventStreams {
            shards: (0..count).map(|i| EventStream::shard(names, i, count)).collect(),
        }
    }

    /// The streams of a `count`-way split, after recording `count` in Redis if nothing is recorded
    /// yet; an error, naming both counts, when another count is recorded.
    pub async fn open<C: ConnectionLike>(
        conn: &mut C,
        names: &RedisNames,
        count: u16,
    ) -> anyhow::Result<Self> {
        if !(1..=MAX_SHARDS).contains(&count) {
            bail!("the stream shard count must be 1 to {MAX_SHARDS}, not {count}");
        }
        let key = names.stream_shards();
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(count)
            .arg("NX")
            .query_async(conn)
            .await
            .with_context(|| format!("recording the stream shard count in {key}"))?;
        match Self::recorded(conn, names).await? {
            Some(n) if n == count => Ok(Self::new(names, count)),
            Some(n) => bail!(
                "this deployment's events stream is split into {n} shards ({key} in Redis) but \
                 this process is configured for {count} (DVMDASH_STREAM_SHARDS): set it to {n} \
                 everywhere, or change the split as docs/scaling.md describes"
            ),
            None => bail!("{key} vanished right after it was recorded; is Redis being flushed?"),
        }
    }

    /// The recorded shard count, if any role recorded one. A value that is not a count is an error.
    pub async fn recorded<C: ConnectionLike>(
        conn: &mut C,
        names: &RedisNames,
    ) -> anyhow::Result<Option<u16>> {
        let key = names.stream_shards();
        let raw: Option<String> = redis::cmd("GET").arg(&key).query_async(conn).await?;
        raw.map(|r| match r.trim().parse::<u16>() {
            Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(n),
            _ => bail!("{key} holds {r:?}, not a shard count of 1 to {MAX_SHARDS}"),
        })
        .transpose()
    }

    pub fn count(&self) -> u16 {
        self.shards.len() as u16
    }

    pub fn all(&self) -> &[EventStream] {
        &self.shards
    }

    /// The shard stream an event id belongs to.
    pub fn for_id(&self, id_hex: &str) -> &EventStream {
        &self.shards[usize::from(shard_of(id_hex, self.count()))]
    }

    /// A handle for the dead-letter stream, which every shard shares.
    pub fn dead_letters(&self) -> &EventStream {
        &self.shards[0]
    }

    /// Creates the ingesters' consumer group on every shard.
    pub async fn ensure_groups<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<()> {
        for s in &self.shards {
            s.ensure_group(conn).await?;
        }
        Ok(())
    }

    /// [`EventStream::append_new`] on each event's shard, one script call per shard touched;
    /// `true` per appended event, in the order given.
    pub async fn append_new<C: ConnectionLike>(
        &self,
        conn: &mut C,
        events: &[NewEntry<'_>],
        seen_ttl_secs: u64,
        maxlen: u64,
    ) -> redis::RedisResult<Vec<bool>> {
        if let [only] = self.shards.as_slice() {
            return only.append_new(conn, events, seen_ttl_secs, maxlen).await;
        }
        let mut flags = vec![false; events.len()];
        for (shard, at) in self.group(events.iter().map(|e| e.id_hex)) {
            let part: Vec<NewEntry<'_>> = at.iter().map(|&i| events[i]).collect();
            let added = self.shards[shard]
                .append_new(conn, &part, seen_ttl_secs, maxlen)
                .await?;
            for (i, a) in at.into_iter().zip(added) {
                flags[i] = a;
            }
        }
        Ok(flags)
    }

    /// [`EventStream::append_sightings`], each sighting on its event's shard.
    pub async fn append_sightings<C: ConnectionLike>(
        &self,
        conn: &mut C,
        sightings: &[Sighting],
        maxlen: u64,
    ) -> redis::RedisResult<()> {
        if let [only] = self.shards.as_slice() {
            return only.append_sightings(conn, sightings, maxlen).await;
        }
        for (shard, at) in self.group(sightings.iter().map(|s| s.0.as_str())) {
            let part: Vec<Sighting> = at.into_iter().map(|i| sightings[i].clone()).collect();
            self.shards[shard].append_sightings(conn, &part, maxlen).await?;
        }
        Ok(())
    }

    /// [`EventStream::append_each`] (deduplicated events, capped), each on its event's shard.
    pub async fn append_each<C: ConnectionLike>(
        &self,
        conn: &mut C,
        entries: &[NewEntry<'_>],
    ) -> redis::RedisResult<()> {
        for (shard, at) in self.group(entries.iter().map(|e| e.id_hex)) {
            let part: Vec<NewEntry<'_>> = at.iter().map(|&i| entries[i]).collect();
            self.shards[shard].append_each(conn, &part).await?;
        }
        Ok(())
    }

    /// The backlog over every shard: lengths, pending and lag summed (lag only when every shard
    /// reports one); the last delivery only for an unsplit stream.
    pub async fn group_info<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<GroupInfo> {
        let mut total = GroupInfo {
            lag: Some(0),
            ..GroupInfo::default()
        };
        for s in &self.shards {
            let info = s.group_info(conn).await?;
            total.length += info.length;
            total.pending += info.pending;
            total.lag = total.lag.zip(info.lag).map(|(a, b)| a + b);
            if self.shards.len() == 1 {
                total.last_delivered = info.last_delivered;
            }
        }
        Ok(total)
    }

    /// Puts dead letters back, each on the shard of its event (a sightings letter on the shard of
    /// its first sighting), then removes them from the dead-letter stream. A crash in between
    /// leaves them in both, and the ingester's gate stores a repeated event once. Letters with
    /// nothing to put back stay. Returns the ids replayed.
    pub async fn replay_dead_letters<C: ConnectionLike>(
        &self,
        conn: &mut C,
        letters: &[DeadLetter],
    ) -> redis::RedisResult<Vec<String>> {
        let replayable: Vec<&DeadLetter> = letters.iter().filter(|l| l.replayable()).collect();
        if replayable.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for l in &replayable {
            let shard = shard_of(&letter_event_id(l).unwrap_or_default(), self.count());
            push_replay(&mut pipe, self.shards[usize::from(shard)].key(), l);
        }
        pipe.query_async::<()>(conn).await?;
        let ids: Vec<String> = replayable.iter().map(|l| l.id.clone()).collect();
        self.dead_letters().discard_dead_letters(conn, &ids).await?;
        Ok(ids)
    }

    /// Positions of `ids` grouped by shard, in shard order; positions keep their order.
    fn group<'a>(&self, ids: impl Iterator<Item = &'a str>) -> BTreeMap<usize, Vec<usize>> {
        let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, id) in ids.enumerate() {
            let shard = usize::from(shard_of(id, self.count()));
            by_shard.entry(shard).or_default().push(i);
        }
        by_shard
    }
}

/// The `id` of an event's JSON, without parsing the rest; `None` when it is not JSON with a string
/// id. What routes an entry whose id is not at hand (an archive line, a dead letter) to its shard.
pub fn event_id_in(json: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(json).ok().map(|e| e.id)
}

/// The id of a dead letter's event, or of its first sighting; `None` when it holds neither in a
/// readable form.
fn letter_event_id(l: &DeadLetter) -> Option<String> {
    if let Some(event) = &l.fields.event {
        return event_id_in(event);
    }
    let sightings: Vec<Sighting> = serde_json::from_slice(l.fields.sightings.as_deref()?).ok()?;
    sightings.into_iter().next().map(|s| s.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Fields;

    #[test]
    fn one_shard_keeps_the_unsplit_names() {
        let names = RedisNames::new("p");
        let one = EventStreams::new(&names, 1);
        assert_eq!(one.all().len(), 1);
        assert_eq!(one.for_id("ffff").key(), "p:events");
        assert_eq!(one.dead_letters().dead_letter_key(), "p:events:dlq");
        let four = EventStreams::new(&names, 4);
        let keys: Vec<&str> = four.all().iter().map(EventStream::key).collect();
        assert_eq!(
            keys,
            ["p:{s0}:events", "p:{s1}:events", "p:{s2}:events", "p:{s3}:events"]
        );
        assert!(four.all().iter().all(|s| s.dead_letter_key() == "p:events:dlq"));
    }

    #[test]
    fn the_shard_is_the_ids_first_two_bytes_modulo_the_count() {
        assert_eq!(shard_of("0005abcd", 4), 1);
        assert_eq!(shard_of("ffff", 4), 3);
        assert_eq!(shard_of("0102", 256), 2);
        assert_eq!(shard_of("ABCD", 7), 0xabcd % 7);
        // Anything that is not an id goes to shard 0, never panics.
        for junk in ["", "z", "zzzz", "é€", "12"] {
            assert_eq!(shard_of(junk, 4), 0, "{junk:?}");
        }
        assert_eq!(shard_of("ffff", 1), 0);
        assert_eq!(shard_of("ffff", 0), 0);
    }

    #[test]
    fn ids_spread_evenly_over_the_shards() {
        use sha2::Digest as _;
        let mut per = [0u32; 4];
        for i in 0..40_000u32 {
            let id = hex::encode(sha2::Sha256::digest(i.to_le_bytes()));
            per[usize::from(shard_of(&id, 4))] += 1;
        }
        assert!(per.iter().all(|&n| (9_500..=10_500).contains(&n)), "{per:?}");
    }

    #[test]
    fn a_letter_is_routed_by_its_event_or_first_sighting() {
        let mut l = DeadLetter {
            id: "1-0".into(),
            original_id: "1-0".into(),
            reason: "r".into(),
            fields: Fields {
                event: Some(br#"{"id":"00ff","kind":1}"#.to_vec()),
                ..Fields::default()
            },
        };
        assert_eq!(letter_event_id(&l).as_deref(), Some("00ff"));
        l.fields.event = Some(b"not json".to_vec());
        assert_eq!(letter_event_id(&l), None);
        l.fields.event = None;
        l.fields.sightings = Some(br#"[["abcd","wss://r",1,"p",1,2]]"#.to_vec());
        assert_eq!(letter_event_id(&l).as_deref(), Some("abcd"));
        l.fields.sightings = Some(b"[]".to_vec());
        assert_eq!(letter_event_id(&l), None);
    }
}
