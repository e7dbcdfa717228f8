//! Moving a whole history between databases (`jobtrail copy`): the rows of
//! every history table (runs and their scopes, jobs, status changes, state)
//! as typed records, read in chunks by key (`export_*`) and written by an
//! [`Importer`] in one transaction, so a copy is all or nothing. The
//! `iam_projects` cache is not copied: it is IAM's answer kept a day, which
//! the target's next sync asks again. The rules that decide what a run of the source becomes in the
//! target ([`RunMap`]) are the same on both backends; the SQL is each
//! backend's (SQLite's below, PostgreSQL's in `postgres/transfer.rs`).
//!
//! Copying is idempotent: a job is replaced only by a later sighting of it,
//! a state entry only by a later value, a run only while it is still marked
//! running, and a status change or a scope of a run is added once (a scope
//! keyed by its run's id in the target and its project and source). A source
//! from before scopes were recorded (no `sync_scopes` table) has none to give. A target that holds a
//! *different history* (a run the source does not have, or the same run id
//! for another run) is refused unless [`ImportMode::Merge`] is asked for;
//! merging gives the source's runs new ids where they collide.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, Sqlite, Transaction};

use super::postgres::PgImporter;
use super::{SqliteStore, StoreError};
use crate::model::{JobRow, Source};
use crate::normalize::{format_utc, parse_api_time};

/// How many rows of each kind a history holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryCounts {
    pub runs: i64,
    /// `sync_scopes` rows (none in a database from before scopes).
    pub scopes: i64,
    pub jobs: i64,
    pub changes: i64,
    pub state: i64,
}

impl HistoryCounts {
    pub fn total(&self) -> i64 {
        self.runs + self.scopes + self.jobs + self.changes + self.state
    }
}

/// One `sync_runs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `partial` or `failed`.
    pub status: String,
    pub sources: String,
    pub requests: i64,
    pub jobs_seen: i64,
    pub jobs_new: i64,
    pub jobs_changed: i64,
    pub error: Option<String>,
    pub pid: Option<i64>,
}

/// One `sync_scopes` row: how one (project, region, source) scope of a run
/// ended. It belongs to its run, and goes wherever its run goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScopeRecord {
    pub sync_id: i64,
    pub project_id: String,
    pub region: String,
    pub source: String,
    /// `succeeded`, `partial` or `failed`.
    pub status: String,
    pub requests: i64,
    pub jobs_seen: i64,
    pub jobs_new: i64,
    pub jobs_changed: i64,
    pub error: Option<String>,
    /// When the scope's current failing streak began (`None` when it succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    pub failed_runs: i64,
}

impl RunScopeRecord {
    pub fn scope_key(&self) -> RunScopeKey {
        RunScopeKey {
            sync_id: self.sync_id,
            project_id: self.project_id.clone(),
            source: self.source.clone(),
        }
    }

    /// How an error names the row.
    pub(in crate::store) fn describe(&self) -> String {
        format!(
            "{} scope of project {} in sync run #{}",
            self.source, self.project_id, self.sync_id
        )
    }
}

/// A scope row's primary key: where the next chunk of scopes starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScopeKey {
    pub sync_id: i64,
    pub project_id: String,
    pub source: String,
}

/// One `jobs` row: the job as normalized, and jobtrail's own bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: JobRow,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub last_sync_id: i64,
}

impl JobRecord {
    pub fn key(&self) -> JobKey {
        JobKey {
            source: self.job.source,
            project_id: self.job.project_id.clone(),
            job_id: self.job.job_id.clone(),
        }
    }
}

/// A job's primary key: where the next chunk of jobs starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub source: Source,
    pub project_id: String,
    pub job_id: String,
}

/// One `job_status_changes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub id: i64,
    pub source: String,
    pub project_id: String,
    pub job_id: String,
    pub old_status: Option<String>,
    pub new_status: String,
    pub raw_status: Option<String>,
    pub fail_reason: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub sync_id: i64,
}

/// One `sync_state` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    pub project_id: String,
    pub source: String,
    pub key: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

impl StateRecord {
    pub fn state_key(&self) -> StateKey {
        StateKey {
            project_id: self.project_id.clone(),
            source: self.source.clone(),
            key: self.key.clone(),
        }
    }
}

