-- Raw events: one row per delivered copy, collapsed by event id (ReplacingMergeTree and query-time
-- uniqExact/FINAL). Lifecycle follows ingest time (received_at): created_at is chosen by the
-- author, and back-dated events or imported archives must still live 30 days here.
-- The sorting key holds only values fixed by the event, so copies delivered at different times
-- still collapse.
CREATE TABLE IF NOT EXISTS events_raw
(
    event_id        FixedString(32),
    pubkey          FixedString(32),
    kind            UInt16,
    created_at      DateTime('UTC'),
    received_at     DateTime64(3, 'UTC'),
    relay           LowCardinality(String),
    role            LowCardinality(String),
    -- results and feedback: the request answered; zero bytes when unknown
    request_id      FixedString(32),
    -- requests: own kind; results: the request kind; 0 when unknown
    request_kind    UInt16,
    -- results and feedback: the customer; zero bytes when unknown
    customer        FixedString(32),
    -- requests: the DVMs asked (p tags); empty = open request
    targets         Array(FixedString(32)),
    status          LowCardinality(String),
    status_reason   String,
    amount_msat     Nullable(UInt64),
    bid_msat        Nullable(UInt64),
    bolt11          String,
    encrypted       Bool,
    client          LowCardinality(String),
    job_inputs      Array(FixedString(32)),
    relay_hints     Array(String),
    announced_kinds Array(UInt16),
    d_tag           String,
    -- bit flags of spec deviations (core/src/nip90.rs, module deviation)
    deviations      UInt32,
    -- the event as signed, so it can be exported and re-verified
    tags            String,
    content         String,
    sig             String
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(received_at)
ORDER BY (kind, toStartOfHour(created_at), event_id)
TTL toDateTime(received_at) + INTERVAL 30 DAY DELETE
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
