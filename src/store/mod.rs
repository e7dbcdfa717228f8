//! The store: every SQL statement jobtrail runs, behind one handle, [`Store`],
//! over two backends. SQLite (the default: one file, one machine) is
//! `sqlite` plus the `impl SqliteStore` blocks in `jobs`, `runs`, `scopes`,
//! `state`, `status`, `report`, `ops`, `iam`, `adhoc`, `transfer` and
//! `writer`, beside the row types both backends share; PostgreSQL (one history
//! for a team, written by many hosts) is `postgres`, with the same methods on
//! `PgStore`. Both keep sync-run and per-scope accounting, watermarks, what
//! operators watch (`ops`) and the IAM answers that name an account's projects.
//!
//! # Adding a store method
//!
//! 1. Write it on [`SqliteStore`] in the module of its concern (say
//!    `report.rs`), taking typed arguments and returning typed rows defined
//!    there, with `Result<_, StoreError>`.
//! 2. Write the same method (same name, same arguments, same rows) on
//!    `PgStore` in `postgres/<concern>.rs`, with `Result<_, PgStoreError>`.
//!    Times are `timestamptz` there: bind `DateTime<Utc>` (through
//!    `postgres::to_millis`), and give rows that carry times as text the
//!    SQLite form (`normalize::format_utc`), so both backends answer alike.
//! 3. Add its signature to the `forward!` list below: `Store` then offers it
//!    and dispatches to the backend. A method whose arguments or result
//!    differ by backend (a writer, a lock) is written out by hand instead.
//! 4. Test it on both: `postgres/tests.rs` runs against a real server.

mod adhoc;
mod iam;
mod jobs;
mod location;
mod lock;
mod ops;
pub mod postgres;
mod report;
mod runs;
mod scopes;
mod sqlite;
mod state;
mod status;
mod transfer;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use adhoc::{AdhocError, SqlFailure, SqlPart, SqlValue, ValueRows};
pub use iam::{CachedProjects, IamCacheKey, IamLookup};
pub use jobs::UnfinishedJob;
pub use location::{Backend, DatabaseLocation};
pub use lock::{LockError, SyncLock};
pub use ops::{LastSuccess, NewFailure};
pub use postgres::{DbUrl, PgLockError, PgProjectLock, PgStore, PgStoreError, PgWriter};
pub use report::{
    FailureGroup, FailureWeek, JobGroup, JobWindow, RecentFailure, RunningJob, UnfinishedCounts,
};
pub use runs::{RunCounts, RunEnd, RunOutcome, RunTotals, SyncRun};
pub use scopes::{FailingScopeRow, RETAINED_RUNS, ScopeRecord};
pub use sqlite::SqliteStore;
pub use state::{MissUpdate, StateUpdate};
pub use status::{FailureReasonCount, JobCount, OldestUnfinished, RunRow, StateRow};
pub use transfer::{
    ChangeRecord, HistoryCounts, ImportCounts, ImportMode, Importer, JobKey, JobRecord, RunRecord,
    RunScopeKey, RunScopeRecord, StateKey, StateRecord, TransferError,
};
pub use writer::{BulkWriter, JobBatch};

use crate::model::{DbssJobsPath, IamProject, Source};

/// The SQLite schema migrations, embedded in the binary (re-run on change by build.rs).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a writer waits for another connection's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows per index that `PRAGMA optimize` samples on close when it refreshes the
/// planner's statistics: the value SQLite recommends, so a sync of a database
/// of millions of jobs does not end with a full scan of every index.
const ANALYSIS_LIMIT: u32 = 400;

