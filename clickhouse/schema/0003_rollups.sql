-- Rollups fed from events_raw by materialized views. Each event reaches events_raw once (see
-- 0002), so plain sums are exact. job_kind: a request's kind, a result's request kind (from its
-- request tag, else kind - 1000), 0 for everything else (feedback does not name its job kind).

-- Hourly counts per author: windows of 24h, 7d and 30d read whole hours here and the partial first
-- hour from events_raw. Kept 400 days.
CREATE TABLE IF NOT EXISTS stats_hourly
(
    hour     DateTime('UTC'),
    role     LowCardinality(String),
    job_kind UInt16,
    pubkey   FixedString(32),
    events   SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, role, job_kind, pubkey)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS stats_hourly_mv TO stats_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    role,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    pubkey,
    count() AS events
FROM events_raw
GROUP BY hour, role, job_kind, pubkey;

-- Requests addressed to a DVM with a p tag, per hour.
CREATE TABLE IF NOT EXISTS directed_hourly
(
    hour     DateTime('UTC'),
    target   FixedString(32),
    job_kind UInt16,
    requests SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, target, job_kind)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS directed_hourly_mv TO directed_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    arrayJoin(targets) AS target,
    kind AS job_kind,
    count() AS requests
FROM events_raw
WHERE role = 'request' AND notEmpty(targets)
GROUP BY hour, target, job_kind;

-- First and last activity of every author, per role and job kind, kept forever: DVM and customer
-- first/last seen, served kinds, supporting DVMs, what's new.
CREATE TABLE IF NOT EXISTS activity
(
    role       LowCardinality(String),
    pubkey     FixedString(32),
    job_kind   UInt16,
    first_seen SimpleAggregateFunction(min, DateTime('UTC')),
    last_seen  SimpleAggregateFunction(max, DateTime('UTC')),
    events     SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (role, pubkey, job_kind)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS activity_mv TO activity AS
SELECT
    role,
    pubkey,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    min(created_at) AS first_seen,
    max(created_at) AS last_seen,
    count() AS events
FROM events_raw
GROUP BY role, pubkey, job_kind;

-- NIP-89 announcements and kind-0 profiles, newest per address (pubkey, kind, d), kept forever.
CREATE TABLE IF NOT EXISTS announcements
(
    pubkey          FixedString(32),
    kind            UInt16,
    d_tag           String,
    created_at      DateTime('UTC'),
    event_id        FixedString(32),
    content         String,
    announced_kinds Array(UInt16)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (pubkey, kind, d_tag)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS announcements_mv TO announcements AS
SELECT pubkey, kind, d_tag, created_at, event_id, content, announced_kinds
FROM events_raw
WHERE role IN ('announcement', 'profile');

-- Monthly counts per author, kept forever (events_raw keeps 30 days; this keeps the history).
CREATE TABLE IF NOT EXISTS stats_monthly
(
    month    Date,
    role     LowCardinality(String),
    job_kind UInt16,
    pubkey   FixedString(32),
    events   SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (month, role, job_kind, pubkey)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS stats_monthly_mv TO stats_monthly AS
SELECT
    toStartOfMonth(created_at) AS month,
    role,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    pubkey,
    count() AS events
FROM events_raw
GROUP BY month, role, job_kind, pubkey;
