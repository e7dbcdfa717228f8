//! `sync_scopes`: what each (project, region, source) scope of a run did,
//! written in the transaction that closes the run (`runs`), and the scopes
//! whose latest run did not succeed, with since when (for `jobtrail status`).

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::runs::{RunOutcome, RunTotals, SyncRun};
use super::{SqliteStore, StoreError};
use crate::model::Source;
use crate::normalize::format_utc;

/// Scope rows of runs older than the last this many are dropped when a run
/// closes, except each scope's latest row: an account of 50 projects keeps
/// 150 rows per run, and "failing since" lives in the latest row anyway.
pub const RETAINED_RUNS: i64 = 1_000;

/// How one (project, source) scope of a run ended, as the sync saw it. Its
/// job counts are the store's to take, from the rows the run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRecord {
    pub project_id: String,
    pub region: String,
    pub source: Source,
    pub outcome: RunOutcome,
    /// HTTP requests made for this scope, retries included.
    pub requests: u64,
    /// What failed, when it did not succeed.
    pub error: Option<String>,
}

/// A scope whose latest run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailingScopeRow {
    pub project_id: String,
    pub region: String,
    pub source: String,
    /// `partial` or `failed`.
    pub status: String,
    pub error: Option<String>,
    /// When the first run of its current failing streak started (UTC text).
    pub failing_since: String,
    /// Runs in that streak, the latest included.
    pub failed_runs: i64,
    pub last_sync_id: i64,
    /// When its latest run started (UTC text).
    pub last_run_at: String,
}

/// A (project, source) pair as stored: the key of a scope's counts.
pub(super) type ScopeKey = (String, String);

/// Jobs a run stored, per (project, source): one pass over the run's rows
/// (`jobs_by_last_sync`) and one over the history it wrote (a range of ids),
/// so the cost follows the run's size, not the history's.
pub(super) async fn totals_by_scope(
    conn: &mut SqliteConnection,
    run: &SyncRun,
) -> Result<HashMap<ScopeKey, RunTotals>, StoreError> {
    let seen: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT project_id, source, COUNT(*) FROM jobs WHERE last_sync_id = ? \
         GROUP BY project_id, source",
    )
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    let history: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT project_id, source, COALESCE(SUM(old_status IS NULL), 0), \
         COALESCE(SUM(old_status IS NOT NULL), 0) \
         FROM job_status_changes WHERE id > ? AND sync_id = ? GROUP BY project_id, source",
    )
    .bind(run.history_before)
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(combine(seen, history))
}

/// Each scope's totals from the two grouped counts both backends read: jobs
/// seen per (project, source), and history rows of first sights and changes.
pub(super) fn combine(
    seen: Vec<(String, String, i64)>,
    history: Vec<(String, String, i64, i64)>,
) -> HashMap<ScopeKey, RunTotals> {
    let mut totals: HashMap<ScopeKey, RunTotals> = HashMap::new();
    for (project_id, source, n) in seen {
        totals.entry((project_id, source)).or_default().seen = n;
    }
    for (project_id, source, new, changed) in history {
        let entry = totals.entry((project_id, source)).or_default();
        entry.new = new;
        entry.changed = changed;
    }
    totals
}

/// The run's totals: the sum over its scopes.
pub(super) fn sum(totals: &HashMap<ScopeKey, RunTotals>) -> RunTotals {
    totals
        .values()
        .fold(RunTotals::default(), |a, t| RunTotals {
            seen: a.seen + t.seen,
            new: a.new + t.new,
            changed: a.changed + t.changed,
        })
}