/// How long a statement runs before sqlx logs it (at debug level).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Errors opening or writing the database, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("{path} is not a jobtrail database (not SQLite, or damaged): {source}")]
    NotSqlite { path: PathBuf, source: sqlx::Error },
    #[error(
        "the database {path} was written by a newer jobtrail (schema version {found}, this build knows up to {known}); upgrade jobtrail"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot migrate the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot set permissions on {path}: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database {path} does not exist yet: run `jobtrail sync` (or `jobtrail demo`) first"
    )]
    Missing { path: PathBuf },
    #[error("cannot open the database {path} for writing: {source}")]
    Write {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the database checkpoint thread: {0}")]
    Thread(std::io::Error),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Bulk(#[from] rusqlite::Error),
    /// A history that cannot be copied as asked (`jobtrail copy`).
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Anything the PostgreSQL backend reports (it names the database).
    #[error(transparent)]
    Postgres(#[from] PgStoreError),
}

/// An open jobtrail database, on either backend. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database for
    /// writing. A plain path is SQLite (see [`DatabaseLocation`]).
    pub async fn open(location: impl Into<DatabaseLocation>) -> Result<Store, StoreError> {
        Ok(match location.into() {
            DatabaseLocation::Sqlite(path) => Store::Sqlite(SqliteStore::open(&path).await?),
            DatabaseLocation::Postgres(url) => Store::Postgres(PgStore::open_url(url).await?),
        })
    }

    /// Opens an existing database for the reading commands: never created,
    /// never migrated (a read-only PostgreSQL role can use it), and refused
    /// when a newer jobtrail wrote it.
    pub async fn open_read_only(
        location: impl Into<DatabaseLocation>,
    ) -> Result<Store, StoreError> {
        Ok(match location.into() {
            DatabaseLocation::Sqlite(path) => {
                Store::Sqlite(SqliteStore::open_read_only(&path).await?)
            }
            DatabaseLocation::Postgres(url) => {
                Store::Postgres(PgStore::open_for_reading(url).await?)
            }
        })
    }

    /// Which engine this is (and so which SQL dialect it speaks).
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the database is (a PostgreSQL URL without its password).
    pub fn location(&self) -> DatabaseLocation {
        match self {
            Store::Sqlite(s) => DatabaseLocation::Sqlite(s.path().to_path_buf()),
            Store::Postgres(s) => DatabaseLocation::Postgres(s.url().clone()),
        }
    }

    /// The bytes the database takes: its own, and (SQLite) its write-ahead log's.
    pub async fn size_in_bytes(&self) -> Result<(u64, u64), StoreError> {
        match self {
            Store::Sqlite(s) => Ok(s.size_in_bytes()),
            Store::Postgres(s) => Ok((s.size_in_bytes().await?, 0)),
        }
    }

    /// Closes the connections (on SQLite, checkpointing the WAL).
    pub async fn close(self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }

    /// Opens the writer a sync stores its jobs through, on a connection of
    /// its own: rusqlite on SQLite (blocking: run it on a thread of its own),
    /// binary COPY on PostgreSQL (async).
    pub async fn writer(&self) -> Result<StoreWriter, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => StoreWriter::Sqlite(Box::new(s.bulk_writer()?)),
            Store::Postgres(s) => StoreWriter::Postgres(s.bulk_writer().await?),
        })
    }

    /// Stores one batch through a writer of its own: for callers that write
    /// once (tests, the benchmark's bound). A sync keeps one writer.
    pub async fn write_batch(
        &self,
        sync_id: i64,
        seen_at: DateTime<Utc>,
        batch: JobBatch,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.write_batch(sync_id, seen_at, batch).await,
            Store::Postgres(s) => Ok(s.write_batch(sync_id, seen_at, &batch).await?),
        }
    }

    /// Runs one read-only statement with `params` bound to its slots and
    /// returns every row (`jobtrail query`). A statement that would write is
    /// refused on any store, even one opened for writing.
    pub async fn run_read_only(
        &self,
        statement: &[SqlPart],
        params: &[SqlValue],
    ) -> Result<ValueRows, AdhocError> {
        match self {
            Store::Sqlite(s) => s.run_read_only(statement, params).await,
            Store::Postgres(s) => s.run_read_only(statement, params).await,
        }
    }

    /// Begins copying a history into this database, in one transaction
    /// (`jobtrail copy`): see [`Importer`].
    pub async fn begin_import(&self, mode: ImportMode) -> Result<Importer, StoreError> {
        match self {
            Store::Sqlite(s) => Ok(Importer::Sqlite(s.begin_import(mode).await?)),
            Store::Postgres(s) => Ok(Importer::Postgres(s.begin_import(mode).await?)),
        }
    }

    /// The SQLite store underneath, for tests of SQLite's own behaviour.
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &SqliteStore {
        match self {
            Store::Sqlite(s) => s,
            Store::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// The SQLite store's pool, for tests that look at rows directly.
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        &self.sqlite().pool
    }
}

