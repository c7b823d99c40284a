//! Redis key and stream names, in one place so every role agrees on them.
//!
//! All keys share a prefix (default `dvmdash`), which lets tests and several deployments share one
//! Redis without seeing each other's data.

/// The names of every Redis key dvmdash uses, derived from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisNames {
    prefix: String,
}

impl Default for RedisNames {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

pub const DEFAULT_PREFIX: &str = "dvmdash";

/// Consumer group of the ingesters on the events stream.
pub const INGESTER_GROUP: &str = "ingester";

/// Stream entry fields: the event JSON, the relay that delivered it, and when (unix ms).
pub const FIELD_EVENT: &str = "e";
pub const FIELD_RELAY: &str = "r";
pub const FIELD_SEEN_MS: &str = "t";
/// Stream entry field of a sightings entry: later deliveries of stored events, as JSON.
pub const FIELD_SIGHTINGS: &str = "s";
/// Dead-letter entry fields: the original stream id and fields, plus the reason.
pub const FIELD_REASON: &str = "reason";
pub const FIELD_ORIGINAL_ID: &str = "id";

impl RedisNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        RedisNames {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The stream of verified events, collector -> ingester.
    pub fn events_stream(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Shard `i` of the events stream split `count` ways (`crate::stream_shards`). One shard keeps
    /// the unsplit name; with more, the braces are a Redis Cluster hash tag that puts a shard's
    /// stream and its seen-markers in one slot.
    pub fn events_shard(&self, i: u16, count: u16) -> String {
        if count <= 1 {
            self.events_stream()
        } else {
            format!("{}:{{s{i}}}:events", self.prefix)
        }
    }

    /// What every seen-marker of shard `i` of `count` starts with: the marker of an event id put on
    /// the stream (`SET NX EX`) is this plus the id.
    pub fn seen_prefix(&self, i: u16, count: u16) -> String {
        if count <= 1 {
            format!("{}:seen:", self.prefix)
        } else {
            format!("{}:{{s{i}}}:seen:", self.prefix)
        }
    }

    /// How many shards the events stream is split into, recorded by the first role that opened it.
    pub fn stream_shards(&self) -> String {
        format!("{}:stream:shards", self.prefix)
    }

    /// Where entries the ingester cannot process go, with their reason (one for every shard).
    pub fn dead_letter_stream(&self) -> String {
        format!("{}:events:dlq", self.prefix)
    }

    /// The relay registry: hash of relay URL -> JSON [`crate::dto::RelayEntry`].
    pub fn relays(&self) -> String {
        format!("{}:relays", self.prefix)
    }

    /// Relay URLs ever seeded from configuration: a set, so a relay an operator removed is not
    /// seeded back by the next coordinator start, while a wiped Redis is seeded afresh.
    pub fn relays_seeded(&self) -> String {
        format!("{}:relays:seeded", self.prefix)
    }

    /// Live collectors: sorted set of collector id scored by last heartbeat (unix ms).
    pub fn collectors(&self) -> String {
        format!("{}:collectors", self.prefix)
    }

    /// One collector's self-description and per-relay state (hash, expires with the collector).
    pub fn collector(&self, id: &str) -> String {
        format!("{}:collector:{}", self.prefix, id)
    }

    /// Relay assignments: hash of collector id -> JSON list of relay URLs.
    pub fn assignments(&self) -> String {
        format!("{}:assignments", self.prefix)
    }

    /// Newest `created_at` each relay delivered (hash of URL -> unix s): where collection resumes.
    pub fn resume_points(&self) -> String {
        format!("{}:resume", self.prefix)
    }

    /// Bumped by the ingester after every insert; the api recomputes cached answers older than it.
    pub fn data_version(&self) -> String {
        format!("{}:data:version", self.prefix)
    }

    /// The request hours (`h<unix hour>`) and request ids (`r<hex>`) inserts touched since the
    /// job finalizer last linked them (`crate::job_ledger`).
    pub fn job_touches(&self) -> String {
        format!("{}:{{jobs}}:touched", self.prefix)
    }

    /// The touches the finalizer took and is linking (moved out of [`Self::job_touches`] in one
    /// step, so a touch recorded meanwhile is kept for the next pass); kept until the pass
    /// completes, so a crashed pass is redone. Same hash slot as the touch set.
    pub fn job_touches_linking(&self) -> String {
        format!("{}:{{jobs}}:linking", self.prefix)
    }

    /// Present while the touch set is complete since the ledger's last full linking; missing
    /// after a first start or a lost Redis, which makes the finalizer relink everything.
    pub fn jobs_linked(&self) -> String {
        format!("{}:jobs:linked", self.prefix)
    }

    /// The answers inserts stored since the job finalizer last counted them
    /// (`a<dvm hex><request hex><created_at>`), and those it took and is counting; same hash slot
    /// as the touch set.
    pub fn job_answers(&self) -> (String, String) {
        (
            format!("{}:{{jobs}}:answers", self.prefix),
            format!("{}:{{jobs}}:answers:linking", self.prefix),
        )
    }

    /// Held by the one job finalizer of a deployment.
    pub fn jobs_lease(&self) -> String {
        format!("{}:jobs:lease", self.prefix)
    }

    /// Held while an ingester completes an insert that failed after part of it was committed:
    /// the repair goes through one scratch table (`events_raw_repair`), so repairs take turns.
    /// Inserts themselves take no lock across shards (see the ingester's `recovery`).
    pub fn repair_lock(&self) -> String {
        format!("{}:ingest:repair-lock", self.prefix)
    }

    /// Held by the ingester that checks a batch of shard `i` of `count` against every id stored
    /// and inserts it (the exactly-once gate). An event is only ever on its own shard, so checks of
    /// different shards cannot pass the same id and need not wait for each other.
    pub fn gate_lock(&self, i: u16, count: u16) -> String {
        if count <= 1 {
            format!("{}:gate:lock", self.prefix)
        } else {
            format!("{}:{{s{i}}}:gate:lock", self.prefix)
        }
    }

    /// Unix seconds when a collector of this deployment first watched the live-only kinds
    /// (ContextVM messages); their counts start there.
    pub fn live_watch_since(&self) -> String {
        format!("{}:live:since", self.prefix)
    }

    /// Admin changes, newest first (a capped list of JSON entries).
    pub fn admin_audit(&self) -> String {
        format!("{}:admin:audit", self.prefix)
    }

    /// Every relay's counters added during the hour starting at `hour_start` (unix s), a hash
    /// of `"<counter> <relay url>"` to a count (`core::relay_counts`).
    pub fn relay_counts(&self, hour_start: u64) -> String {
        format!("{}:relays:hourly:{hour_start}", self.prefix)
    }

    /// The coordinator leader lease.
    pub fn coordinator_leader(&self) -> String {
        format!("{}:coordinator:leader", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix() {
        let n = RedisNames::new("t1");
        assert_eq!(n.events_stream(), "t1:events");
        assert_eq!(n.dead_letter_stream(), "t1:events:dlq");
        assert_eq!(n.relays(), "t1:relays");
        assert_eq!(n.collector("c1"), "t1:collector:c1");
        assert_eq!(RedisNames::default().events_stream(), "dvmdash:events");
        assert_eq!(n.events_shard(0, 1), "t1:events");
        assert_eq!(n.seen_prefix(0, 1), "t1:seen:");
        assert_eq!(n.events_shard(3, 4), "t1:{s3}:events");
        assert_eq!(n.seen_prefix(3, 4), "t1:{s3}:seen:");
        // A shard's gate lock shares its stream's hash tag; the repair lock is one for all.
        assert_eq!(n.gate_lock(0, 1), "t1:gate:lock");
        assert_eq!(n.gate_lock(3, 4), "t1:{s3}:gate:lock");
        assert_eq!(n.repair_lock(), "t1:ingest:repair-lock");
    }
}
