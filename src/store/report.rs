//! The report's reads: one grouped pass over the jobs a window selects, the
//! failures by reason (and by reason and week), the unfinished jobs and the
//! latest failures. The report
//! folds these rows into its page; the SQL, and its SQLite dialect, stay here.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Row, Sqlite};

use super::{SqliteStore, StoreError};
use crate::model::{Source, Status};
use crate::normalize::format_utc;

/// The jobs a report covers. A job counts at its start time, else its end
/// time, else when jobtrail first saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobWindow<'a> {
    /// Jobs at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Jobs before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Empty means every source.
    pub sources: &'a [Source],
}

/// Selected jobs of one source, job type, status and week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGroup {
    pub source: Source,
    pub job_type: Option<String>,
    pub status: Status,
    /// Monday (UTC) of the week the jobs count in.
    pub week: Option<NaiveDate>,
    pub jobs: i64,
    /// The earliest and latest job time in the group, as stored.
    pub first: Option<String>,
    pub last: Option<String>,
    /// The duration of every job in the group that has one, in no order.
    pub durations_ms: Vec<i64>,
}

/// Selected failed jobs of one reason, source and job type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// The failure text the API gave, else its error code; `None` when neither.
    pub reason: Option<String>,
    pub source: Source,
    pub job_type: Option<String>,
    pub failures: i64,
    /// The earliest and latest job time in the group, as stored.
    pub first: String,
    pub last: String,
}

/// Selected failed jobs of one reason in one week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureWeek {
    /// The failure text the API gave, else its error code; `None` when neither.
    pub reason: Option<String>,
    /// The Monday (UTC) of the week the jobs count in; `None` for a stored
    /// time SQLite cannot read.
    pub week: Option<NaiveDate>,
    pub failures: i64,
}

/// How many jobs are not finished, and how many of those are stuck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnfinishedCounts {
    pub jobs: i64,
    /// Running since before the `stuck_before` instant asked about.
    pub stuck: i64,
}

/// A job still running (or in an unknown state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub source: Source,
    pub project_id: String,
    pub job_id: String,
    pub job_type: Option<String>,
    pub status: Status,
    pub raw_status: Option<String>,
    pub progress: Option<i64>,
    /// Its start time, else when jobtrail first saw it, as stored.
    pub since: String,
    pub resource_name: Option<String>,
}

/// A failed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentFailure {
    /// Its end time, else its start, else when jobtrail last saw it, as stored.
    pub failed_at: String,
    pub source: Source,
    pub job_type: Option<String>,
    pub job_id: String,
    pub resource_name: Option<String>,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
}

/// The time a job counts at in a report.
const JOB_TIME: &str = "COALESCE(started_at, ended_at, first_seen_at)";

/// The jobs that are not finished yet.
const UNFINISHED: &str = "status IN ('running', 'unknown')";

