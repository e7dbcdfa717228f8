//! Moving a whole history in and out of PostgreSQL (`jobtrail copy`): the
//! same records and rules as the SQLite side (`store::transfer`), in
//! PostgreSQL's dialect; the `iam_projects` cache is not copied here either.
//! An import holds every history table in EXCLUSIVE mode for its one
//! transaction (readers go on; syncs wait), writes a chunk per statement
//! through `UNNEST` arrays, and tells the history trigger to stand aside
//! (`jobtrail.copying`, see migration 0002): the copied history is already
//! complete.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Postgres, Row, Transaction};

use super::copy::{jsonb_safe, without_nul};
use super::{PgStore, PgStoreError, to_millis};
use crate::model::JobRow;
use crate::normalize::parse_api_time;
use crate::store::transfer::{ChangePlan, RunMap, RunPlan};
use crate::store::{
    ChangeRecord, HistoryCounts, ImportCounts, ImportMode, JobKey, JobRecord, RunRecord,
    RunScopeKey, RunScopeRecord, StateKey, StateRecord, TransferError,
};

/// Every column of `jobs` as the export reads it (raw_json as its text).
const JOB_COLUMNS: &str = "source, project_id, job_id, parent_job_id, job_type, status, \
     raw_status, progress, started_at, ended_at, duration_ms, resource_id, resource_name, \
     error_code, fail_reason, raw_json::text AS raw_json, first_seen_at, last_seen_at, last_sync_id";

const RUN_COLUMNS: &str = "id, started_at, finished_at, status, sources, requests, jobs_seen, \
     jobs_new, jobs_changed, error, pid";

const CHANGE_COLUMNS: &str = "source, project_id, job_id, old_status, new_status, raw_status, \
     fail_reason, observed_at, sync_id";

const SCOPE_COLUMNS: &str = "sync_id, project_id, region, source, status, requests, jobs_seen, \
     jobs_new, jobs_changed, error, failing_since, failed_runs";

/// Moves an identity sequence past the largest id its table holds (ids were
/// given explicitly), so the next sync's rows never collide with them.
const RESET_SEQUENCES: &str = "SELECT setval(pg_get_serial_sequence('sync_runs', 'id'),
       COALESCE((SELECT MAX(id) FROM sync_runs), 1), (SELECT MAX(id) FROM sync_runs) IS NOT NULL),
   setval(pg_get_serial_sequence('job_status_changes', 'id'),
       COALESCE((SELECT MAX(id) FROM job_status_changes), 1),
       (SELECT MAX(id) FROM job_status_changes) IS NOT NULL)";

