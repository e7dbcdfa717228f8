-- Slowest job types: p50 and p95 duration per source and job type (nearest rank), optional :since
-- :since = NULL   first day to count, e.g. 2024-01-01 (UTC); all history when omitted
--                 (a job counts at its start, else its end, else when jobtrail first saw it)
--
-- Percentiles by nearest rank: the value at rank ceil(p% x n) of the sorted durations.
WITH timed AS (
    SELECT source,
           job_type,
           duration_ms,
           ROW_NUMBER() OVER (PARTITION BY source, job_type ORDER BY duration_ms) AS rn,
           COUNT(*) OVER (PARTITION BY source, job_type) AS n
    FROM jobs
    WHERE duration_ms IS NOT NULL
      AND (CAST(:since AS timestamptz) IS NULL
           OR COALESCE(started_at, ended_at, first_seen_at) >= CAST(:since AS timestamptz))
)
SELECT source,
       job_type,
       MAX(n) AS jobs,
       MIN(CASE WHEN rn * 100 >= n * 50 THEN duration_ms END) AS p50_ms,
       MIN(CASE WHEN rn * 100 >= n * 95 THEN duration_ms END) AS p95_ms,
       MAX(duration_ms) AS max_ms
FROM timed
GROUP BY source, job_type
ORDER BY p95_ms DESC NULLS LAST, p50_ms DESC NULLS LAST, source, job_type NULLS FIRST;
