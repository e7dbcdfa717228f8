-- Failure rate per source and job type: failed as a % of finished jobs, optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- total counts every job; failure_rate_pct = failed / (succeeded + failed), so jobs
-- still running do not dilute it (NULL when none has finished).
SELECT source,
       job_type,
       COUNT(*) AS total,
       SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
       SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
       SUM(CASE WHEN status IN ('running', 'unknown') THEN 1 ELSE 0 END) AS unfinished,
       ROUND(100.0 * SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)
             / NULLIF(SUM(CASE WHEN status IN ('succeeded', 'failed') THEN 1 ELSE 0 END), 0), 1)
           AS failure_rate_pct
FROM jobs
WHERE (:since IS NULL OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS TEXT))
GROUP BY source, job_type
ORDER BY failure_rate_pct DESC, failed DESC, source, job_type;
