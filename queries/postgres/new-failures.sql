-- Jobs that became failed in one sync (first seen failed, or failed since the sync before): what `sync --print-failures` prints
-- :sync_id = NULL   the sync run's ID (see `jobtrail status`); the last sync when omitted
--
-- A job whose failure reason changed while it stayed failed is not new. Its details
-- are as stored now; became_failed_at is when that sync saw it failed.
SELECT became.sync_id,
       became.observed_at AS became_failed_at,
       j.source,
       j.project_id,
       j.job_id,
       j.parent_job_id,
       j.job_type,
       j.resource_id,
       j.resource_name,
       j.error_code,
       j.fail_reason
FROM (SELECT sync_id, source, project_id, job_id, MIN(observed_at) AS observed_at
      FROM job_status_changes
      WHERE sync_id = COALESCE(CAST(:sync_id AS bigint), (SELECT MAX(id) FROM sync_runs))
        AND new_status = 'failed'
        AND old_status IS DISTINCT FROM 'failed'
      GROUP BY sync_id, source, project_id, job_id) became
JOIN jobs j
  ON j.source = became.source AND j.project_id = became.project_id AND j.job_id = became.job_id
ORDER BY j.source, j.project_id, j.job_id;
