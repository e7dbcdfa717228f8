//! What operators watch, read for `sync --metrics-file` and `--print-failures`:
//! when each project and source last synced completely (kept in `sync_state`),
//! the jobs a run saw become failed, and the oldest unfinished job per source.

use chrono::{DateTime, Utc};

use super::{SqliteStore, StoreError, SyncRun};
use crate::model::Source;
use crate::normalize::{format_utc, parse_api_time};

/// The `sync_state` key under which a (project, source) pair's last complete
/// sync is kept: the time that run finished (UTC text).
pub(super) const LAST_SUCCESS_KEY: &str = "last_success";

/// When one project and source last synced completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSuccess {
    pub project_id: String,
    pub source: Source,
    pub at: DateTime<Utc>,
}

/// A job that became failed in a run: it was first seen failed, or it was
/// something else before. Its details are as stored now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NewFailure {
    pub source: String,
    pub project_id: String,
    pub job_id: String,
    pub job_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
}

/// The distinct jobs with a history row of run `?2` (its rows have ids above
/// `?1`, see [`SyncRun::history_before`]) that turned them failed.
const BECAME_FAILED: &str = "SELECT DISTINCT source, project_id, job_id FROM job_status_changes \
     WHERE id > ?1 AND sync_id = ?2 AND new_status = 'failed' AND old_status IS NOT 'failed'";

impl SqliteStore {
    /// Records that these (project, source) pairs synced completely in a run
    /// that finished `at`; earlier records of other pairs stay as they are.
    pub async fn record_complete_syncs(
        &self,
        pairs: &[(&str, Source)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = format_utc(at);
        let mut tx = self.pool.begin().await?;
        for (project_id, source) in pairs {
            sqlx::query(super::state::UPSERT_STATE_SQL)
                .bind(*project_id)
                .bind(source.as_str())
                .bind(LAST_SUCCESS_KEY)
                .bind(&at)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every pair's last complete sync, by project then source (pairs never
    /// synced completely have none).
    pub async fn last_successes(&self) -> Result<Vec<LastSuccess>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT project_id, source, value FROM sync_state WHERE key = ? \
             ORDER BY project_id, source",
        )
        .bind(LAST_SUCCESS_KEY)
        .fetch_all(&self.pool)
        .await?;
        Ok(last_successes_from(rows))
    }

    /// The jobs that became failed in `run`, by source, project and job ID.
    pub async fn new_failures(&self, run: &SyncRun) -> Result<Vec<NewFailure>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT j.source, j.project_id, j.job_id, j.job_type, j.resource_id, j.resource_name, \
                    j.error_code, j.fail_reason \
             FROM ({BECAME_FAILED}) became \
             JOIN jobs j ON j.source = became.source AND j.project_id = became.project_id \
                        AND j.job_id = became.job_id \
             ORDER BY j.source, j.project_id, j.job_id"
        )))
        .bind(run.history_before)
        .bind(run.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many jobs of each source became failed in `run` (sources with
    /// none are left out).
    pub async fn new_failure_counts(
        &self,
        run: &SyncRun,
    ) -> Result<Vec<(Source, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT source, COUNT(*) FROM ({BECAME_FAILED}) GROUP BY source ORDER BY source"
        )))
        .bind(run.history_before)
        .bind(run.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(source, n)| Some((source.parse().ok()?, n)))
            .collect())
    }

    /// Per source, when its oldest unfinished job (running or unknown)
    /// started, else when jobtrail first saw it (sources with none are left out).
    pub async fn oldest_unfinished_by_source(
        &self,
    ) -> Result<Vec<(Source, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT source, MIN(COALESCE(started_at, first_seen_at)) FROM jobs \
             WHERE status IN ('running', 'unknown') GROUP BY source ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(source, since)| {
                Some((source.parse().ok()?, parse_api_time(since.as_deref()?)?))
            })
            .collect())
    }
}

/// `last_success` rows of `sync_state` (project, source, time text) as
/// typed values; a row either backend cannot read is left out.
pub(super) fn last_successes_from(rows: Vec<(String, String, String)>) -> Vec<LastSuccess> {
    rows.into_iter()
        .filter_map(|(project_id, source, value)| {
            Some(LastSuccess {
                project_id,
                source: source.parse().ok()?,
                at: parse_api_time(&value)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::test_support::{db_with, job};

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    #[tokio::test]
    async fn last_successes_read_back_per_pair_and_a_later_one_replaces_an_earlier() {
        let db = db_with(&[]).await;
        let store = &db.store;
        let first = t("2024-03-01T00:00:00Z");
        let later = t("2024-03-01T00:15:00Z");
        store
            .record_complete_syncs(&[("p1", Source::Nosql), ("p1", Source::Dbss)], first)
            .await
            .expect("record");
        store
            .record_complete_syncs(&[("p1", Source::Dbss)], later)
            .await
            .expect("record");
        let got = store.last_successes().await.expect("read");
        let want = |source, at| LastSuccess {
            project_id: "p1".into(),
            source,
            at,
        };
        assert_eq!(
            got,
            vec![want(Source::Dbss, later), want(Source::Nosql, first)]
        );
        // A watermark is not a success.
        assert_eq!(
            store
                .miss_counts("p1", Source::Dbss)
                .await
                .expect("m")
                .len(),
            0
        );
    }

    #[tokio::test]
    async fn jobs_that_became_failed_in_a_run_and_the_oldest_unfinished() {
        // Run 1 stores a running job and a failed one; run 2 sees the running
        // one fail and the failed one's reason change (still failed: no news).
        let with_reason = |source, id, status, reason: &str| {
            let mut row = job(source, id, None, status, None, None);
            row.fail_reason = Some(reason.to_owned());
            row
        };
        let run1 = vec![
            job(Source::Nosql, "a", None, Status::Running, None, None),
            with_reason(Source::Dbss, "b", Status::Failed, "old"),
        ];
        let run2 = vec![
            with_reason(Source::Nosql, "a", Status::Failed, "disk full"),
            with_reason(Source::Dbss, "b", Status::Failed, "new"),
        ];
        let db = db_with(&[run1, run2]).await;
        let store = &db.store;
        let all = SyncRun {
            id: 1,
            started_at: Utc::now(),
            history_before: 0,
        };
        let first = store.new_failures(&all).await.expect("run 1");
        assert_eq!(
            first.iter().map(|f| f.job_id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let second = SyncRun { id: 2, ..all };
        let news = store.new_failures(&second).await.expect("run 2");
        assert_eq!(news.len(), 1, "{news:?}");
        assert_eq!(
            (news[0].source.as_str(), news[0].job_id.as_str()),
            ("nosql", "a")
        );
        assert_eq!(news[0].fail_reason.as_deref(), Some("disk full"));
        assert_eq!(
            store.new_failure_counts(&second).await.expect("counts"),
            vec![(Source::Nosql, 1)]
        );
        assert!(
            store
                .oldest_unfinished_by_source()
                .await
                .expect("oldest")
                .is_empty()
        );
    }
}