/// One row per scope, carrying its failing streak on from the scope's
/// previous row. Returns each scope's counts, in the order given.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    run: &SyncRun,
    scopes: &[ScopeRecord],
    totals: &HashMap<ScopeKey, RunTotals>,
) -> Result<Vec<RunTotals>, StoreError> {
    let started_at = format_utc(run.started_at);
    let mut counts = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let key = (scope.project_id.clone(), scope.source.as_str().to_owned());
        let t = totals.get(&key).copied().unwrap_or_default();
        sqlx::query(
            "INSERT INTO sync_scopes (sync_id, project_id, region, source, status, requests, \
             jobs_seen, jobs_new, jobs_changed, error, failing_since, failed_runs) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             CASE WHEN ?5 = 'succeeded' THEN NULL ELSE COALESCE((SELECT failing_since \
                 FROM sync_scopes WHERE project_id = ?2 AND source = ?4 AND sync_id < ?1 \
                 ORDER BY sync_id DESC LIMIT 1), ?11) END, \
             CASE WHEN ?5 = 'succeeded' THEN 0 ELSE COALESCE((SELECT failed_runs \
                 FROM sync_scopes WHERE project_id = ?2 AND source = ?4 AND sync_id < ?1 \
                 ORDER BY sync_id DESC LIMIT 1), 0) + 1 END)",
        )
        .bind(run.id)
        .bind(&scope.project_id)
        .bind(&scope.region)
        .bind(scope.source.as_str())
        .bind(scope.outcome.as_str())
        .bind(i64::try_from(scope.requests).unwrap_or(i64::MAX))
        .bind(t.seen)
        .bind(t.new)
        .bind(t.changed)
        .bind(scope.error.as_deref())
        .bind(&started_at)
        .execute(&mut *conn)
        .await?;
        counts.push(t);
    }
    Ok(counts)
}

