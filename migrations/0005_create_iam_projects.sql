-- jobtrail schema v5: the projects IAM named, so a cron run asks IAM at most
-- once a day for a project ID or for the account's project list (SPEC §9).
--
-- One row per project of one answer. `lookup` is the region name asked for
-- (`GET /v3/projects?name={lookup}`), or '*' for the account's list
-- (`GET /v3/auth/projects`). `credential` tells key pairs apart: a short
-- SHA-256 fingerprint, never the key or token itself. Every row of one answer
-- has the same `fetched_at`; an answer is replaced whole. `position` keeps
-- IAM's order.
CREATE TABLE iam_projects (
    credential    TEXT    NOT NULL,
    iam_endpoint  TEXT    NOT NULL,
    lookup        TEXT    NOT NULL,
    project_id    TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    position      INTEGER NOT NULL,
    fetched_at    TEXT    NOT NULL,
    PRIMARY KEY (credential, iam_endpoint, lookup, project_id)
);