/// A state entry's primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateKey {
    pub project_id: String,
    pub source: String,
    pub key: String,
}

/// What a target may already hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Nothing, or an earlier copy of the same history: anything else is refused.
    SameHistory,
    /// Anything: the histories are merged (`copy --merge`).
    Merge,
}

/// What an import changed in the target (zero everywhere: it held it all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub runs: u64,
    pub scopes: u64,
    pub jobs: u64,
    pub changes: u64,
    pub state: u64,
}

/// Why a history cannot be copied.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(
        "the target holds a different history ({detail}); copy into an empty database, or pass --merge to merge the two"
    )]
    DifferentHistory { detail: String },
    #[error("the source's {what} refers to sync run #{id}, which it does not hold")]
    UnknownRun { what: String, id: i64 },
    #[error("the source's {what} has {column} {value:?}, which is not a valid {column}")]
    BadValue {
        what: String,
        column: &'static str,
        value: String,
    },
}

/// What identifies a run across databases: when it started, what it synced
/// and the process that ran it.
type RunIdentity = (DateTime<Utc>, String, Option<i64>);

fn identity(run: &RunRecord) -> RunIdentity {
    (run.started_at, run.sources.clone(), run.pid)
}

/// What to do with a run of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunPlan {
    /// The target holds it as this id: bring its outcome up to date.
    Update(i64),
    /// The target lacks it: insert it with this id.
    Insert(i64),
}

/// Where a status change of the source goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangePlan {
    /// With its own id, unless the target has that id already.
    KeepId { sync_id: i64 },
    /// With a new id (a merged run's history).
    NewId { sync_id: i64 },
    /// The target holds this run's history already (merging).
    Skip,
}

/// The rules that map the source's runs onto the target's.
#[derive(Debug)]
pub(super) struct RunMap {
    mode: ImportMode,
    target: HashMap<i64, RunIdentity>,
    by_identity: HashMap<RunIdentity, i64>,
    /// Target runs the source also holds.
    matched: HashSet<i64>,
    /// The id a merged run gets next.
    next_id: i64,
    /// Source run id → (target id, inserted by this import).
    map: HashMap<i64, (i64, bool)>,
}

impl RunMap {
    pub fn new(mode: ImportMode, target_runs: Vec<(i64, RunIdentity)>) -> RunMap {
        let next_id = target_runs.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        let by_identity = target_runs
            .iter()
            .map(|(id, identity)| (identity.clone(), *id))
            .collect();
        RunMap {
            mode,
            target: target_runs.into_iter().collect(),
            by_identity,
            matched: HashSet::new(),
            next_id,
            map: HashMap::new(),
        }
    }

    /// Where a run of the source goes (in id order).
    pub fn plan(&mut self, run: &RunRecord) -> Result<RunPlan, TransferError> {
        let wanted = identity(run);
        let same_id = self.target.get(&run.id);
        let plan = if same_id == Some(&wanted) {
            RunPlan::Update(run.id)
        } else if let Some(&id) = self
            .by_identity
            .get(&wanted)
            .filter(|_| self.mode == ImportMode::Merge)
        {
            RunPlan::Update(id)
        } else if let Some((started, ..)) = same_id {
            if self.mode == ImportMode::SameHistory {
                return Err(TransferError::DifferentHistory {
                    detail: format!(
                        "its sync run #{} started at {}, the source's at {}",
                        run.id,
                        format_utc(*started),
                        format_utc(run.started_at)
                    ),
                });
            }
            RunPlan::Insert(self.take_id())
        } else if self.mode == ImportMode::Merge && run.id < self.next_id {
            RunPlan::Insert(self.take_id())
        } else {
            self.next_id = self.next_id.max(run.id + 1);
            RunPlan::Insert(run.id)
        };
        let (id, inserted) = match plan {
            RunPlan::Update(id) => {
                self.matched.insert(id);
                (id, false)
            }
            RunPlan::Insert(id) => (id, true),
        };
        self.map.insert(run.id, (id, inserted));
        Ok(plan)
    }

    fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// After every run: without merging, a target run the source lacks means
    /// another history.
    pub fn check_complete(&self) -> Result<(), TransferError> {
        if self.mode == ImportMode::Merge {
            return Ok(());
        }
        let mut extra: Vec<i64> = self
            .target
            .keys()
            .filter(|id| !self.matched.contains(id))
            .copied()
            .collect();
        extra.sort_unstable();
        match extra.first() {
            None => Ok(()),
            Some(first) => Err(TransferError::DifferentHistory {
                detail: format!(
                    "{} sync run(s) the source does not have, the first #{first}",
                    extra.len()
                ),
            }),
        }
    }

    /// The target's id for run `id` of the source.
    pub fn run_id(&self, id: i64, what: impl FnOnce() -> String) -> Result<i64, TransferError> {
        self.map
            .get(&id)
            .map(|(target, _)| *target)
            .ok_or_else(|| TransferError::UnknownRun { what: what(), id })
    }

    /// Where a status change of the source goes.
    pub fn change(&self, change: &ChangeRecord) -> Result<ChangePlan, TransferError> {
        let (sync_id, inserted) =
            *self
                .map
                .get(&change.sync_id)
                .ok_or_else(|| TransferError::UnknownRun {
                    what: format!("status change #{}", change.id),
                    id: change.sync_id,
                })?;
        Ok(match (self.mode, inserted) {
            (ImportMode::SameHistory, _) => ChangePlan::KeepId { sync_id },
            (ImportMode::Merge, true) => ChangePlan::NewId { sync_id },
            (ImportMode::Merge, false) => ChangePlan::Skip,
        })
    }
}

/// A copy into one database, in one transaction: [`Importer::runs`] (every
/// chunk, in id order), [`Importer::end_runs`], then the runs' scopes, status
/// changes (before the jobs: merging, a first sighting of a job the target
/// already knows is left out), jobs and state in chunks, then
/// [`Importer::commit`]. Dropped without committing, it changes nothing.
pub enum Importer {
    Sqlite(SqliteImporter),
    Postgres(PgImporter),
}

macro_rules! each_backend {
    ($self:ident, $importer:ident => $call:expr) => {
        match $self {
            Importer::Sqlite($importer) => $call,
            Importer::Postgres($importer) => Ok($call?),
        }
    };
}

impl Importer {
    pub async fn runs(&mut self, runs: &[RunRecord]) -> Result<(), StoreError> {
        each_backend!(self, i => i.runs(runs).await)
    }

    /// Says every run was given; refuses a target with another history.
    pub fn end_runs(&self) -> Result<(), StoreError> {
        let map = match self {
            Importer::Sqlite(i) => &i.map,
            Importer::Postgres(i) => i.run_map(),
        };
        Ok(map.check_complete()?)
    }

    /// Scopes of runs already given, each under its run's id in the target.
    pub async fn scopes(&mut self, scopes: &[RunScopeRecord]) -> Result<(), StoreError> {
        each_backend!(self, i => i.scopes(scopes).await)
    }

    pub async fn jobs(&mut self, jobs: &[JobRecord]) -> Result<(), StoreError> {
        each_backend!(self, i => i.jobs(jobs).await)
    }

    pub async fn changes(&mut self, changes: &[ChangeRecord]) -> Result<(), StoreError> {
        each_backend!(self, i => i.changes(changes).await)
    }

    pub async fn state(&mut self, state: &[StateRecord]) -> Result<(), StoreError> {
        each_backend!(self, i => i.state(state).await)
    }

    /// Commits the copy and says what it changed.
    pub async fn commit(self) -> Result<ImportCounts, StoreError> {
        each_backend!(self, i => i.commit().await)
    }
}

// ---------------------------------------------------------------------------
// SQLite.

/// Reads a UTC text time as SQLite stores it.
fn time(
    text: &str,
    what: impl FnOnce() -> String,
    column: &'static str,
) -> sqlx::Result<DateTime<Utc>> {
    parse_api_time(text).ok_or_else(|| {
        sqlx::Error::Decode(
            TransferError::BadValue {
                what: what(),
                column,
                value: text.to_owned(),
            }
            .into(),
        )
    })
}

/// A parsed text column (a source, a status), or the value it could not parse.
fn parsed<T: std::str::FromStr<Err = String>>(row: &SqliteRow, column: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|why: String| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: why.into(),
        })
}

