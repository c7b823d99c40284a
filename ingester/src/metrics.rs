//! Every metric the ingester emits (listed in docs/telemetry.md).

pub const EVENTS_INSERTED: &str = "dvmdash_ingester_events_inserted_total";
pub const BATCHES: &str = "dvmdash_ingester_batches_total";
pub const INSERT_FAILURES: &str = "dvmdash_ingester_insert_failures_total";
pub const INSERT_SECONDS: &str = "dvmdash_ingester_insert_seconds";
pub const BATCH_EVENTS: &str = "dvmdash_ingester_batch_events";
pub const LAST_SUCCESS: &str = "dvmdash_ingester_last_success_timestamp_seconds";
pub const DEAD_LETTERED: &str = "dvmdash_ingester_dead_lettered_total";
pub const TRIMMED: &str = "dvmdash_ingester_trimmed_entries_total";
pub const DUPLICATES: &str = "dvmdash_ingester_batch_duplicates_total";
pub const ALREADY_STORED: &str = "dvmdash_ingester_already_stored_total";
pub const CLAIMED: &str = "dvmdash_ingester_claimed_entries_total";
pub const LATENCY_SECONDS: &str = "dvmdash_ingester_collect_to_store_seconds";
pub const STREAM_LENGTH: &str = "dvmdash_stream_length_entries";
pub const STREAM_PENDING: &str = "dvmdash_stream_pending_entries";
pub const STREAM_LAG: &str = "dvmdash_stream_lag_entries";
pub const SIGHTINGS_INSERTED: &str = "dvmdash_ingester_relay_sightings_inserted_total";
pub const BATCHES_COMPLETED: &str = "dvmdash_ingester_partial_batches_completed_total";
pub const NEWEST_EVENT_AGE: &str = "dvmdash_ingester_newest_event_age_seconds";
pub const OLDEST_PENDING_AGE: &str = "dvmdash_stream_oldest_pending_age_seconds";

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(EVENTS_INSERTED, "rows inserted into events_raw");
    describe_gauge!(
        NEWEST_EVENT_AGE,
        Unit::Seconds,
        "now minus the newest created_at this ingester stored (ingestion lag; grows when nothing new arrives)"
    );
    describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "age of the oldest entry delivered to the ingesters and not yet acknowledged (0 when none)"
    );
    describe_counter!(BATCHES, "batches inserted and acknowledged");
    describe_counter!(
        INSERT_FAILURES,
        "failed ClickHouse inserts (the batch is retried, never dropped)"
    );
    describe_histogram!(
        INSERT_SECONDS,
        Unit::Seconds,
        "duration of one batch's exactly-once check and insert"
    );
    describe_histogram!(BATCH_EVENTS, "stream entries per batch");
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "unix time of the last successful insert"
    );
    describe_counter!(DEAD_LETTERED, "entries moved to the dead-letter stream");
    describe_counter!(
        TRIMMED,
        "pending entries whose data was trimmed from the stream before ingest (lost)"
    );
    describe_counter!(DUPLICATES, "entries repeating an event already in the same batch");
    describe_counter!(
        SIGHTINGS_INSERTED,
        "(event, relay) deliveries recorded in event_relays"
    );
    describe_counter!(
        ALREADY_STORED,
        "events of a batch skipped because they were stored before (replays, late copies)"
    );
    describe_counter!(CLAIMED, "entries taken over from idle consumers");
    describe_counter!(
        BATCHES_COMPLETED,
        "failed inserts found partly committed and completed table by table"
    );
    describe_histogram!(
        LATENCY_SECONDS,
        Unit::Seconds,
        "from a collector seeing the oldest event of a batch to its insert"
    );
    describe_gauge!(STREAM_LENGTH, "entries in the events stream");
    describe_gauge!(
        STREAM_PENDING,
        "entries delivered to ingesters but not acknowledged"
    );
    describe_gauge!(STREAM_LAG, "entries not yet delivered to the ingester group");
    // Counters exist from the start, so `increase()` sees their first event, and histograms show
    // their buckets at zero before the first batch.
    for name in [
        EVENTS_INSERTED,
        BATCHES,
        SIGHTINGS_INSERTED,
        INSERT_FAILURES,
        DEAD_LETTERED,
        TRIMMED,
        CLAIMED,
        DUPLICATES,
        ALREADY_STORED,
        BATCHES_COMPLETED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for name in [INSERT_SECONDS, BATCH_EVENTS, LATENCY_SECONDS] {
        let _ = metrics::histogram!(name);
    }
}