/// The writer a sync stores jobs through (see [`Store::writer`]).
#[derive(Debug)]
pub enum StoreWriter {
    Sqlite(Box<BulkWriter>),
    Postgres(PgWriter),
}

/// Methods with the same arguments and rows on both backends: `Store` offers
/// each and calls the backend's own (see "Adding a store method" above).
macro_rules! forward {
    ($(
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;
    )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => Ok(s.$name($($arg),*).await?),
                    }
                }
            )*
        }
    };
}

forward! {
    // Sync bookkeeping (`runs`, `state`, `jobs`).
    /// Opens a run, closing as failed the runs whose process died.
    fn begin_run(&self, sources: &[Source], started_at: DateTime<Utc>) -> SyncRun;
    /// Closes a run with its outcome, and records each of its scopes, in one
    /// transaction; returns what the run and each scope stored.
    fn finish_run(&self, run: &SyncRun, end: RunEnd<'_>) -> RunCounts;
    /// Counts a run's jobs from the rows it touched and the history it wrote.
    fn run_totals(&self, run: &SyncRun) -> RunTotals;
    /// A source's watermark, if a sync has set one.
    fn watermark(&self, project_id: &str, source: Source) -> Option<DateTime<Utc>>;
    /// The DBSS jobs path that last answered for a project, if one has.
    fn dbss_jobs_path(&self, project_id: &str) -> Option<DbssJobsPath>;
    /// How many syncs in a row answered 404 for each ID known only from the store.
    fn miss_counts(&self, project_id: &str, source: Source) -> HashMap<String, u32>;
    /// Clears the 404 counts of jobs the run stored.
    fn forget_misses_of_seen_jobs(&self, sync_id: i64) -> ();
    /// Sets one state value on its own (outside a job batch).
    fn set_state(&self, update: &StateUpdate, now: DateTime<Utc>) -> ();
    /// Jobs of one project and source not final yet: the re-check list.
    fn unfinished_jobs(
        &self,
        source: Source,
        project_id: &str,
        started_before: Option<DateTime<Utc>>
    ) -> Vec<UnfinishedJob>;
    /// Image jobs whose job row and every sub-job row are final.
    fn finished_image_jobs(&self, project_id: &str) -> HashSet<String>;
    /// How many jobs are stored, counting sub-jobs.
    fn job_count(&self) -> i64;
    /// Sorted start times of unfinished jobs in one raw status within `[from, to]`.
    fn start_times_between(
        &self,
        source: Source,
        project_id: &str,
        raw_status: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>
    ) -> Vec<DateTime<Utc>>;
    /// DBSS resources whose jobs are all final and confirmed since `fresh_since`.
    fn settled_dbss_resources(&self, project_id: &str, fresh_since: DateTime<Utc>) -> HashSet<String>;

    // `jobtrail status` and the demo's summary (`status`).
    /// How many sync runs were ever recorded.
    fn count_runs(&self) -> i64;
    /// The last `limit` sync runs, newest first.
    fn recent_runs(&self, limit: u32) -> Vec<RunRow>;
    /// Every `sync_state` entry, by project, source and key.
    fn sync_state_entries(&self) -> Vec<StateRow>;
    /// Jobs per source and status, by source then status.
    fn job_counts(&self) -> Vec<JobCount>;
    /// How many jobs are not final yet (running or unknown).
    fn count_unfinished(&self) -> i64;
    /// The unfinished job that started (or was first seen) longest ago.
    fn oldest_unfinished(&self) -> Option<OldestUnfinished>;
    /// The `limit` most frequent failure reasons across sources.
    fn top_failure_reasons(&self, limit: u32) -> Vec<FailureReasonCount>;

    /// Scopes whose latest run did not succeed, longest failing first.
    fn failing_scopes(&self) -> Vec<FailingScopeRow>;

    // What operators watch: metrics, `--print-failures`, pings (`ops`).
    /// Records that each (project, source) pair synced completely at `at`.
    fn record_complete_syncs(&self, pairs: &[(&str, Source)], at: DateTime<Utc>) -> ();
    /// When each (project, source) pair last synced completely.
    fn last_successes(&self) -> Vec<LastSuccess>;
    /// The jobs `run` saw become failed, with what the API said about them.
    fn new_failures(&self, run: &SyncRun) -> Vec<NewFailure>;
    /// How many jobs `run` saw become failed, per source.
    fn new_failure_counts(&self, run: &SyncRun) -> Vec<(Source, i64)>;
    /// Per source, when its oldest unfinished job started (or was first seen).
    fn oldest_unfinished_by_source(&self) -> Vec<(Source, DateTime<Utc>)>;

    // The projects IAM named, kept a day (`iam`).
    /// The last answer IAM gave for `key`, in IAM's order, and when.
    fn cached_iam_projects(&self, key: &IamCacheKey<'_>) -> Option<CachedProjects>;
    /// Replaces the answer kept for `key`, in one transaction.
    fn cache_iam_projects(
        &self,
        key: &IamCacheKey<'_>,
        projects: &[IamProject],
        fetched_at: DateTime<Utc>
    ) -> ();

    // `jobtrail report` (`report`).
    /// Every job in the database, whatever the window.
    fn count_jobs(&self) -> i64;
    /// The selected jobs grouped by source, job type, status and week.
    fn job_groups(&self, window: &JobWindow<'_>) -> Vec<JobGroup>;
    /// The selected failed jobs grouped by reason and week.
    fn failure_weeks(&self, window: &JobWindow<'_>) -> Vec<FailureWeek>;
    /// The selected failed jobs grouped by reason, source and job type.
    fn failure_groups(&self, window: &JobWindow<'_>) -> Vec<FailureGroup>;
    /// Unfinished jobs of `sources` and how many have run since before `stuck_before`.
    fn unfinished_counts(&self, sources: &[Source], stuck_before: DateTime<Utc>) -> UnfinishedCounts;
    /// The `limit` longest-running unfinished jobs of `sources`, oldest first.
    fn oldest_running_jobs(&self, sources: &[Source], limit: usize) -> Vec<RunningJob>;
    /// The `limit` latest failures among the selected jobs, latest first.
    fn recent_failures(&self, window: &JobWindow<'_>, limit: usize) -> Vec<RecentFailure>;

    // `jobtrail copy`, reading side (`transfer`).
    /// How many rows of each kind the history holds.
    fn history_counts(&self) -> HistoryCounts;
    /// Up to `limit` runs after id `after`, by id.
    fn export_runs(&self, after: i64, limit: u32) -> Vec<RunRecord>;
    /// Up to `limit` scopes of runs after `after` (from the first when `None`), by key.
    fn export_scopes(&self, after: Option<&RunScopeKey>, limit: u32) -> Vec<RunScopeRecord>;
    /// Up to `limit` jobs after `after` (from the first when `None`), by key.
    fn export_jobs(&self, after: Option<&JobKey>, limit: u32) -> Vec<JobRecord>;
    /// Up to `limit` status changes after id `after`, by id.
    fn export_changes(&self, after: i64, limit: u32) -> Vec<ChangeRecord>;
    /// Up to `limit` state entries after `after`, by key.
    fn export_state(&self, after: Option<&StateKey>, limit: u32) -> Vec<StateRecord>;
}
