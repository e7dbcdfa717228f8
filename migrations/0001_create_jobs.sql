-- jobtrail schema v1: one row per job, the history of its status, and sync bookkeeping.
-- Times are UTC text, fixed width `YYYY-MM-DDTHH:MM:SS.sssZ`, so text order is time order.

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
    sources       TEXT    NOT NULL,            -- comma-separated sources this run covered
    requests      INTEGER NOT NULL DEFAULT 0,  -- HTTP requests made, retries included
    jobs_seen     INTEGER NOT NULL DEFAULT 0,
    jobs_new      INTEGER NOT NULL DEFAULT 0,
    jobs_changed  INTEGER NOT NULL DEFAULT 0,
    error         TEXT,                        -- why the run did not fully succeed
    pid           INTEGER
);

CREATE TABLE jobs (
    source         TEXT    NOT NULL CHECK (source IN ('nosql', 'dbss', 'image')),
    project_id     TEXT    NOT NULL,
    job_id         TEXT    NOT NULL,
    parent_job_id  TEXT,
    job_type       TEXT,
    status         TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'unknown')),
    raw_status     TEXT,
    progress       INTEGER,
    started_at     TEXT,
    ended_at       TEXT,
    duration_ms    INTEGER,
    resource_id    TEXT,
    resource_name  TEXT,
    error_code     TEXT,
    fail_reason    TEXT,
    raw_json       TEXT    NOT NULL,
    first_seen_at  TEXT    NOT NULL,
    last_seen_at   TEXT    NOT NULL,
    last_sync_id   INTEGER NOT NULL REFERENCES sync_runs (id),
    PRIMARY KEY (source, project_id, job_id)
);

CREATE INDEX jobs_by_status_started ON jobs (status, started_at);
CREATE INDEX jobs_by_started ON jobs (started_at);
CREATE INDEX jobs_by_job_type ON jobs (job_type, started_at);
CREATE INDEX jobs_by_resource ON jobs (resource_id);
CREATE INDEX jobs_by_parent ON jobs (source, project_id, parent_job_id);

CREATE TABLE job_status_changes (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    old_status   TEXT,          -- NULL when the job was first seen
    new_status   TEXT NOT NULL,
    raw_status   TEXT,
    fail_reason  TEXT,
    observed_at  TEXT NOT NULL,
    sync_id      INTEGER NOT NULL REFERENCES sync_runs (id)
);

-- No index on the job's key here: job IDs are random, so such an index would be
-- rewritten all over on every batch and doubled the cost of storing history. The
-- history of one job is a scan of this table (tens of milliseconds per 100k rows).
CREATE INDEX job_status_changes_by_sync ON job_status_changes (sync_id);

-- The history is written by the database itself, so no write path can forget it:
-- a row when a job is first stored, and one whenever its status, raw status or
-- failure reason changes.
CREATE TRIGGER jobs_first_seen AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_status_changes
        (source, project_id, job_id, old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
    VALUES
        (NEW.source, NEW.project_id, NEW.job_id, NULL, NEW.status, NEW.raw_status, NEW.fail_reason,
         NEW.last_seen_at, NEW.last_sync_id);
END;

CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status, raw_status, fail_reason ON jobs
WHEN OLD.status IS NOT NEW.status
  OR OLD.raw_status IS NOT NEW.raw_status
  OR OLD.fail_reason IS NOT NEW.fail_reason
BEGIN
    INSERT INTO job_status_changes
        (source, project_id, job_id, old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
    VALUES
        (NEW.source, NEW.project_id, NEW.job_id, OLD.status, NEW.status, NEW.raw_status, NEW.fail_reason,
         NEW.last_seen_at, NEW.last_sync_id);
END;

-- Watermarks and other bookkeeping that make the next sync incremental.
CREATE TABLE sync_state (
    project_id  TEXT NOT NULL,
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, source, key)
);

-- Failed jobs, newest first, whatever their source.
CREATE VIEW recent_failures AS
SELECT source, project_id, job_id, parent_job_id, job_type, resource_id, resource_name,
       started_at, ended_at, duration_ms, raw_status, error_code, fail_reason
FROM jobs
WHERE status = 'failed'
ORDER BY COALESCE(ended_at, started_at, last_seen_at) DESC;

-- How often each job type fails, and why.
CREATE VIEW failures_by_type_reason AS
SELECT source, job_type, COALESCE(fail_reason, error_code, '(no reason given)') AS reason,
       COUNT(*) AS failures,
       MIN(COALESCE(started_at, first_seen_at)) AS first_seen,
       MAX(COALESCE(started_at, first_seen_at)) AS last_seen
FROM jobs
WHERE status = 'failed'
GROUP BY source, job_type, COALESCE(fail_reason, error_code, '(no reason given)')
ORDER BY failures DESC;

-- Jobs not final yet, oldest first.
CREATE VIEW running_jobs AS
SELECT source, project_id, job_id, parent_job_id, job_type, status, raw_status, progress,
       started_at, resource_id, resource_name, last_seen_at
FROM jobs
WHERE status IN ('running', 'unknown')
ORDER BY started_at;
