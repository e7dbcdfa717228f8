-- Failure rate per source and job type: failed as a % of finished jobs, optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- total counts every job; failure_rate_pct = failed / (succeeded + failed), so jobs
-- still running do not dilute it (NULL when none has finished).
SELECT source,
       job_type,
       COUNT(*) AS total,
       COUNT(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       COUNT(*) FILTER (WHERE status = 'failed') AS failed,
       COUNT(*) FILTER (WHERE status IN ('running', 'unknown')) AS unfinished,
       ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'failed')
             / NULLIF(COUNT(*) FILTER (WHERE status IN ('succeeded', 'failed')), 0), 1)
           AS failure_rate_pct
FROM jobs
WHERE (CAST(:since AS timestamptz) IS NULL
       OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS timestamptz))
GROUP BY source, job_type
ORDER BY failure_rate_pct DESC NULLS LAST, failed DESC, source, job_type NULLS FIRST;
