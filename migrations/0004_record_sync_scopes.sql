-- jobtrail schema v4: what each (project, region, source) scope of a run did,
-- so one failing project or API is seen on its own, never hidden by the others.
--
-- Written in the same transaction that closes the run (`store::scopes`). A
-- scope that did not succeed carries when its current streak of failures
-- began and how many runs it spans, so `jobtrail status` answers "failing
-- since when" from the latest row alone. Rows older than the last 1,000 runs
-- are dropped, except each scope's latest one.
CREATE TABLE sync_scopes (
    sync_id        INTEGER NOT NULL REFERENCES sync_runs (id),
    project_id     TEXT    NOT NULL,
    region         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('succeeded', 'partial', 'failed')),
    requests       INTEGER NOT NULL DEFAULT 0,  -- HTTP requests of this scope, retries included
    jobs_seen      INTEGER NOT NULL DEFAULT 0,
    jobs_new       INTEGER NOT NULL DEFAULT 0,
    jobs_changed   INTEGER NOT NULL DEFAULT 0,
    error          TEXT,                        -- what failed, when it did not succeed
    failing_since  TEXT,                        -- start of the first run of the current failing streak
    failed_runs    INTEGER NOT NULL DEFAULT 0,  -- runs in that streak, this one included
    PRIMARY KEY (sync_id, project_id, source)
);

-- A scope's rows in run order: its latest row, and the one before it.
CREATE INDEX sync_scopes_by_scope ON sync_scopes (project_id, source, sync_id);
