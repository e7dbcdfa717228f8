-- Status history of one job, oldest first: each status, raw status or failure reason it had (:job_id, optional :source)
-- :job_id          the job's ID (NoSQL id, DBSS job_id, image job or sub-job id)
-- :source = NULL   nosql, dbss or image, when the same ID exists in more than one source
SELECT observed_at,
       source,
       project_id,
       job_id,
       old_status,
       new_status,
       raw_status,
       fail_reason,
       sync_id
FROM job_status_changes
WHERE job_id = CAST(:job_id AS text)
  AND (CAST(:source AS text) IS NULL OR source = CAST(:source AS text))
ORDER BY source, project_id, id;
