-- The job ledger: jobs linked once, then read by the api instead of joining raw events per query.
--
-- Linking a request to its answers needs raw events (an answer can arrive hours after its
-- request), so no materialized view can do it at insert time. The ingester's job finalizer
-- (core/src/job_ledger.rs) relinks the hours of requests that new events touched, a few seconds
-- after they land, and writes the result here under a new version. Every row is a pure function of
-- the events stored: nothing in it depends on the time it was computed. Whether a quiet job has
-- timed out is decided when the api reads it, from the request times kept for that purpose.
--
-- hour is the request's created_at hour. Each table is a ReplacingMergeTree(version) keyed by the
-- hour and its group, so relinking an hour replaces its rows; readers use FINAL (the tables are
-- small, and the ledger is read one hour at a time).

-- One row per request (dvm all zero) and one per (request, DVM that sent it feedback or a result).
CREATE TABLE IF NOT EXISTS job_ledger
(
    hour          DateTime('UTC'),
    request_id    FixedString(32),
    dvm           FixedString(32),
    version       UInt64,
    kind          UInt16,
    requested_at  UInt32,
    -- deleted by its author (NIP-09)
    withdrawn     Bool,
    -- DVMs that sent a result
    responders    UInt32,
    -- request row: the p tags, those that never answered, whether anyone answered
    targets       Array(FixedString(32)),
    missed        Array(FixedString(32)),
    answered      Bool,
    -- DVM rows: what the DVM sent; latencies in seconds from the request, never negative
    has_fb        Bool,
    fb_lat        UInt32,
    has_res       Bool,
    res_lat       UInt32,
    -- 5 success, 4 partial, 3 error, 2 payment-required, 1 processing (see 0004_jobs.sql)
    strength      UInt8,
    -- the earliest result (ties to the lowest pubkey)
    winner        Bool,
    -- one per error feedback event with a reason
    error_reasons Array(String)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, request_id, dvm)
TTL hour + INTERVAL 32 DAY;

-- Per request hour, kind and DVM: the latency histograms and outcome counts of the performance
-- endpoint. quiet_*: request times of jobs whose outcome waits on the timeout.
CREATE TABLE IF NOT EXISTS job_perf_hourly
(
    hour       DateTime('UTC'),
    kind       UInt16,
    dvm        FixedString(32),
    version    UInt64,
    jobs       UInt64,
    fb_count   UInt64,
    fb_lat     Array(UInt32),
    fb_n       Array(UInt64),
    res_count  UInt64,
    res_lat    Array(UInt32),
    res_n      Array(UInt64),
    success    UInt64,
    partial    UInt64,
    error      UInt64,
    cancelled  UInt64,
    quiet_pr   Array(UInt32),
    quiet_proc Array(UInt32)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, kind, dvm)
TTL hour + INTERVAL 32 DAY;

-- Per request hour, kind, DVM and reason: error feedback events.
CREATE TABLE IF NOT EXISTS job_errors_hourly
(
    hour    DateTime('UTC'),
    kind    UInt16,
    dvm     FixedString(32),
    reason  String,
    version UInt64,
    events  UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, kind, dvm, reason)
TTL hour + INTERVAL 32 DAY;

-- Per request hour and kind: requests (their times, for the timeout), those nobody answered,
-- directed and open ones, and how many DVMs sent a result.
CREATE TABLE IF NOT EXISTS job_kind_hourly
(
    hour       DateTime('UTC'),
    kind       UInt16,
    version    UInt64,
    requested  Array(UInt32),
    unanswered Array(UInt32),
    directed   UInt64,
    open       UInt64,
    one        UInt64,
    two        UInt64,
    more       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, kind)
TTL hour + INTERVAL 32 DAY;

-- Per request hour, DVM named in a p tag and request kind: the times of the requests naming it
-- and of those it never answered.
CREATE TABLE IF NOT EXISTS job_directed_hourly
(
    hour     DateTime('UTC'),
    target   FixedString(32),
    kind     UInt16,
    version  UInt64,
    directed Array(UInt32),
    missed   Array(UInt32)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, target, kind)
TTL hour + INTERVAL 32 DAY;

-- Per request hour and DVM that sent a result: results, first results, contested ones and wins.
CREATE TABLE IF NOT EXISTS job_competition_hourly
(
    hour           DateTime('UTC'),
    dvm            FixedString(32),
    version        UInt64,
    with_result    UInt64,
    firsts         UInt64,
    contested      UInt64,
    contested_wins UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dvm)
TTL hour + INTERVAL 32 DAY;

-- The moments the finalizer's work is complete to, one row per step: clock 'jobs' (every event
-- stored before it is linked into the tables above) and 'answers' (every answer stored before it
-- is counted in answered_pairs, 0010). The api reads max(as_of) of the clock it needs.
CREATE TABLE IF NOT EXISTS job_ledger_clock
(
    clock   LowCardinality(String),
    as_of   UInt32,
    version UInt64
)
ENGINE = MergeTree
ORDER BY (clock, as_of)
TTL toDateTime(as_of) + INTERVAL 1 DAY;