impl FromRow<'_, SqliteRow> for RunRecord {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let id: i64 = row.try_get("id")?;
        let what = || format!("sync run #{id}");
        let finished: Option<String> = row.try_get("finished_at")?;
        Ok(RunRecord {
            id,
            started_at: time(&row.try_get::<String, _>("started_at")?, what, "started_at")?,
            finished_at: match finished {
                Some(t) => Some(time(&t, what, "finished_at")?),
                None => None,
            },
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

impl FromRow<'_, SqliteRow> for JobRecord {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let job = JobRow {
            source: parsed(row, "source")?,
            project_id: row.try_get("project_id")?,
            job_id: row.try_get("job_id")?,
            parent_job_id: row.try_get("parent_job_id")?,
            job_type: row.try_get("job_type")?,
            status: parsed(row, "status")?,
            raw_status: row.try_get("raw_status")?,
            progress: row.try_get("progress")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            duration_ms: row.try_get("duration_ms")?,
            resource_id: row.try_get("resource_id")?,
            resource_name: row.try_get("resource_name")?,
            error_code: row.try_get("error_code")?,
            fail_reason: row.try_get("fail_reason")?,
            raw_json: row.try_get("raw_json")?,
        };
        let what = || format!("job {}/{}/{}", job.source, job.project_id, job.job_id);
        Ok(JobRecord {
            first_seen_at: time(
                &row.try_get::<String, _>("first_seen_at")?,
                what,
                "first_seen_at",
            )?,
            last_seen_at: time(
                &row.try_get::<String, _>("last_seen_at")?,
                what,
                "last_seen_at",
            )?,
            last_sync_id: row.try_get("last_sync_id")?,
            job,
        })
    }
}

impl FromRow<'_, SqliteRow> for ChangeRecord {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let id: i64 = row.try_get("id")?;
        let observed: String = row.try_get("observed_at")?;
        Ok(ChangeRecord {
            id,
            source: row.try_get("source")?,
            project_id: row.try_get("project_id")?,
            job_id: row.try_get("job_id")?,
            old_status: row.try_get("old_status")?,
            new_status: row.try_get("new_status")?,
            raw_status: row.try_get("raw_status")?,
            fail_reason: row.try_get("fail_reason")?,
            observed_at: time(&observed, || format!("status change #{id}"), "observed_at")?,
            sync_id: row.try_get("sync_id")?,
        })
    }
}

impl FromRow<'_, SqliteRow> for StateRecord {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let (project_id, source, key): (String, String, String) = (
            row.try_get("project_id")?,
            row.try_get("source")?,
            row.try_get("key")?,
        );
        let updated: String = row.try_get("updated_at")?;
        let what = || format!("state {project_id}/{source}/{key}");
        Ok(StateRecord {
            updated_at: time(&updated, what, "updated_at")?,
            value: row.try_get("value")?,
            project_id,
            source,
            key,
        })
    }
}

impl FromRow<'_, SqliteRow> for RunScopeRecord {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let since: Option<String> = row.try_get("failing_since")?;
        let mut record = RunScopeRecord {
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
            failing_since: None,
            failed_runs: row.try_get("failed_runs")?,
        };
        if let Some(t) = since {
            record.failing_since = Some(time(&t, || record.describe(), "failing_since")?);
        }
        Ok(record)
    }
}

/// Every column of `jobs`, in the order the importer binds them.
const JOB_COLUMNS: &str = "source, project_id, job_id, parent_job_id, job_type, status, \
     raw_status, progress, started_at, ended_at, duration_ms, resource_id, resource_name, \
     error_code, fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id";

const RUN_COLUMNS: &str = "id, started_at, finished_at, status, sources, requests, jobs_seen, \
     jobs_new, jobs_changed, error, pid";

/// A run of the source the target lacks (`?1` its id there, then [`RUN_COLUMNS`]).
const INSERT_RUN_SQL: &str = "INSERT INTO sync_runs (id, started_at, finished_at, status, sources, \
     requests, jobs_seen, jobs_new, jobs_changed, error, pid) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// A run the target holds: one still marked running there takes the
/// source's outcome once the source has one.
const UPDATE_RUN_SQL: &str = "UPDATE sync_runs SET started_at = ?2, finished_at = ?3, status = ?4, \
     sources = ?5, requests = ?6, jobs_seen = ?7, jobs_new = ?8, jobs_changed = ?9, error = ?10, \
     pid = ?11 WHERE id = ?1 AND status = 'running' AND ?4 <> 'running'";

