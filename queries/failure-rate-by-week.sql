-- Failure rate per ISO week and job type (week the job started, UTC), optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- failure_rate_pct = failed / (succeeded + failed) within the week.
SELECT strftime('%G-W%V', COALESCE(started_at, ended_at, first_seen_at)) AS week,
       source,
       job_type,
       COUNT(*) AS total,
       SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
       ROUND(100.0 * SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)
             / NULLIF(SUM(CASE WHEN status IN ('succeeded', 'failed') THEN 1 ELSE 0 END), 0), 1)
           AS failure_rate_pct
FROM jobs
WHERE (:since IS NULL OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS TEXT))
GROUP BY strftime('%G-W%V', COALESCE(started_at, ended_at, first_seen_at)), source, job_type
ORDER BY week DESC, source, job_type;
