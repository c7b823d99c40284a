-- Answered jobs per DVM (a DVM list and DVM detail figure, jobs_answered: the distinct requests a
-- DVM's results and feedback in the window name). A distinct count over every answer of the window
-- costs most of a second at ten million events, so the job finalizer (core/src/job_ledger.rs) keeps
-- one live row per (DVM, request) with the time of its newest answer, and per-hour sums of them.
-- The ingester hands it each stored answer through Redis (not a view: a table stamped with its
-- insertion time could not be rebuilt identically when an interrupted insert is completed).

-- One live row per (DVM, request it answered): hour and time of the newest answer. When a newer
-- answer comes, the finalizer cancels the old row with a -1 copy and adds the new one, so sum(sign)
-- counts each pair once whatever the merges have done.
CREATE TABLE IF NOT EXISTS answered_pairs
(
    hour       DateTime('UTC'),
    dvm        FixedString(32),
    request_id FixedString(32),
    last_at    UInt32,
    sign       Int8
)
ENGINE = CollapsingMergeTree(sign)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dvm, request_id)
TTL hour + INTERVAL 32 DAY;

-- Live pairs per hour of their newest answer and DVM, summed from answered_pairs as rows go in.
CREATE TABLE IF NOT EXISTS answered_hourly
(
    hour  DateTime('UTC'),
    dvm   FixedString(32),
    pairs Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dvm)
TTL hour + INTERVAL 32 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS answered_hourly_mv TO answered_hourly AS
SELECT hour, dvm, sum(sign) AS pairs
FROM answered_pairs
GROUP BY hour, dvm;
