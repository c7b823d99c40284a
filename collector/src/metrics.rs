//! Every metric the collector emits (listed in docs/telemetry.md). Relay labels come only from the
//! relay set the collector was given, so their number stays bounded.

pub const EVENTS_RECEIVED: &str = "dvmdash_collector_events_received_total";
pub const EVENTS_ACCEPTED: &str = "dvmdash_collector_events_accepted_total";
pub const DUPLICATES: &str = "dvmdash_collector_duplicates_total";
pub const SIGHTINGS: &str = "dvmdash_collector_sightings_total";
pub const REJECTED: &str = "dvmdash_collector_events_rejected_total";
pub const RELAY_CONNECTED: &str = "dvmdash_relay_connected";
pub const RECONNECTS: &str = "dvmdash_collector_reconnects_total";
pub const EOSE_SECONDS: &str = "dvmdash_collector_eose_seconds";
pub const LAST_EVENT: &str = "dvmdash_collector_last_event_timestamp_seconds";
pub const NOTICES: &str = "dvmdash_collector_relay_notices_total";
pub const STREAM_WRITTEN: &str = "dvmdash_collector_stream_written_total";
pub const STREAM_WRITE_FAILURES: &str = "dvmdash_collector_stream_write_failures_total";
pub const STREAM_WRITE_SECONDS: &str = "dvmdash_collector_stream_write_seconds";
pub const SINK_QUEUE: &str = "dvmdash_collector_sink_queue_events";
/// Counted in microseconds (a counter of whole units); the name says what it measures.
pub const BACKPRESSURE: &str = "dvmdash_collector_backpressure_microseconds_total";

pub const PAGING_SPLIT_SECONDS: &str = "dvmdash_collector_paging_split_seconds_total";
pub const PAGING_UNRESOLVED_SECONDS: &str = "dvmdash_collector_paging_unresolved_seconds_total";
/// Passes after the first backfill, by `method`: `negentropy` (NIP-77) or `req` (paging).
pub const PASSES: &str = "dvmdash_collector_passes_total";
/// Reconciliations a relay refused, failed or left unanswered (the pass then paged).
pub const NEGENTROPY_FAILURES: &str = "dvmdash_collector_negentropy_failures_total";

/// Reject reason for a frame that is not a valid relay message at all.
pub const MALFORMED_MESSAGE: &str = "malformed_message";

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        EVENTS_RECEIVED,
        "EVENT messages received, per relay, before any check"
    );
    describe_counter!(
        EVENTS_ACCEPTED,
        "verified events first seen by this collector and queued for the stream"
    );
    describe_counter!(
        DUPLICATES,
        "events dropped as already seen, by relay and layer (memory, redis)"
    );
    describe_counter!(
        SIGHTINGS,
        "deliveries of events already on the stream, appended as sightings for relay coverage"
    );
    describe_counter!(REJECTED, "events or messages refused, by relay and reason");
    describe_gauge!(
        RELAY_CONNECTED,
        "1 while the websocket to the relay is open and subscribed"
    );
    describe_counter!(RECONNECTS, "connection attempts after the first, per relay");
    describe_histogram!(
        EOSE_SECONDS,
        Unit::Seconds,
        "time from REQ to EOSE of the stored-events phase"
    );
    describe_gauge!(
        LAST_EVENT,
        Unit::Seconds,
        "unix time of the last accepted event from the relay"
    );
    describe_counter!(NOTICES, "NOTICE and CLOSED messages received from the relay");
    describe_counter!(STREAM_WRITTEN, "events appended to the Redis stream");
    describe_counter!(
        STREAM_WRITE_FAILURES,
        "failed Redis writes (retried, nothing dropped)"
    );
    describe_histogram!(
        STREAM_WRITE_SECONDS,
        Unit::Seconds,
        "duration of one batched stream write"
    );
    describe_gauge!(SINK_QUEUE, "verified events waiting for the Redis writer");
    describe_counter!(
        BACKPRESSURE,
        Unit::Microseconds,
        "time relay reading waited on a full queue to the stream writer (nothing is dropped)"
    );
    describe_counter!(
        PAGING_SPLIT_SECONDS,
        "seconds of a relay's stored events read again kind by kind because one page could not hold them"
    );
    describe_counter!(
        PAGING_UNRESOLVED_SECONDS,
        "seconds in which one kind alone filled a page: some of their events may be missing"
    );
    describe_counter!(
        PASSES,
        "passes over stored events after the first backfill, by method: negentropy (NIP-77) or req (paging)"
    );
    describe_counter!(
        NEGENTROPY_FAILURES,
        "NIP-77 reconciliations a relay refused, failed or left unanswered (the pass then paged)"
    );
    for name in [STREAM_WRITTEN, STREAM_WRITE_FAILURES, SIGHTINGS] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!(SINK_QUEUE).set(0.0);
    let _ = metrics::histogram!(STREAM_WRITE_SECONDS);
}

/// Creates every per-relay series at zero when the collector starts watching a relay, so a scrape
/// shows the relay's counters before their first increment: rates and alerts see a series from
/// the start instead of missing the first event, and dashboards show 0 instead of "no data".
/// The last-event time stays absent until an event arrives (0 would read as "55 years ago").
pub fn init_relay(relay: &str) {
    use metrics::{counter, gauge, histogram};
    let r = || relay.to_owned();
    for name in [
        EVENTS_RECEIVED,
        EVENTS_ACCEPTED,
        RECONNECTS,
        NOTICES,
        BACKPRESSURE,
        PAGING_SPLIT_SECONDS,
        PAGING_UNRESOLVED_SECONDS,
        NEGENTROPY_FAILURES,
    ] {
        counter!(name, "relay" => r()).increment(0);
    }
    for layer in ["memory", "redis"] {
        counter!(DUPLICATES, "relay" => r(), "layer" => layer).increment(0);
    }
    for method in ["negentropy", "req"] {
        counter!(PASSES, "relay" => r(), "method" => method).increment(0);
    }
    let reasons = dvmdash_core::validate::Rejection::ALL.map(|r| r.as_str());
    for reason in reasons.iter().copied().chain([MALFORMED_MESSAGE]) {
        counter!(REJECTED, "relay" => r(), "reason" => reason).increment(0);
    }
    gauge!(RELAY_CONNECTED, "relay" => r()).set(0.0);
    // Registering a histogram exposes its buckets at zero.
    let _ = histogram!(EOSE_SECONDS, "relay" => r());
}
