//! The report's reads on PostgreSQL: the same rows as the SQLite store's
//! (`store::report`), from the same grouped passes, with times in the SQLite
//! text form and text sorted in byte order, so a report from either backend
//! shows the same numbers in the same order.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Postgres, QueryBuilder, Row};

use super::{PgStore, PgStoreError, to_millis};
use crate::model::Source;
use crate::normalize::format_utc;
use crate::store::{
    FailureGroup, FailureWeek, JobGroup, JobWindow, RecentFailure, RunningJob, UnfinishedCounts,
};

/// The time a job counts at in a report.
const JOB_TIME: &str = "COALESCE(started_at, ended_at, first_seen_at)";

/// The jobs that are not finished yet.
const UNFINISHED: &str = "status IN ('running', 'unknown')";

impl PgStore {
    /// Every job in the database, whatever the window.
    pub async fn count_jobs(&self) -> Result<i64, PgStoreError> {
        self.job_count().await
    }

    /// The selected jobs grouped by source, job type, status and week (the
    /// Monday it starts, UTC).
    pub async fn job_groups(&self, window: &JobWindow<'_>) -> Result<Vec<JobGroup>, PgStoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT source, job_type, status, \
               date_trunc('week', t AT TIME ZONE 'UTC')::date AS week, \
               COUNT(*) AS jobs, MIN(t) AS first, MAX(t) AS last, \
               array_agg(duration_ms) FILTER (WHERE duration_ms IS NOT NULL) AS durations \
             FROM f GROUP BY source, job_type, status, week",
        );
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The selected failed jobs grouped by reason, source and job type.
    pub async fn failure_groups(
        &self,
        window: &JobWindow<'_>,
    ) -> Result<Vec<FailureGroup>, PgStoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(fail_reason, error_code) AS reason, source, job_type, \
               COUNT(*) AS failures, MIN(t) AS first, MAX(t) AS last \
             FROM f WHERE status = 'failed' GROUP BY reason, source, job_type",
        );
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The selected failed jobs grouped by reason and week (the Monday it
    /// starts, UTC, as in [`PgStore::job_groups`]), for the reasons-over-time grid.
    pub async fn failure_weeks(
        &self,
        window: &JobWindow<'_>,
    ) -> Result<Vec<FailureWeek>, PgStoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(fail_reason, error_code) AS reason, \
               date_trunc('week', t AT TIME ZONE 'UTC')::date AS week, COUNT(*) AS failures \
             FROM f WHERE status = 'failed' GROUP BY reason, week",
        );
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Unfinished jobs of `sources` (empty: all) whatever their time, and how
    /// many of them have run since before `stuck_before`.
    pub async fn unfinished_counts(
        &self,
        sources: &[Source],
        stuck_before: DateTime<Utc>,
    ) -> Result<UnfinishedCounts, PgStoreError> {
        let mut q = QueryBuilder::new(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE COALESCE(started_at, first_seen_at) < ",
        );
        q.push_bind(to_millis(stuck_before));
        q.push(format!(") FROM jobs WHERE {UNFINISHED}"));
        push_sources(&mut q, sources);
        let (jobs, stuck) = q
            .build_query_as::<(i64, i64)>()
            .fetch_one(&self.pool)
            .await?;
        Ok(UnfinishedCounts { jobs, stuck })
    }

    /// The `limit` longest-running unfinished jobs of `sources` (empty: all),
    /// oldest first, whatever their time.
    pub async fn oldest_running_jobs(
        &self,
        sources: &[Source],
        limit: usize,
    ) -> Result<Vec<RunningJob>, PgStoreError> {
        let mut q = QueryBuilder::new(format!(
            "SELECT source, project_id, job_id, job_type, status, raw_status, progress, \
               COALESCE(started_at, first_seen_at) AS since, resource_name \
             FROM jobs WHERE {UNFINISHED}"
        ));
        push_sources(&mut q, sources);
        q.push(" ORDER BY since, source COLLATE \"C\", job_id COLLATE \"C\" LIMIT ");
        q.push_bind(row_limit(limit));
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The `limit` latest failures among the selected jobs, latest first.
    pub async fn recent_failures(
        &self,
        window: &JobWindow<'_>,
        limit: usize,
    ) -> Result<Vec<RecentFailure>, PgStoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(ended_at, started_at, last_seen_at) AS failed_at, source, job_type, \
               job_id, resource_name, error_code, fail_reason \
             FROM f WHERE status = 'failed' \
             ORDER BY failed_at DESC, source COLLATE \"C\", job_id COLLATE \"C\" LIMIT ",
        );
        q.push_bind(row_limit(limit));
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }
}

