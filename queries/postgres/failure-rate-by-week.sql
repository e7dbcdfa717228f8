-- Failure rate per ISO week and job type (week the job started, UTC), optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- failure_rate_pct = failed / (succeeded + failed) within the week.
SELECT to_char(COALESCE(started_at, ended_at, first_seen_at) AT TIME ZONE 'UTC', 'IYYY-"W"IW')
           AS week,
       source,
       job_type,
       COUNT(*) AS total,
       COUNT(*) FILTER (WHERE status = 'failed') AS failed,
       ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'failed')
             / NULLIF(COUNT(*) FILTER (WHERE status IN ('succeeded', 'failed')), 0), 1)
           AS failure_rate_pct
FROM jobs
WHERE (CAST(:since AS timestamptz) IS NULL
       OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS timestamptz))
GROUP BY 1, source, job_type
ORDER BY week DESC, source, job_type NULLS FIRST;
