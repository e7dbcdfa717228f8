-- Most recent failures from every source with their reasons, newest first (:limit rows, optional :since)
-- :limit = 50     how many failures to list
-- :since = NULL   only failures at or after this day or time (UTC)
--
-- failed_at is when the job ended, else when it started, else when jobtrail last saw it.
SELECT COALESCE(ended_at, started_at, last_seen_at) AS failed_at,
       source,
       job_type,
       job_id,
       project_id,
       resource_name,
       error_code,
       fail_reason
FROM jobs
WHERE status = 'failed'
  AND (CAST(:since AS timestamptz) IS NULL
       OR COALESCE(ended_at, started_at, last_seen_at) >= CAST(:since AS timestamptz))
ORDER BY failed_at DESC, source, job_id
LIMIT CAST(:limit AS bigint);