impl PgStore {
    pub async fn history_counts(&self) -> Result<HistoryCounts, PgStoreError> {
        let (runs, jobs, changes, state) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sync_runs), (SELECT COUNT(*) FROM jobs), \
             (SELECT COUNT(*) FROM job_status_changes), (SELECT COUNT(*) FROM sync_state)",
        )
        .fetch_one(&self.pool)
        .await?;
        let scopes = if self.has_scopes().await? {
            sqlx::query_scalar("SELECT COUNT(*) FROM sync_scopes")
                .fetch_one(&self.pool)
                .await?
        } else {
            0
        };
        Ok(HistoryCounts {
            runs,
            scopes,
            jobs,
            changes,
            state,
        })
    }

    /// Whether the database records scopes: one whose schema predates them
    /// (opened for reading, so not migrated) has no `sync_scopes` table.
    async fn has_scopes(&self) -> Result<bool, PgStoreError> {
        Ok(
            sqlx::query_scalar("SELECT to_regclass('sync_scopes') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Up to `limit` scope rows after `after` (from the first when `None`),
    /// by run then project and source; none from a database without scopes.
    pub async fn export_scopes(
        &self,
        after: Option<&RunScopeKey>,
        limit: u32,
    ) -> Result<Vec<RunScopeRecord>, PgStoreError> {
        if !self.has_scopes().await? {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SCOPE_COLUMNS} FROM sync_scopes \
             WHERE $1::bigint IS NULL OR (sync_id, project_id, source) > ($1, $2, $3) \
             ORDER BY sync_id, project_id, source LIMIT $4"
        )))
        .bind(after.map(|k| k.sync_id))
        .bind(after.map(|k| k.project_id.as_str()))
        .bind(after.map(|k| k.source.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_runs(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RunRecord>, PgStoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_jobs(
        &self,
        after: Option<&JobKey>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, PgStoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs \
             WHERE $1::text IS NULL OR (source, project_id, job_id) > ($1, $2, $3) \
             ORDER BY source, project_id, job_id LIMIT $4"
        )))
        .bind(after.map(|k| k.source.as_str()))
        .bind(after.map(|k| k.project_id.as_str()))
        .bind(after.map(|k| k.job_id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_changes(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, PgStoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {CHANGE_COLUMNS} FROM job_status_changes WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_state(
        &self,
        after: Option<&StateKey>,
        limit: u32,
    ) -> Result<Vec<StateRecord>, PgStoreError> {
        Ok(sqlx::query_as(
            "SELECT project_id, source, key, value, updated_at FROM sync_state \
             WHERE $1::text IS NULL OR (project_id, source, key) > ($1, $2, $3) \
             ORDER BY project_id, source, key LIMIT $4",
        )
        .bind(after.map(|k| k.project_id.as_str()))
        .bind(after.map(|k| k.source.as_str()))
        .bind(after.map(|k| k.key.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Begins an import (see [`crate::store::Importer`]).
    pub async fn begin_import(&self, mode: ImportMode) -> Result<PgImporter, PgStoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(
            "LOCK TABLE sync_runs, sync_scopes, jobs, job_status_changes, sync_state
                 IN EXCLUSIVE MODE;
             SET LOCAL jobtrail.copying = 'on'",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(RESET_SEQUENCES).execute(&mut *tx).await?;
        let runs: Vec<(i64, DateTime<Utc>, String, Option<i64>)> =
            sqlx::query_as("SELECT id, started_at, sources, pid FROM sync_runs")
                .fetch_all(&mut *tx)
                .await?;
        let target = runs
            .into_iter()
            .map(|(id, started, sources, pid)| (id, (started, sources, pid)))
            .collect();
        Ok(PgImporter {
            tx,
            map: RunMap::new(mode, target),
            counts: ImportCounts::default(),
        })
    }
}

/// An import into a PostgreSQL database (see [`crate::store::Importer`]).
pub struct PgImporter {
    tx: Transaction<'static, Postgres>,
    map: RunMap,
    counts: ImportCounts,
}

/// Text PostgreSQL can hold (see `copy`).
fn text(value: &str) -> String {
    without_nul(value).into_owned()
}

fn texts(values: impl Iterator<Item = Option<String>>) -> Vec<Option<String>> {
    values.map(|v| v.map(|t| text(&t))).collect()
}

impl PgImporter {
    pub(in crate::store) fn run_map(&self) -> &RunMap {
        &self.map
    }

    pub(in crate::store) async fn runs(&mut self, runs: &[RunRecord]) -> Result<(), PgStoreError> {
        for run in runs {
            let sql = match self.map.plan(run).map_err(transfer)? {
                RunPlan::Insert(id) => (INSERT_RUN_SQL, id),
                RunPlan::Update(id) => (UPDATE_RUN_SQL, id),
            };
            let done = sqlx::query(sql.0)
                .bind(sql.1)
                .bind(to_millis(run.started_at))
                .bind(run.finished_at.map(to_millis))
                .bind(&run.status)
                .bind(text(&run.sources))
                .bind(run.requests)
                .bind(run.jobs_seen)
                .bind(run.jobs_new)
                .bind(run.jobs_changed)
                .bind(run.error.as_deref().map(text))
                .bind(run.pid)
                .execute(&mut *self.tx)
                .await?;
            self.counts.runs += done.rows_affected();
        }
        Ok(())
    }

    /// Scope rows under their runs' ids here, a chunk per statement; a row the
    /// target holds (same run, project and source) is left as it is.
    pub(in crate::store) async fn scopes(
        &mut self,
        scopes: &[RunScopeRecord],
    ) -> Result<(), PgStoreError> {
        let mut sync_ids = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let id = self.map.run_id(scope.sync_id, || scope.describe());
            sync_ids.push(id.map_err(transfer)?);
        }
        let texts_of = |f: fn(&RunScopeRecord) -> Option<String>| texts(scopes.iter().map(f));
        let numbers_of = |f: fn(&RunScopeRecord) -> i64| scopes.iter().map(f).collect::<Vec<_>>();
        let done = sqlx::query(IMPORT_SCOPES_SQL)
            .bind(sync_ids)
            .bind(texts_of(|s| Some(s.project_id.clone())))
            .bind(texts_of(|s| Some(s.region.clone())))
            .bind(texts_of(|s| Some(s.source.clone())))
            .bind(texts_of(|s| Some(s.status.clone())))
            .bind(numbers_of(|s| s.requests))
            .bind(numbers_of(|s| s.jobs_seen))
            .bind(numbers_of(|s| s.jobs_new))
            .bind(numbers_of(|s| s.jobs_changed))
            .bind(texts_of(|s| s.error.clone()))
            .bind(
                scopes
                    .iter()
                    .map(|s| s.failing_since.map(to_millis))
                    .collect::<Vec<_>>(),
            )
            .bind(numbers_of(|s| s.failed_runs))
            .execute(&mut *self.tx)
            .await?;
        self.counts.scopes += done.rows_affected();
        Ok(())
    }

    pub(in crate::store) async fn jobs(&mut self, jobs: &[JobRecord]) -> Result<(), PgStoreError> {
        let columns = JobColumns::of(jobs, &self.map)?;
        let done = sqlx::query(IMPORT_JOBS_SQL)
            .bind(columns.text[0].clone())
            .bind(columns.text[1].clone())
            .bind(columns.text[2].clone())
            .bind(columns.text[3].clone())
            .bind(columns.text[4].clone())
            .bind(columns.text[5].clone())
            .bind(columns.text[6].clone())
            .bind(columns.progress)
            .bind(columns.started)
            .bind(columns.ended)
            .bind(columns.duration)
            .bind(columns.text[7].clone())
            .bind(columns.text[8].clone())
            .bind(columns.text[9].clone())
            .bind(columns.text[10].clone())
            .bind(columns.raw_json)
            .bind(columns.first_seen)
            .bind(columns.last_seen)
            .bind(columns.sync_id)
            .execute(&mut *self.tx)
            .await?;
        self.counts.jobs += done.rows_affected();
        Ok(())
    }

    pub(in crate::store) async fn changes(
        &mut self,
        changes: &[ChangeRecord],
    ) -> Result<(), PgStoreError> {
        for change in changes {
            let (sql, id, sync_id) = match self.map.change(change).map_err(transfer)? {
                ChangePlan::Skip => continue,
                ChangePlan::KeepId { sync_id } => (KEEP_ID_CHANGE_SQL, Some(change.id), sync_id),
                ChangePlan::NewId { sync_id } => (NEW_ID_CHANGE_SQL, None, sync_id),
            };
            let done = sqlx::query(sql)
                .bind(id)
                .bind(text(&change.source))
                .bind(text(&change.project_id))
                .bind(text(&change.job_id))
                .bind(change.old_status.as_deref().map(text))
                .bind(text(&change.new_status))
                .bind(change.raw_status.as_deref().map(text))
                .bind(change.fail_reason.as_deref().map(text))
                .bind(to_millis(change.observed_at))
                .bind(sync_id)
                .execute(&mut *self.tx)
                .await?;
            self.counts.changes += done.rows_affected();
        }
        Ok(())
    }

    pub(in crate::store) async fn state(
        &mut self,
        state: &[StateRecord],
    ) -> Result<(), PgStoreError> {
        for entry in state {
            let done = sqlx::query(
                "INSERT INTO sync_state (project_id, source, key, value, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, source, key) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at \
                 WHERE excluded.updated_at > sync_state.updated_at",
            )
            .bind(text(&entry.project_id))
            .bind(text(&entry.source))
            .bind(text(&entry.key))
            .bind(text(&entry.value))
            .bind(to_millis(entry.updated_at))
            .execute(&mut *self.tx)
            .await?;
            self.counts.state += done.rows_affected();
        }
        Ok(())
    }

    pub(in crate::store) async fn commit(mut self) -> Result<ImportCounts, PgStoreError> {
        sqlx::query(RESET_SEQUENCES).execute(&mut *self.tx).await?;
        self.tx.commit().await?;
        Ok(self.counts)
    }
}

/// Says a transfer rule's refusal through this backend's error.
fn transfer(e: TransferError) -> PgStoreError {
    PgStoreError::Transfer(e)
}

/// A run the target lacks (`$1` its id there).
const INSERT_RUN_SQL: &str = "INSERT INTO sync_runs (id, started_at, finished_at, status, sources,
    requests, jobs_seen, jobs_new, jobs_changed, error, pid)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A run the target holds: one still marked running there takes the
/// source's outcome once the source has one.
const UPDATE_RUN_SQL: &str = "UPDATE sync_runs SET started_at = $2, finished_at = $3, status = $4,
    sources = $5, requests = $6, jobs_seen = $7, jobs_new = $8, jobs_changed = $9, error = $10,
    pid = $11
WHERE id = $1 AND status = 'running' AND $4 <> 'running'";

const KEEP_ID_CHANGE_SQL: &str = "INSERT INTO job_status_changes (id, source, project_id, job_id,
    old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING";

/// A merged run's change, with a new id (`$1` is NULL: the sequence gives
/// it). A first sighting of a job the target already knows is not one there.
const NEW_ID_CHANGE_SQL: &str = "INSERT INTO job_status_changes (source, project_id, job_id,
    old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
SELECT $2, $3, $4, $5, $6, $7, $8, $9, $10
WHERE $1::bigint IS NULL AND ($5::text IS NOT NULL OR NOT EXISTS (
    SELECT 1 FROM jobs WHERE source = $2 AND project_id = $3 AND job_id = $4))";

/// A chunk of scope rows (`$1` their runs' ids in the target).
const IMPORT_SCOPES_SQL: &str = "INSERT INTO sync_scopes (sync_id, project_id, region, source,
    status, requests, jobs_seen, jobs_new, jobs_changed, error, failing_since, failed_runs)
SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
    $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::timestamptz[], $12::bigint[])
ON CONFLICT (sync_id, project_id, source) DO NOTHING";

/// A chunk of jobs: a job is replaced only by a later sighting of it, and
/// keeps its `first_seen_at`.
const IMPORT_JOBS_SQL: &str = "INSERT INTO jobs (source, project_id, job_id, parent_job_id,
    job_type, status, raw_status, progress, started_at, ended_at, duration_ms, resource_id,
    resource_name, error_code, fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id)
SELECT source, project_id, job_id, parent_job_id, job_type, status, raw_status, progress,
    started_at, ended_at, duration_ms, resource_id, resource_name, error_code, fail_reason,
    raw_json::jsonb, first_seen_at, last_seen_at, last_sync_id
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::bigint[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::text[], $13::text[],
    $14::text[], $15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[], $19::bigint[])
    AS u (source, project_id, job_id, parent_job_id, job_type, status, raw_status, progress,
    started_at, ended_at, duration_ms, resource_id, resource_name, error_code, fail_reason,
    raw_json, first_seen_at, last_seen_at, last_sync_id)
ON CONFLICT (source, project_id, job_id) DO UPDATE SET
    parent_job_id = excluded.parent_job_id, job_type = excluded.job_type,
    status = excluded.status, raw_status = excluded.raw_status, progress = excluded.progress,
    started_at = excluded.started_at, ended_at = excluded.ended_at,
    duration_ms = excluded.duration_ms, resource_id = excluded.resource_id,
    resource_name = excluded.resource_name, error_code = excluded.error_code,
    fail_reason = excluded.fail_reason, raw_json = excluded.raw_json,
    last_seen_at = excluded.last_seen_at, last_sync_id = excluded.last_sync_id
WHERE excluded.last_seen_at > jobs.last_seen_at";

/// A chunk of jobs as one array per column, for [`IMPORT_JOBS_SQL`].
struct JobColumns {
    /// source, project_id, job_id, parent_job_id, job_type, status,
    /// raw_status, resource_id, resource_name, error_code, fail_reason.
    text: [Vec<Option<String>>; 11],
    progress: Vec<Option<i64>>,
    started: Vec<Option<DateTime<Utc>>>,
    ended: Vec<Option<DateTime<Utc>>>,
    duration: Vec<Option<i64>>,
    raw_json: Vec<String>,
    first_seen: Vec<DateTime<Utc>>,
    last_seen: Vec<DateTime<Utc>>,
    sync_id: Vec<i64>,
}

impl JobColumns {
    fn of(jobs: &[JobRecord], map: &RunMap) -> Result<JobColumns, PgStoreError> {
        let texts_of = |f: fn(&JobRow) -> Option<String>| texts(jobs.iter().map(|r| f(&r.job)));
        let text = [
            texts_of(|j| Some(j.source.as_str().to_owned())),
            texts_of(|j| Some(j.project_id.clone())),
            texts_of(|j| Some(j.job_id.clone())),
            texts_of(|j| j.parent_job_id.clone()),
            texts_of(|j| j.job_type.clone()),
            texts_of(|j| Some(j.status.as_str().to_owned())),
            texts_of(|j| j.raw_status.clone()),
            texts_of(|j| j.resource_id.clone()),
            texts_of(|j| j.resource_name.clone()),
            texts_of(|j| j.error_code.clone()),
            texts_of(|j| j.fail_reason.clone()),
        ];
        let mut columns = JobColumns {
            text,
            progress: jobs.iter().map(|r| r.job.progress).collect(),
            started: Vec::with_capacity(jobs.len()),
            ended: Vec::with_capacity(jobs.len()),
            duration: jobs.iter().map(|r| r.job.duration_ms).collect(),
            raw_json: jobs
                .iter()
                .map(|r| jsonb_safe(&without_nul(&r.job.raw_json)).into_owned())
                .collect(),
            first_seen: jobs.iter().map(|r| to_millis(r.first_seen_at)).collect(),
            last_seen: jobs.iter().map(|r| to_millis(r.last_seen_at)).collect(),
            sync_id: Vec::with_capacity(jobs.len()),
        };
        for record in jobs {
            let job = &record.job;
            let what = || format!("job {}/{}/{}", job.source, job.project_id, job.job_id);
            columns
                .started
                .push(job_time(job.started_at.as_deref(), what, "started_at")?);
            columns
                .ended
                .push(job_time(job.ended_at.as_deref(), what, "ended_at")?);
            let sync_id = map.run_id(record.last_sync_id, what).map_err(transfer)?;
            columns.sync_id.push(sync_id);
        }
        Ok(columns)
    }
}

/// A job's time as the SQLite store keeps it, read back as an instant.
fn job_time(
    value: Option<&str>,
    what: impl FnOnce() -> String,
    column: &'static str,
) -> Result<Option<DateTime<Utc>>, PgStoreError> {
    match value {
        None => Ok(None),
        Some(text) => match parse_api_time(text) {
            Some(t) => Ok(Some(to_millis(t))),
            None => Err(transfer(TransferError::BadValue {
                what: what(),
                column,
                value: text.to_owned(),
            })),
        },
    }
}

/// Decodes a text column into a type that parses it (a source, a status).
fn parsed<T: std::str::FromStr<Err = String>>(row: &PgRow, column: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|why: String| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: why.into(),
        })
}

fn time_text(row: &PgRow, column: &str) -> sqlx::Result<Option<String>> {
    let time: Option<DateTime<Utc>> = row.try_get(column)?;
    Ok(time.map(crate::normalize::format_utc))
}

impl FromRow<'_, PgRow> for RunRecord {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(RunRecord {
            id: row.try_get("id")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            status: row.try_get("status")?,
            sources: row.try_get("sources")?,
            requests: row.try_get("requests")?,
            jobs_seen: row.try_get("jobs_seen")?,
            jobs_new: row.try_get("jobs_new")?,
            jobs_changed: row.try_get("jobs_changed")?,
            error: row.try_get("error")?,
            pid: row.try_get("pid")?,
        })
    }
}

