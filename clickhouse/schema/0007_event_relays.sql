-- Which relays delivered each event: one row per (event, relay), written by the ingester for the
-- delivery that brought the event and for every later delivery by another relay (a sighting,
-- which stores nothing else). Coverage and reachability read it: per DVM the relays its events
-- appear on, per relay how many events it carried and how many no other watched relay carried.
-- Rows repeat when a batch is retried; readers count distinct (event_id, relay).
CREATE TABLE IF NOT EXISTS event_relays
(
    event_id   FixedString(32),
    relay      LowCardinality(String),
    pubkey     FixedString(32),
    kind       UInt16,
    created_at DateTime('UTC'),
    seen_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (event_id, relay)
TTL toDateTime(seen_at) + INTERVAL 30 DAY DELETE
SETTINGS ttl_only_drop_parts = 1;