/// Drops scope rows older than the last `retained` runs ([`RETAINED_RUNS`]),
/// keeping each scope's latest.
pub(super) async fn prune(
    conn: &mut SqliteConnection,
    run: &SyncRun,
    retained: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM sync_scopes WHERE sync_id <= ?1 - ?2 AND EXISTS (
             SELECT 1 FROM sync_scopes n WHERE n.project_id = sync_scopes.project_id
               AND n.source = sync_scopes.source AND n.sync_id > sync_scopes.sync_id)",
    )
    .bind(run.id)
    .bind(retained)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// Scopes whose latest run did not succeed, longest failing first. One
    /// failing project never hides another: each scope has its own row.
    /// A database no jobtrail with scopes has written to yet (opened read-only,
    /// so not migrated) has none.
    pub async fn failing_scopes(&self) -> Result<Vec<FailingScopeRow>, StoreError> {
        let has_scopes: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_scopes'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if has_scopes.is_none() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT s.project_id, s.region, s.source, s.status, s.error, \
             COALESCE(s.failing_since, r.started_at) AS failing_since, s.failed_runs, \
             s.sync_id AS last_sync_id, r.started_at AS last_run_at \
             FROM sync_scopes s JOIN sync_runs r ON r.id = s.sync_id \
             WHERE s.status <> 'succeeded' AND s.sync_id = (SELECT MAX(l.sync_id) \
                 FROM sync_scopes l WHERE l.project_id = s.project_id AND l.source = s.source) \
             ORDER BY 6, s.project_id, s.source",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::model::Status;
    use crate::normalize::parse_api_time;
    use crate::store::{JobBatch, RunEnd, Store};
    use crate::test_support::{db_with, job};

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    fn scope(project: &str, outcome: RunOutcome) -> ScopeRecord {
        ScopeRecord {
            project_id: project.into(),
            region: "cn-north-4".into(),
            source: Source::Nosql,
            outcome,
            requests: 3,
            error: (outcome != RunOutcome::Succeeded).then(|| format!("{project} refused")),
        }
    }

    /// Runs one sync at `at` that stores `rows` and ends with `scopes`.
    async fn run(
        store: &Store,
        at: &str,
        rows: Vec<crate::model::JobRow>,
        scopes: &[ScopeRecord],
    ) -> RunCounts {
        let at = t(at);
        let run = store.begin_run(&[Source::Nosql], at).await.expect("begin");
        store
            .write_batch(
                run.id,
                at,
                JobBatch {
                    rows,
                    state: Vec::new(),
                },
            )
            .await
            .expect("write");
        let end = RunEnd {
            scopes,
            ..RunEnd::bare(RunOutcome::Partial, 9, at)
        };
        store.finish_run(&run, end).await.expect("finish")
    }

    use super::super::runs::RunCounts;

    fn of(project: &str, id: &str, status: Status) -> crate::model::JobRow {
        let mut row = job(Source::Nosql, id, None, status, None, None);
        row.project_id = project.into();
        row
    }

    #[tokio::test]
    async fn each_scope_is_counted_and_a_failing_streak_is_dated_from_its_first_run() {
        let db = db_with(&[]).await;
        let store = &db.store;
        let counts = run(
            store,
            "2024-03-01T00:00:00Z",
            vec![
                of("p1", "a", Status::Running),
                of("p1", "b", Status::Failed),
            ],
            &[
                scope("p1", RunOutcome::Succeeded),
                scope("p2", RunOutcome::Failed),
            ],
        )
        .await;
        assert_eq!(
            counts.totals,
            RunTotals {
                seen: 2,
                new: 2,
                changed: 0
            }
        );
        assert_eq!(
            counts.scopes[0],
            RunTotals {
                seen: 2,
                new: 2,
                changed: 0
            }
        );
        assert_eq!(counts.scopes[1], RunTotals::default());
        let failing = store.failing_scopes().await.expect("failing");
        assert_eq!(failing.len(), 1);
        assert_eq!(
            (failing[0].project_id.as_str(), failing[0].failed_runs),
            ("p2", 1)
        );
        assert_eq!(failing[0].failing_since, "2024-03-01T00:00:00.000Z");
        assert_eq!(failing[0].error.as_deref(), Some("p2 refused"));

        let counts = run(
            store,
            "2024-03-02T00:00:00Z",
            vec![of("p1", "a", Status::Succeeded)],
            &[
                scope("p1", RunOutcome::Failed),
                scope("p2", RunOutcome::Partial),
            ],
        )
        .await;
        assert_eq!(
            counts.scopes[0],
            RunTotals {
                seen: 1,
                new: 0,
                changed: 1
            }
        );
        let failing = store.failing_scopes().await.expect("failing");
        let summary: Vec<(&str, &str, &str, i64)> = failing
            .iter()
            .map(|f| {
                (
                    f.project_id.as_str(),
                    f.status.as_str(),
                    f.failing_since.as_str(),
                    f.failed_runs,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("p2", "partial", "2024-03-01T00:00:00.000Z", 2),
                ("p1", "failed", "2024-03-02T00:00:00.000Z", 1),
            ],
            "longest failing first"
        );
        assert_eq!(failing[1].last_run_at, "2024-03-02T00:00:00.000Z");

        // A success ends the streak; a scope left out of a run keeps its latest row.
        run(
            store,
            "2024-03-03T00:00:00Z",
            vec![],
            &[scope("p1", RunOutcome::Succeeded)],
        )
        .await;
        let failing = store.failing_scopes().await.expect("failing");
        assert_eq!(failing.len(), 1);
        assert_eq!(
            (failing[0].project_id.as_str(), failing[0].failed_runs),
            ("p2", 2)
        );
        run(
            store,
            "2024-03-04T00:00:00Z",
            vec![],
            &[scope("p1", RunOutcome::Failed)],
        )
        .await;
        let p1 = store.failing_scopes().await.expect("failing");
        let p1 = p1
            .iter()
            .find(|f| f.project_id == "p1")
            .expect("p1 fails again");
        assert_eq!(
            (p1.failing_since.as_str(), p1.failed_runs),
            ("2024-03-04T00:00:00.000Z", 1)
        );
    }

    #[tokio::test]
    async fn a_database_from_before_scopes_has_none_failing() {
        let db = db_with(&[]).await;
        sqlx::query("DROP TABLE sync_scopes")
            .execute(db.store.sqlite_pool())
            .await
            .expect("drop");
        assert_eq!(db.store.failing_scopes().await.expect("read"), Vec::new());
    }

    #[tokio::test]
    async fn old_scope_rows_are_dropped_but_each_scope_keeps_its_latest() {
        let db = db_with(&[]).await;
        let store = &db.store;
        run(
            store,
            "2024-03-01T00:00:00Z",
            vec![],
            &[
                scope("p1", RunOutcome::Succeeded),
                scope("gone", RunOutcome::Failed),
            ],
        )
        .await;
        for day in 2..=4 {
            run(
                store,
                &format!("2024-03-0{day}T00:00:00Z"),
                vec![],
                &[scope("p1", RunOutcome::Succeeded)],
            )
            .await;
        }
        let latest = store
            .begin_run(&[Source::Nosql], t("2024-03-05T00:00:00Z"))
            .await
            .expect("begin");
        let mut conn = store.sqlite_pool().acquire().await.expect("conn");
        prune(&mut conn, &latest, 2).await.expect("prune");
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT sync_id, project_id FROM sync_scopes ORDER BY sync_id, project_id",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("rows");
        assert_eq!(
            rows,
            vec![(1, "gone".to_owned()), (4, "p1".to_owned())],
            "runs 1-3 are older than the last 2; `gone` has no newer row"
        );
    }
}