const CHANGE_COLUMNS: &str = "source, project_id, job_id, old_status, new_status, raw_status, \
     fail_reason, observed_at, sync_id";

/// Every column of `sync_scopes`, in the order the importer binds them.
const SCOPE_COLUMNS: &str = "sync_id, project_id, region, source, status, requests, jobs_seen, \
     jobs_new, jobs_changed, error, failing_since, failed_runs";

impl SqliteStore {
    pub async fn history_counts(&self) -> Result<HistoryCounts, StoreError> {
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

    /// Whether the database records scopes: one from before them, opened
    /// read-only (so not migrated), has no `sync_scopes` table.
    async fn has_scopes(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_scopes'",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` scope rows after `after` (from the first when `None`),
    /// by run then project and source; none from a database without scopes.
    pub async fn export_scopes(
        &self,
        after: Option<&RunScopeKey>,
        limit: u32,
    ) -> Result<Vec<RunScopeRecord>, StoreError> {
        if !self.has_scopes().await? {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SCOPE_COLUMNS} FROM sync_scopes \
             WHERE ?1 IS NULL OR (sync_id, project_id, source) > (?1, ?2, ?3) \
             ORDER BY sync_id, project_id, source LIMIT ?4"
        )))
        .bind(after.map(|k| k.sync_id))
        .bind(after.map(|k| k.project_id.as_str()))
        .bind(after.map(|k| k.source.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_runs(&self, after: i64, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id > ? ORDER BY id LIMIT ?"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_jobs(
        &self,
        after: Option<&JobKey>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let key = after.map(|k| (k.source.as_str(), k.project_id.as_str(), k.job_id.as_str()));
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs \
             WHERE ?1 IS NULL OR (source, project_id, job_id) > (?1, ?2, ?3) \
             ORDER BY source, project_id, job_id LIMIT ?4"
        )))
        .bind(key.map(|k| k.0))
        .bind(key.map(|k| k.1))
        .bind(key.map(|k| k.2))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_changes(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {CHANGE_COLUMNS} FROM job_status_changes WHERE id > ? ORDER BY id LIMIT ?"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_state(
        &self,
        after: Option<&StateKey>,
        limit: u32,
    ) -> Result<Vec<StateRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT project_id, source, key, value, updated_at FROM sync_state \
             WHERE ?1 IS NULL OR (project_id, source, key) > (?1, ?2, ?3) \
             ORDER BY project_id, source, key LIMIT ?4",
        )
        .bind(after.map(|k| k.project_id.as_str()))
        .bind(after.map(|k| k.source.as_str()))
        .bind(after.map(|k| k.key.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Begins an import: the write lock taken at once, the history trigger
    /// set aside (the copied history is complete; the trigger would add to it).
    pub async fn begin_import(&self, mode: ImportMode) -> Result<SqliteImporter, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let trigger: Option<String> = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'jobs_status_changed'",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if trigger.is_some() {
            sqlx::query("DROP TRIGGER jobs_status_changed")
                .execute(&mut *tx)
                .await?;
        }
        let runs: Vec<(i64, String, String, Option<i64>)> =
            sqlx::query_as("SELECT id, started_at, sources, pid FROM sync_runs")
                .fetch_all(&mut *tx)
                .await?;
        let mut target = Vec::with_capacity(runs.len());
        for (id, started, sources, pid) in runs {
            let started = time(
                &started,
                || format!("target's sync run #{id}"),
                "started_at",
            )?;
            target.push((id, (started, sources, pid)));
        }
        Ok(SqliteImporter {
            tx,
            trigger,
            map: RunMap::new(mode, target),
            counts: ImportCounts::default(),
        })
    }
}

/// An import into a SQLite database (see [`Importer`]).
pub struct SqliteImporter {
    tx: Transaction<'static, Sqlite>,
    /// The history trigger's SQL, put back before the commit.
    trigger: Option<String>,
    map: RunMap,
    counts: ImportCounts,
}