impl SqliteStore {
    /// Every job in the database, whatever the window.
    pub async fn count_jobs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The selected jobs grouped by source, job type, status and week: one pass
    /// gives the report its totals, rates, weeks and durations. (Each extra
    /// full scan costs about as much as this whole query on 100k jobs.)
    pub async fn job_groups(&self, window: &JobWindow<'_>) -> Result<Vec<JobGroup>, StoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT source, job_type, status, date(t, 'weekday 0', '-6 days') AS week, \
               COUNT(*) AS jobs, MIN(t) AS first, MAX(t) AS last, \
               group_concat(duration_ms) AS durations \
             FROM f GROUP BY source, job_type, status, week",
        );
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The selected failed jobs grouped by reason, source and job type (the
    /// status index finds them).
    pub async fn failure_groups(
        &self,
        window: &JobWindow<'_>,
    ) -> Result<Vec<FailureGroup>, StoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(fail_reason, error_code) AS reason, source, job_type, \
               COUNT(*) AS failures, MIN(t) AS first, MAX(t) AS last \
             FROM f WHERE status = 'failed' GROUP BY reason, source, job_type",
        );
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The selected failed jobs grouped by reason and week (the week as in
    /// [`SqliteStore::job_groups`]), for the report's reasons-over-time grid.
    pub async fn failure_weeks(
        &self,
        window: &JobWindow<'_>,
    ) -> Result<Vec<FailureWeek>, StoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(fail_reason, error_code) AS reason, \
               date(t, 'weekday 0', '-6 days') AS week, COUNT(*) AS failures \
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
    ) -> Result<UnfinishedCounts, StoreError> {
        let mut q = QueryBuilder::new(
            "SELECT COUNT(*), \
               COALESCE(SUM(CASE WHEN COALESCE(started_at, first_seen_at) < ",
        );
        q.push_bind(format_utc(stuck_before));
        q.push(format!(
            " THEN 1 ELSE 0 END), 0) FROM jobs WHERE {UNFINISHED}"
        ));
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
    ) -> Result<Vec<RunningJob>, StoreError> {
        let mut q = QueryBuilder::new(format!(
            "SELECT source, project_id, job_id, job_type, status, raw_status, progress, \
               COALESCE(started_at, first_seen_at) AS since, resource_name \
             FROM jobs WHERE {UNFINISHED}"
        ));
        push_sources(&mut q, sources);
        q.push(" ORDER BY since, source, job_id LIMIT ");
        q.push_bind(row_limit(limit));
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The `limit` latest failures among the selected jobs, latest first.
    pub async fn recent_failures(
        &self,
        window: &JobWindow<'_>,
        limit: usize,
    ) -> Result<Vec<RecentFailure>, StoreError> {
        let mut q = selected_jobs(window);
        q.push(
            "SELECT COALESCE(ended_at, started_at, last_seen_at) AS failed_at, source, job_type, \
               job_id, resource_name, error_code, fail_reason \
             FROM f WHERE status = 'failed' ORDER BY failed_at DESC, source, job_id LIMIT ",
        );
        q.push_bind(row_limit(limit));
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }
}

/// Starts a query over `f`: the jobs `window` selects, each with its time `t`.
fn selected_jobs(window: &JobWindow<'_>) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::new(format!(
        "WITH f AS (SELECT *, {JOB_TIME} AS t FROM jobs WHERE true"
    ));
    if let Some(since) = window.since {
        q.push(format!(" AND {JOB_TIME} >= "));
        q.push_bind(format_utc(since));
    }
    if let Some(until) = window.until {
        q.push(format!(" AND {JOB_TIME} < "));
        q.push_bind(format_utc(until));
    }
    push_sources(&mut q, window.sources);
    q.push(") ");
    q
}

/// Adds ` AND source IN (…)` unless `sources` is empty (every source).
fn push_sources(q: &mut QueryBuilder<Sqlite>, sources: &[Source]) {
    if sources.is_empty() {
        return;
    }
    q.push(" AND source IN (");
    let mut list = q.separated(", ");
    for source in sources {
        list.push_bind(source.as_str());
    }
    list.push_unseparated(")");
}

fn row_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Decodes a text column into a type that parses it (a source, a status).
fn parsed<T: FromStr<Err = String>>(row: &SqliteRow, column: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|why: String| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: why.into(),
        })
}

/// The `week` column: SQLite's `date()` writes `YYYY-MM-DD` (NULL for a time
/// it cannot read).
fn parsed_week(row: &SqliteRow) -> sqlx::Result<Option<NaiveDate>> {
    let week: Option<String> = row.try_get("week")?;
    Ok(week.and_then(|w| NaiveDate::parse_from_str(&w, "%Y-%m-%d").ok()))
}

impl FromRow<'_, SqliteRow> for JobGroup {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let durations: Option<String> = row.try_get("durations")?;
        Ok(JobGroup {
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            status: parsed(row, "status")?,
            week: parsed_week(row)?,
            jobs: row.try_get("jobs")?,
            first: row.try_get("first")?,
            last: row.try_get("last")?,
            // `group_concat` joins the group's non-NULL durations with commas.
            durations_ms: durations
                .iter()
                .flat_map(|list| list.split(','))
                .filter_map(|v| v.parse().ok())
                .collect(),
        })
    }
}

impl FromRow<'_, SqliteRow> for FailureGroup {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        Ok(FailureGroup {
            reason: row.try_get("reason")?,
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            failures: row.try_get("failures")?,
            first: row.try_get("first")?,
            last: row.try_get("last")?,
        })
    }
}

