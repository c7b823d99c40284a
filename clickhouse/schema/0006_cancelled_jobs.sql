-- Cancelled jobs: a request its author deleted (NIP-09 kind 5 naming it in an `e` tag; the ids a
-- deletion names are stored in its `targets`) is cancelled. A deletion by anyone else cancels
-- nothing. A DVM that had concluded the job (a result, or success, partial or error feedback)
-- keeps that outcome; otherwise the job's outcome is 'cancelled', final at once.
CREATE OR REPLACE VIEW job_requests AS
SELECT
    event_id                 AS request_id,
    any(kind)                AS kind,
    any(pubkey)              AS customer,
    toUInt32(any(created_at)) AS requested_at,
    any(targets)             AS targets,
    any(encrypted)           AS encrypted,
    (event_id, any(pubkey)) IN (
        SELECT arrayJoin(targets) AS deleted, pubkey FROM events_raw WHERE role = 'deletion'
    )                        AS cancelled
FROM events_raw
WHERE role = 'request' AND created_at >= toDateTime({start:UInt32})
GROUP BY event_id;

CREATE OR REPLACE VIEW jobs AS
SELECT
    r.request_id                AS request_id,
    r.kind                      AS kind,
    r.customer                  AS customer,
    r.requested_at              AS requested_at,
    r.targets                   AS targets,
    r.encrypted                 AS encrypted,
    r.cancelled                 AS cancelled,
    j.dvm                       AS dvm,
    has(r.targets, j.dvm)       AS directed_to_dvm,
    j.has_feedback              AS has_feedback,
    j.first_feedback_at         AS first_feedback_at,
    j.has_result                AS has_result,
    j.first_result_at           AS first_result_at,
    multiIf(j.strength = 5, 'success', j.strength = 4, 'partial', j.strength = 3, 'error',
            r.cancelled, 'cancelled',
            j.strength = 2, 'payment-required', j.strength = 1, 'processing', 'unanswered') AS outcome
FROM job_requests(start = {start:UInt32}) AS r
LEFT JOIN job_responses(start = {start:UInt32}) AS j ON j.request_id = r.request_id;
