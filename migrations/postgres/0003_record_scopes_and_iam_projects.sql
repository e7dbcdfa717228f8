-- jobtrail PostgreSQL schema 3: SQLite's v4 and v5 (../0004_record_sync_scopes.sql,
-- ../0005_create_iam_projects.sql) in PostgreSQL's native types.
--
-- sync_scopes: what each (project, region, source) scope of a run did,
-- written in the transaction that closes the run (store::postgres::scopes).
-- A scope that did not succeed carries when its current streak of failures
-- began and how many runs it spans, so `jobtrail status` answers "failing
-- since when" from the latest row alone. Rows older than the last 1,000 runs
-- are dropped, except each scope's latest one.
CREATE TABLE sync_scopes (
    sync_id        bigint NOT NULL REFERENCES sync_runs (id),
    project_id     text   NOT NULL,
    region         text   NOT NULL,
    source         text   NOT NULL,
    status         text   NOT NULL CHECK (status IN ('succeeded', 'partial', 'failed')),
    requests       bigint NOT NULL DEFAULT 0,  -- HTTP requests of this scope, retries included
    jobs_seen      bigint NOT NULL DEFAULT 0,
    jobs_new       bigint NOT NULL DEFAULT 0,
    jobs_changed   bigint NOT NULL DEFAULT 0,
    error          text,                       -- what failed, when it did not succeed
    failing_since  timestamptz,                -- start of the first run of the current failing streak
    failed_runs    bigint NOT NULL DEFAULT 0,  -- runs in that streak, this one included
    PRIMARY KEY (sync_id, project_id, source)
);

-- A scope's rows in run order: its latest row, and the one before it.
CREATE INDEX sync_scopes_by_scope ON sync_scopes (project_id, source, sync_id);

-- iam_projects: the projects IAM named, so a cron run asks IAM at most once a
-- day for a project ID or for the account's project list. One row per project
-- of one answer; `lookup` is the region name asked for, or '*' for the
-- account's list; `credential` a short SHA-256 fingerprint of the key pair,
-- never the key itself. Every row of one answer has the same `fetched_at`; an
-- answer is replaced whole. `position` keeps IAM's order.
CREATE TABLE iam_projects (
    credential    text    NOT NULL,
    iam_endpoint  text    NOT NULL,
    lookup        text    NOT NULL,
    project_id    text    NOT NULL,
    name          text    NOT NULL,
    enabled       boolean NOT NULL,
    position      bigint  NOT NULL,
    fetched_at    timestamptz NOT NULL,
    PRIMARY KEY (credential, iam_endpoint, lookup, project_id)
);
