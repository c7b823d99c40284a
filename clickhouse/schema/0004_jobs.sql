-- Jobs: each request linked to the feedback and results that answer it. Defined once here and used
-- by the api's job statistics (api/src/queries/jobs.rs) and by anyone with SQL (Grafana,
-- clickhouse-client). Linking needs raw events (a result can arrive hours after its request, so no
-- insert-time rollup can pair them), so these are parameterized views over events_raw, taking the
-- window start in unix seconds:
--
--   SELECT outcome, count() FROM jobs(start = toUInt32(now() - INTERVAL 1 DAY)) GROUP BY outcome
--
-- Each event is stored once (see 0002), so counts are exact; GROUP BY event_id keeps them exact even
-- for rows that reached events_raw some other way.

-- One row per request created at or after `start`.
CREATE VIEW IF NOT EXISTS job_requests AS
SELECT
    event_id                 AS request_id,
    any(kind)                AS kind,
    any(pubkey)              AS customer,
    toUInt32(any(created_at)) AS requested_at,
    any(targets)             AS targets,
    any(encrypted)           AS encrypted
FROM events_raw
WHERE role = 'request' AND created_at >= toDateTime({start:UInt32})
GROUP BY event_id;

-- Per (request, DVM), for requests created at or after `start`: whether and when the DVM first sent
-- feedback and a result, and the strongest thing it said. strength: 5 success (a result, or feedback
-- `success`), 4 partial, 3 error, 2 payment-required, 1 processing or an unknown status. Times are 0
-- when the DVM sent no such event.
CREATE VIEW IF NOT EXISTS job_responses AS
SELECT
    request_id,
    pubkey                                          AS dvm,
    countIf(role = 'feedback') > 0                  AS has_feedback,
    toUInt32(minIf(created_at, role = 'feedback'))  AS first_feedback_at,
    countIf(role = 'result') > 0                    AS has_result,
    toUInt32(minIf(created_at, role = 'result'))    AS first_result_at,
    max(multiIf(role = 'result' OR status = 'success', 5, status = 'partial', 4, status = 'error', 3,
                status = 'payment-required', 2, 1)) AS strength
FROM events_raw
WHERE role IN ('result', 'feedback')
  AND request_id IN (
      SELECT event_id FROM events_raw WHERE role = 'request' AND created_at >= toDateTime({start:UInt32})
  )
GROUP BY request_id, dvm;

-- One row per (request, answering DVM); a request nobody answered has one row with an all-zero dvm
-- and outcome 'unanswered'. Whether a quiet job has timed out depends on its kind; the api applies
-- its configured timeouts (DVMDASH_JOB_TIMEOUTS) on top of this.
CREATE VIEW IF NOT EXISTS jobs AS
SELECT
    r.request_id                AS request_id,
    r.kind                      AS kind,
    r.customer                  AS customer,
    r.requested_at              AS requested_at,
    r.targets                   AS targets,
    r.encrypted                 AS encrypted,
    j.dvm                       AS dvm,
    has(r.targets, j.dvm)       AS directed_to_dvm,
    j.has_feedback              AS has_feedback,
    j.first_feedback_at         AS first_feedback_at,
    j.has_result                AS has_result,
    j.first_result_at           AS first_result_at,
    multiIf(j.strength = 5, 'success', j.strength = 4, 'partial', j.strength = 3, 'error',
            j.strength = 2, 'payment-required', j.strength = 1, 'processing', 'unanswered') AS outcome
FROM job_requests(start = {start:UInt32}) AS r
LEFT JOIN job_responses(start = {start:UInt32}) AS j ON j.request_id = r.request_id;
