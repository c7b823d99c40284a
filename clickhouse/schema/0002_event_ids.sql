-- Every event id ever stored, keyed by the day of its created_at. The ingester checks each batch
-- against it (reading only the days the batch touches) so an event enters events_raw, and every
-- rollup fed from events_raw, exactly once. Kept forever: replaying an old archive must not count
-- anything twice in the monthly history.
CREATE TABLE IF NOT EXISTS event_ids
(
    day      Date,
    event_id FixedString(32)
)
ENGINE = ReplacingMergeTree
ORDER BY (day, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
SELECT toDate(created_at) AS day, event_id
FROM events_raw;