/// Starts a query over `f`: the jobs `window` selects, each with its time `t`.
fn selected_jobs(window: &JobWindow<'_>) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(format!(
        "WITH f AS (SELECT *, {JOB_TIME} AS t FROM jobs WHERE true"
    ));
    if let Some(since) = window.since {
        q.push(format!(" AND {JOB_TIME} >= "));
        q.push_bind(to_millis(since));
    }
    if let Some(until) = window.until {
        q.push(format!(" AND {JOB_TIME} < "));
        q.push_bind(to_millis(until));
    }
    push_sources(&mut q, window.sources);
    q.push(") ");
    q
}

/// Adds ` AND source = ANY(…)` unless `sources` is empty (every source).
fn push_sources(q: &mut QueryBuilder<Postgres>, sources: &[Source]) {
    if sources.is_empty() {
        return;
    }
    q.push(" AND source = ANY(");
    q.push_bind(
        sources
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>(),
    );
    q.push(")");
}

fn row_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Decodes a text column into a type that parses it (a source, a status).
fn parsed<T: FromStr<Err = String>>(row: &PgRow, column: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|why: String| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: why.into(),
        })
}

/// A time column as the SQLite store gives it: UTC text, fixed width.
fn time_text(row: &PgRow, column: &str) -> sqlx::Result<String> {
    Ok(format_utc(row.try_get::<DateTime<Utc>, _>(column)?))
}

impl FromRow<'_, PgRow> for JobGroup {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        let first: Option<DateTime<Utc>> = row.try_get("first")?;
        let last: Option<DateTime<Utc>> = row.try_get("last")?;
        let durations: Option<Vec<i64>> = row.try_get("durations")?;
        Ok(JobGroup {
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            status: parsed(row, "status")?,
            week: row.try_get::<Option<NaiveDate>, _>("week")?,
            jobs: row.try_get("jobs")?,
            first: first.map(format_utc),
            last: last.map(format_utc),
            durations_ms: durations.unwrap_or_default(),
        })
    }
}

impl FromRow<'_, PgRow> for FailureWeek {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(FailureWeek {
            reason: row.try_get("reason")?,
            week: row.try_get::<Option<NaiveDate>, _>("week")?,
            failures: row.try_get("failures")?,
        })
    }
}

impl FromRow<'_, PgRow> for FailureGroup {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(FailureGroup {
            reason: row.try_get("reason")?,
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            failures: row.try_get("failures")?,
            first: time_text(row, "first")?,
            last: time_text(row, "last")?,
        })
    }
}

impl FromRow<'_, PgRow> for RunningJob {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(RunningJob {
            source: parsed(row, "source")?,
            project_id: row.try_get("project_id")?,
            job_id: row.try_get("job_id")?,
            job_type: row.try_get("job_type")?,
            status: parsed(row, "status")?,
            raw_status: row.try_get("raw_status")?,
            progress: row.try_get("progress")?,
            since: time_text(row, "since")?,
            resource_name: row.try_get("resource_name")?,
        })
    }
}

impl FromRow<'_, PgRow> for RecentFailure {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(RecentFailure {
            failed_at: time_text(row, "failed_at")?,
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            job_id: row.try_get("job_id")?,
            resource_name: row.try_get("resource_name")?,
            error_code: row.try_get("error_code")?,
            fail_reason: row.try_get("fail_reason")?,
        })
    }
}
