-- Lanes: inserts of different stream shards no longer wait for each other.
--
-- An insert into events_raw commits a part in events_raw and in every view's target, one after
-- another; when it fails midway the ingester finds what landed from the block numbers that appeared
-- since it began (ingester/src/recovery.rs). That is exact only if nothing else wrote those
-- partitions meanwhile, so every insert used to take one lock. Now each row carries the lane it was
-- inserted by (the shard index of its stream; one writer per lane at a time, under the shard's gate
-- lock), and every summing rollup is partitioned by it, so a lane's partitions have one writer and
-- their new parts are that writer's. events_raw keeps its partitions: what landed there is read from
-- the batch's own ids. Tables that keep the newest row per key (event_ids, announcements) are
-- written again whole by a repair, so they need no lane.
--
-- The four rollups are rebuilt with the new partitioning (their rows keep lane 0). Stop the
-- ingesters while this runs (docs/operations.md, "Upgrades"): between dropping a rollup's view and
-- creating it again an insert would miss that rollup. Each rollup's steps start by dropping what an
-- interrupted earlier run left, so running this again after a failure is safe. The copies are not
-- deduplicated: two equal blocks of rollup rows are both real.

ALTER TABLE events_raw ADD COLUMN IF NOT EXISTS lane UInt8 DEFAULT 0;
ALTER TABLE events_raw_repair ADD COLUMN IF NOT EXISTS lane UInt8 DEFAULT 0;

-- stats_hourly, as in 0003 plus the lane.
DROP TABLE IF EXISTS stats_hourly_lanes;
DROP VIEW IF EXISTS stats_hourly_mv;
CREATE TABLE IF NOT EXISTS stats_hourly_lanes
(
    hour     DateTime('UTC'),
    role     LowCardinality(String),
    job_kind UInt16,
    pubkey   FixedString(32),
    events   SimpleAggregateFunction(sum, UInt64),
    lane     UInt8
)
ENGINE = AggregatingMergeTree
PARTITION BY (toYYYYMM(hour), lane)
ORDER BY (hour, role, job_kind, pubkey)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
INSERT INTO stats_hourly_lanes (hour, role, job_kind, pubkey, events)
SELECT hour, role, job_kind, pubkey, events FROM stats_hourly
SETTINGS insert_deduplicate = 0;
EXCHANGE TABLES stats_hourly AND stats_hourly_lanes;
DROP TABLE IF EXISTS stats_hourly_lanes;
CREATE MATERIALIZED VIEW IF NOT EXISTS stats_hourly_mv TO stats_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    role,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    pubkey,
    count() AS events,
    lane
FROM events_raw
GROUP BY hour, role, job_kind, pubkey, lane;

-- directed_hourly, as in 0003 plus the lane.
DROP TABLE IF EXISTS directed_hourly_lanes;
DROP VIEW IF EXISTS directed_hourly_mv;
CREATE TABLE IF NOT EXISTS directed_hourly_lanes
(
    hour     DateTime('UTC'),
    target   FixedString(32),
    job_kind UInt16,
    requests SimpleAggregateFunction(sum, UInt64),
    lane     UInt8
)
ENGINE = AggregatingMergeTree
PARTITION BY (toYYYYMM(hour), lane)
ORDER BY (hour, target, job_kind)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
INSERT INTO directed_hourly_lanes (hour, target, job_kind, requests)
SELECT hour, target, job_kind, requests FROM directed_hourly
SETTINGS insert_deduplicate = 0;
EXCHANGE TABLES directed_hourly AND directed_hourly_lanes;
DROP TABLE IF EXISTS directed_hourly_lanes;
CREATE MATERIALIZED VIEW IF NOT EXISTS directed_hourly_mv TO directed_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    arrayJoin(targets) AS target,
    kind AS job_kind,
    count() AS requests,
    lane
FROM events_raw
WHERE role = 'request' AND notEmpty(targets)
GROUP BY hour, target, job_kind, lane;

-- activity, as in 0003 plus the lane (it was unpartitioned).
DROP TABLE IF EXISTS activity_lanes;
DROP VIEW IF EXISTS activity_mv;
CREATE TABLE IF NOT EXISTS activity_lanes
(
    role       LowCardinality(String),
    pubkey     FixedString(32),
    job_kind   UInt16,
    first_seen SimpleAggregateFunction(min, DateTime('UTC')),
    last_seen  SimpleAggregateFunction(max, DateTime('UTC')),
    events     SimpleAggregateFunction(sum, UInt64),
    lane       UInt8
)
ENGINE = AggregatingMergeTree
PARTITION BY lane
ORDER BY (role, pubkey, job_kind)
SETTINGS non_replicated_deduplication_window = 1000;
INSERT INTO activity_lanes (role, pubkey, job_kind, first_seen, last_seen, events)
SELECT role, pubkey, job_kind, first_seen, last_seen, events FROM activity
SETTINGS insert_deduplicate = 0;
EXCHANGE TABLES activity AND activity_lanes;
DROP TABLE IF EXISTS activity_lanes;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_mv TO activity AS
SELECT
    role,
    pubkey,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    min(created_at) AS first_seen,
    max(created_at) AS last_seen,
    count() AS events,
    lane
FROM events_raw
GROUP BY role, pubkey, job_kind, lane;

-- stats_monthly, as in 0003 plus the lane (it was unpartitioned).
DROP TABLE IF EXISTS stats_monthly_lanes;
DROP VIEW IF EXISTS stats_monthly_mv;
CREATE TABLE IF NOT EXISTS stats_monthly_lanes
(
    month    Date,
    role     LowCardinality(String),
    job_kind UInt16,
    pubkey   FixedString(32),
    events   SimpleAggregateFunction(sum, UInt64),
    lane     UInt8
)
ENGINE = AggregatingMergeTree
PARTITION BY lane
ORDER BY (month, role, job_kind, pubkey)
SETTINGS non_replicated_deduplication_window = 1000;
INSERT INTO stats_monthly_lanes (month, role, job_kind, pubkey, events)
SELECT month, role, job_kind, pubkey, events FROM stats_monthly
SETTINGS insert_deduplicate = 0;
EXCHANGE TABLES stats_monthly AND stats_monthly_lanes;
DROP TABLE IF EXISTS stats_monthly_lanes;
CREATE MATERIALIZED VIEW IF NOT EXISTS stats_monthly_mv TO stats_monthly AS
SELECT
    toStartOfMonth(created_at) AS month,
    role,
    multiIf(role = 'request', kind, role = 'result', request_kind, 0) AS job_kind,
    pubkey,
    count() AS events,
    lane
FROM events_raw
GROUP BY month, role, job_kind, pubkey, lane;