impl FromRow<'_, SqliteRow> for FailureWeek {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        Ok(FailureWeek {
            reason: row.try_get("reason")?,
            week: parsed_week(row)?,
            failures: row.try_get("failures")?,
        })
    }
}

impl FromRow<'_, SqliteRow> for RunningJob {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        Ok(RunningJob {
            source: parsed(row, "source")?,
            project_id: row.try_get("project_id")?,
            job_id: row.try_get("job_id")?,
            job_type: row.try_get("job_type")?,
            status: parsed(row, "status")?,
            raw_status: row.try_get("raw_status")?,
            progress: row.try_get("progress")?,
            since: row.try_get("since")?,
            resource_name: row.try_get("resource_name")?,
        })
    }
}

impl FromRow<'_, SqliteRow> for RecentFailure {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        Ok(RecentFailure {
            failed_at: row.try_get("failed_at")?,
            source: parsed(row, "source")?,
            job_type: row.try_get("job_type")?,
            job_id: row.try_get("job_id")?,
            resource_name: row.try_get("resource_name")?,
            error_code: row.try_get("error_code")?,
            fail_reason: row.try_get("fail_reason")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::test_support::{db_with, job};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0)
            .single()
            .expect("test time")
    }

    #[tokio::test]
    async fn windows_select_by_time_and_source() {
        let hour = Duration::hours(1);
        let mut failed = job(
            Source::Dbss,
            "f",
            Some("Audit"),
            Status::Failed,
            Some(at(3)),
            Some(at(3) + hour),
        );
        failed.fail_reason = None;
        failed.error_code = None;
        let rows = vec![
            job(
                Source::Nosql,
                "a",
                Some("Backup"),
                Status::Succeeded,
                Some(at(1)),
                Some(at(1) + hour),
            ),
            job(
                Source::Nosql,
                "b",
                Some("Backup"),
                Status::Succeeded,
                Some(at(2)),
                Some(at(2) + hour),
            ),
            failed,
            job(Source::Image, "r", None, Status::Running, Some(at(4)), None),
        ];
        let db = db_with(&[rows]).await;
        let jobs = |groups: Vec<JobGroup>| groups.iter().map(|g| g.jobs).sum::<i64>();

        assert_eq!(db.store.count_jobs().await.expect("count"), 4);
        let all = db
            .store
            .job_groups(&JobWindow::default())
            .await
            .expect("groups");
        assert_eq!(jobs(all), 4);
        // `since` is included, `until` excluded.
        let window = JobWindow {
            since: Some(at(2)),
            until: Some(at(4)),
            sources: &[],
        };
        assert_eq!(jobs(db.store.job_groups(&window).await.expect("groups")), 2);
        let nosql = JobWindow {
            sources: &[Source::Nosql],
            ..JobWindow::default()
        };
        let groups = db.store.job_groups(&nosql).await.expect("groups");
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].week, NaiveDate::from_ymd_opt(2024, 1, 1));
        assert_eq!(groups[0].durations_ms, [3_600_000, 3_600_000]);

        let failures = db.store.failure_groups(&window).await.expect("failures");
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].reason.as_deref(), failures[0].failures),
            (None, 1)
        );
        let weeks = db.store.failure_weeks(&window).await.expect("weeks");
        let monday = NaiveDate::from_ymd_opt(2024, 1, 1);
        assert_eq!(
            weeks,
            [FailureWeek {
                reason: None,
                week: monday,
                failures: 1
            }]
        );
        assert!(
            db.store
                .failure_weeks(&nosql)
                .await
                .expect("weeks")
                .is_empty()
        );
        let recent = db.store.recent_failures(&nosql, 10).await.expect("recent");
        assert!(recent.is_empty());

        // Unfinished jobs ignore the time window, not the sources.
        let counts = db
            .store
            .unfinished_counts(&[Source::Image], at(5))
            .await
            .expect("counts");
        assert_eq!(counts, UnfinishedCounts { jobs: 1, stuck: 1 });
        let running = db
            .store
            .oldest_running_jobs(&[Source::Nosql, Source::Dbss], 10)
            .await
            .expect("running");
        assert!(running.is_empty());
    }
}