impl SqliteImporter {
    async fn runs(&mut self, runs: &[RunRecord]) -> Result<(), StoreError> {
        for run in runs {
            let (sql, id) = match self.map.plan(run)? {
                RunPlan::Insert(id) => (INSERT_RUN_SQL, id),
                RunPlan::Update(id) => (UPDATE_RUN_SQL, id),
            };
            let done = sqlx::query(sql)
                .bind(id)
                .bind(format_utc(run.started_at))
                .bind(run.finished_at.map(format_utc))
                .bind(&run.status)
                .bind(&run.sources)
                .bind(run.requests)
                .bind(run.jobs_seen)
                .bind(run.jobs_new)
                .bind(run.jobs_changed)
                .bind(&run.error)
                .bind(run.pid)
                .execute(&mut *self.tx)
                .await?;
            self.counts.runs += done.rows_affected();
        }
        Ok(())
    }

    /// Scope rows under their runs' ids here; a row the target holds (same
    /// run, project and source) is left as it is: scopes never change once
    /// their run has closed.
    async fn scopes(&mut self, scopes: &[RunScopeRecord]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO sync_scopes ({SCOPE_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (sync_id, project_id, source) DO NOTHING"
        );
        for scope in scopes {
            let sync_id = self.map.run_id(scope.sync_id, || scope.describe())?;
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(sync_id)
                .bind(&scope.project_id)
                .bind(&scope.region)
                .bind(&scope.source)
                .bind(&scope.status)
                .bind(scope.requests)
                .bind(scope.jobs_seen)
                .bind(scope.jobs_new)
                .bind(scope.jobs_changed)
                .bind(&scope.error)
                .bind(scope.failing_since.map(format_utc))
                .bind(scope.failed_runs)
                .execute(&mut *self.tx)
                .await?;
            self.counts.scopes += done.rows_affected();
        }
        Ok(())
    }

    async fn jobs(&mut self, jobs: &[JobRecord]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (source, project_id, job_id) DO UPDATE SET \
             parent_job_id = excluded.parent_job_id, job_type = excluded.job_type, \
             status = excluded.status, raw_status = excluded.raw_status, \
             progress = excluded.progress, started_at = excluded.started_at, \
             ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, \
             resource_id = excluded.resource_id, resource_name = excluded.resource_name, \
             error_code = excluded.error_code, fail_reason = excluded.fail_reason, \
             raw_json = excluded.raw_json, last_seen_at = excluded.last_seen_at, \
             last_sync_id = excluded.last_sync_id \
             WHERE excluded.last_seen_at > jobs.last_seen_at"
        );
        for record in jobs {
            let job = &record.job;
            let sync_id = self.map.run_id(record.last_sync_id, || {
                format!("job {}/{}/{}", job.source, job.project_id, job.job_id)
            })?;
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(job.source.as_str())
                .bind(&job.project_id)
                .bind(&job.job_id)
                .bind(&job.parent_job_id)
                .bind(&job.job_type)
                .bind(job.status.as_str())
                .bind(&job.raw_status)
                .bind(job.progress)
                .bind(&job.started_at)
                .bind(&job.ended_at)
                .bind(job.duration_ms)
                .bind(&job.resource_id)
                .bind(&job.resource_name)
                .bind(&job.error_code)
                .bind(&job.fail_reason)
                .bind(&job.raw_json)
                .bind(format_utc(record.first_seen_at))
                .bind(format_utc(record.last_seen_at))
                .bind(sync_id)
                .execute(&mut *self.tx)
                .await?;
            self.counts.jobs += done.rows_affected();
        }
        Ok(())
    }