impl FromRow<'_, PgRow> for JobRecord {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(JobRecord {
            job: JobRow {
                source: parsed(row, "source")?,
                project_id: row.try_get("project_id")?,
                job_id: row.try_get("job_id")?,
                parent_job_id: row.try_get("parent_job_id")?,
                job_type: row.try_get("job_type")?,
                status: parsed(row, "status")?,
                raw_status: row.try_get("raw_status")?,
                progress: row.try_get("progress")?,
                started_at: time_text(row, "started_at")?,
                ended_at: time_text(row, "ended_at")?,
                duration_ms: row.try_get("duration_ms")?,
                resource_id: row.try_get("resource_id")?,
                resource_name: row.try_get("resource_name")?,
                error_code: row.try_get("error_code")?,
                fail_reason: row.try_get("fail_reason")?,
                raw_json: row.try_get("raw_json")?,
            },
            first_seen_at: row.try_get("first_seen_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            last_sync_id: row.try_get("last_sync_id")?,
        })
    }
}

impl FromRow<'_, PgRow> for ChangeRecord {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(ChangeRecord {
            id: row.try_get("id")?,
            source: row.try_get("source")?,
            project_id: row.try_get("project_id")?,
            job_id: row.try_get("job_id")?,
            old_status: row.try_get("old_status")?,
            new_status: row.try_get("new_status")?,
            raw_status: row.try_get("raw_status")?,
            fail_reason: row.try_get("fail_reason")?,
            observed_at: row.try_get("observed_at")?,
            sync_id: row.try_get("sync_id")?,
        })
    }
}

impl FromRow<'_, PgRow> for RunScopeRecord {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(RunScopeRecord {
            sync_id: row.try_get("sync_id")?,
            project_id: row.try_get("project_id")?,
            region: row.try_get("region")?,
            source: row.try_get("source")?,
            status: row.try_get("status")?,
            requests: row.try_get("requests")?,
            jobs_seen: row.try_get("jobs_seen")?,
            jobs_new: row.try_get("jobs_new")?,
            jobs_changed: row.try_get("jobs_changed")?,
            error: row.try_get("error")?,
            failing_since: row.try_get("failing_since")?,
            failed_runs: row.try_get("failed_runs")?,
        })
    }
}

impl FromRow<'_, PgRow> for StateRecord {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(StateRecord {
            project_id: row.try_get("project_id")?,
            source: row.try_get("source")?,
            key: row.try_get("key")?,
            value: row.try_get("value")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
