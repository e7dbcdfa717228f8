-- jobtrail schema v3: a run's jobs are found through an index, not a scan.
--
-- `sync_runs.jobs_seen` counts the jobs a run stored (`last_sync_id`), and
-- `sync_state` forgets the misses of jobs a run found again. Without an index
-- both read the whole table: a fifth of a second per cron run at a million
-- jobs, a gigabyte read from disk when it is not cached. Entries are appended
-- in run order (a run's new jobs share one key), so a backfill pays little to
-- keep it. It also answers "what did run N touch?".
CREATE INDEX IF NOT EXISTS jobs_by_last_sync ON jobs (last_sync_id);
