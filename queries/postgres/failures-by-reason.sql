-- Failures by reason per ISO week (a job counts in the week it started, UTC), optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- The reason is the failure text the API gave, else its error code.
SELECT to_char(COALESCE(started_at, ended_at, first_seen_at) AT TIME ZONE 'UTC', 'IYYY-"W"IW')
           AS week,
       COALESCE(fail_reason, error_code, '(no reason given)') AS reason,
       COUNT(*) AS failures,
       MIN(COALESCE(started_at, ended_at, first_seen_at)) AS first_seen,
       MAX(COALESCE(started_at, ended_at, first_seen_at)) AS last_seen
FROM jobs
WHERE status = 'failed'
  AND (CAST(:since AS timestamptz) IS NULL
       OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS timestamptz))
GROUP BY 1, 2
ORDER BY week DESC, failures DESC, reason;
