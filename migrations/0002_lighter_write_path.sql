-- jobtrail schema v2: fewer B-trees written per job, so a backfill of years of
-- history is bound by fetching rather than by index maintenance (BENCHMARKS.md).
-- Nothing stored changes; only how it is indexed and who writes first sightings.

-- First sightings are written by the store itself, in the same statement batch
-- and transaction as the jobs they describe (`store::writer`): one
-- INSERT ... SELECT of the rows a batch added costs a third of firing a trigger
-- per row. Changes of status, raw status or failure reason stay with the
-- `jobs_status_changed` trigger: they are rare, and any UPDATE must record them.
DROP TRIGGER jobs_first_seen;

-- Time-range questions without a status use `jobs_by_status_started` (SQLite
-- skip-scans its four statuses), so a second index on the start time only cost
-- writes.
DROP INDEX jobs_by_started;

-- Only image sub-jobs have a parent: NoSQL and DBSS rows stay out of this index.
DROP INDEX jobs_by_parent;
CREATE INDEX jobs_by_parent ON jobs (source, project_id, parent_job_id)
    WHERE parent_job_id IS NOT NULL;

-- A run's history rows are found by their ids (they are appended after the
-- largest id when the run began, see `store::runs`), not by this index.
DROP INDEX job_status_changes_by_sync;