    async fn changes(&mut self, changes: &[ChangeRecord]) -> Result<(), StoreError> {
        for change in changes {
            let (query, sync_id) = match self.map.change(change)? {
                ChangePlan::Skip => continue,
                ChangePlan::KeepId { sync_id } => (
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO job_status_changes (id, {CHANGE_COLUMNS}) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
                    )))
                    .bind(change.id),
                    sync_id,
                ),
                // A first sighting of a job the target knows is not one there.
                ChangePlan::NewId { sync_id } => (
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO job_status_changes ({CHANGE_COLUMNS}) \
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 \
                         WHERE ?4 IS NOT NULL OR NOT EXISTS (SELECT 1 FROM jobs \
                             WHERE source = ?1 AND project_id = ?2 AND job_id = ?3)"
                    ))),
                    sync_id,
                ),
            };
            let done = query
                .bind(&change.source)
                .bind(&change.project_id)
                .bind(&change.job_id)
                .bind(&change.old_status)
                .bind(&change.new_status)
                .bind(&change.raw_status)
                .bind(&change.fail_reason)
                .bind(format_utc(change.observed_at))
                .bind(sync_id)
                .execute(&mut *self.tx)
                .await?;
            self.counts.changes += done.rows_affected();
        }
        Ok(())
    }

    async fn state(&mut self, state: &[StateRecord]) -> Result<(), StoreError> {
        for entry in state {
            let done = sqlx::query(
                "INSERT INTO sync_state (project_id, source, key, value, updated_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, source, key) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at \
                 WHERE excluded.updated_at > sync_state.updated_at",
            )
            .bind(&entry.project_id)
            .bind(&entry.source)
            .bind(&entry.key)
            .bind(&entry.value)
            .bind(format_utc(entry.updated_at))
            .execute(&mut *self.tx)
            .await?;
            self.counts.state += done.rows_affected();
        }
        Ok(())
    }

    async fn commit(mut self) -> Result<ImportCounts, StoreError> {
        if let Some(trigger) = &self.trigger {
            sqlx::query(sqlx::AssertSqlSafe(trigger.clone()))
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, second: u32) -> RunRecord {
        RunRecord {
            id,
            started_at: parse_api_time(&format!("2024-03-01T00:00:{second:02}Z")).expect("time"),
            finished_at: None,
            status: "succeeded".into(),
            sources: "nosql".into(),
            requests: 1,
            jobs_seen: 0,
            jobs_new: 0,
            jobs_changed: 0,
            error: None,
            pid: Some(7),
        }
    }

    fn target(runs: &[RunRecord]) -> Vec<(i64, RunIdentity)> {
        runs.iter().map(|r| (r.id, identity(r))).collect()
    }

    #[test]
    fn a_copy_of_the_same_history_keeps_ids_and_adds_only_what_is_new() {
        let mut map = RunMap::new(ImportMode::SameHistory, target(&[run(1, 1)]));
        assert_eq!(map.plan(&run(1, 1)).expect("same"), RunPlan::Update(1));
        assert_eq!(map.plan(&run(2, 2)).expect("new"), RunPlan::Insert(2));
        map.check_complete().expect("complete");
        let change = |sync_id| ChangeRecord {
            id: 5,
            source: "nosql".into(),
            project_id: "p".into(),
            job_id: "j".into(),
            old_status: None,
            new_status: "running".into(),
            raw_status: None,
            fail_reason: None,
            observed_at: Utc::now(),
            sync_id,
        };
        assert_eq!(
            map.change(&change(2)).expect("plan"),
            ChangePlan::KeepId { sync_id: 2 }
        );
        assert!(matches!(
            map.change(&change(9)),
            Err(TransferError::UnknownRun { id: 9, .. })
        ));
    }

    #[test]
    fn another_history_is_refused_unless_merged() {
        let mut map = RunMap::new(ImportMode::SameHistory, target(&[run(1, 5)]));
        let err = map.plan(&run(1, 1)).expect_err("other run #1");
        assert!(err.to_string().contains("different history"), "{err}");
        let map = RunMap::new(ImportMode::SameHistory, target(&[run(3, 3)]));
        let err = map.check_complete().expect_err("extra run");
        assert!(err.to_string().contains("#3"), "{err}");

        let mut merged = RunMap::new(ImportMode::Merge, target(&[run(1, 5), run(2, 6)]));
        assert_eq!(merged.plan(&run(1, 1)).expect("moved"), RunPlan::Insert(3));
        assert_eq!(
            merged.plan(&run(2, 6)).expect("same run"),
            RunPlan::Update(2)
        );
        assert_eq!(
            merged.plan(&run(9, 9)).expect("free id"),
            RunPlan::Insert(9)
        );
        merged.check_complete().expect("merging accepts anything");
        let change = ChangeRecord {
            id: 1,
            source: "nosql".into(),
            project_id: "p".into(),
            job_id: "j".into(),
            old_status: None,
            new_status: "running".into(),
            raw_status: None,
            fail_reason: None,
            observed_at: Utc::now(),
            sync_id: 2,
        };
        assert_eq!(merged.change(&change).expect("plan"), ChangePlan::Skip);
        let moved = ChangeRecord {
            sync_id: 1,
            ..change
        };
        assert_eq!(
            merged.change(&moved).expect("plan"),
            ChangePlan::NewId { sync_id: 3 }
        );
    }
}
