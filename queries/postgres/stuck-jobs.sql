-- Jobs running (or in an unknown state) for longer than :hours, measured from now; oldest first
-- :hours = 24   how many hours a job may run before it counts as stuck (0 lists every running job)
--
-- A job with no start time is measured from when jobtrail first saw it.
SELECT source,
       project_id,
       job_id,
       parent_job_id,
       job_type,
       status,
       raw_status,
       progress,
       started_at,
       ROUND(CAST(EXTRACT(EPOCH FROM now() - COALESCE(started_at, first_seen_at)) / 3600 AS numeric), 1)
           AS running_hours,
       resource_name,
       last_seen_at
FROM jobs
WHERE status IN ('running', 'unknown')
  AND EXTRACT(EPOCH FROM now() - COALESCE(started_at, first_seen_at)) / 3600
      > CAST(:hours AS double precision)
ORDER BY COALESCE(started_at, first_seen_at), source, job_id;
