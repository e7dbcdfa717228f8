-- jobtrail PostgreSQL schema 5: every sync asks, per project and source,
-- which of its jobs are not final yet (to look at them again) and when the
-- oldest of them started. The (status, started_at) index answers for every
-- project at once, and before the table has statistics (right after a
-- backfill) the planner takes the primary key's (source, project_id) prefix
-- instead, reading every job of the project. This index holds the jobs not
-- final only (a few in a hundred), so it stays small and is the obvious
-- choice. SQLite steers its planner with unary `+` instead (store::jobs).
CREATE INDEX jobs_not_final ON jobs (source, project_id, started_at)
    WHERE status IN ('running', 'unknown');
