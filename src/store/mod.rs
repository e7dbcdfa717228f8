//! The SQLite store: opening (pragmas, migrations, file mode), job upserts with
//! their status history, sync-run and per-scope accounting, watermarks, what
//! operators watch (`ops`) and the IAM answers that name an account's projects.

mod adhoc;
mod iam;
mod jobs;
mod lock;
mod ops;
mod report;
mod runs;
mod scopes;
mod state;
mod status;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

pub use adhoc::{AdhocError, SqlFailure, SqlPart, SqlValue, ValueRows};
pub use iam::{CachedProjects, IamCacheKey, IamLookup};
pub use jobs::UnfinishedJob;
pub use lock::{LockError, SyncLock};
pub use ops::{LastSuccess, NewFailure};
pub use report::{
    FailureGroup, FailureWeek, JobGroup, JobWindow, RecentFailure, RunningJob, UnfinishedCounts,
};
pub use runs::{RunCounts, RunEnd, RunOutcome, RunTotals, SyncRun};
pub use scopes::{FailingScopeRow, RETAINED_RUNS, ScopeRecord};
pub use state::{MissUpdate, StateUpdate};
pub use status::{FailureReasonCount, JobCount, OldestUnfinished, RunRow, StateRow};
pub use writer::{BulkWriter, JobBatch};

/// The schema migrations, embedded in the binary (re-run on change by build.rs).
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
}

/// An open jobtrail database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    /// `PRAGMA max_page_count` for every connection, when capped.
    max_pages: Option<i64>,
}

impl Store {
    /// Opens (creating if needed, with its folder) and migrates the database for
    /// writing: WAL, a busy timeout, file mode 0600.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        create_private(path)?;
        let options = base_options(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .optimize_on_close(true, ANALYSIS_LIMIT);
        // One connection (the bulk writer has its own), kept for the whole run:
        // a pooled connection closed when idle would run `PRAGMA optimize` and
        // write in the middle of a sync.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| classify_open_error(path, source))?;
        check_schema_version(&pool, path).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        restrict_sidecars(path)?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            max_pages: None,
        })
    }

    /// Opens an existing database read-only: nothing run through this handle
    /// can change the history.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let options = base_options(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| classify_open_error(path, source))?;
        check_schema_version(&pool, path).await?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            max_pages: None,
        })
    }

    /// Caps the database at `pages` pages (`PRAGMA max_page_count`), on this
    /// store's connection and every bulk writer opened from it: a write that
    /// needs more fails exactly as on a full disk.
    pub async fn limit_pages(&mut self, pages: i64) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {pages}"
        )))
        .execute(&self.pool)
        .await?;
        self.max_pages = Some(pages);
        Ok(())
    }

    /// Pages the database file holds now (with [`Store::limit_pages`], a way
    /// to simulate a disk that is full at exactly this size).
    pub async fn page_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.pool)
            .await?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

fn base_options(path: &Path) -> SqliteConnectOptions {
    // `filename` avoids URL parsing, so paths with `?` or `#` work.
    // A slow statement is the tool's business, not a warning for the user: it
    // shows with `-vv`.
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(BUSY_TIMEOUT)
        .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT)
}

/// Creates the file with mode 0600 before SQLite does, so it is never readable
/// by others, not even for an instant.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source: sqlx::Error::Io(source),
        }),
    }
}

/// The WAL and shared-memory files hold the same data as the database: keep them private too.
fn restrict_sidecars(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(
                    |source| StoreError::Permissions {
                        path: file.clone(),
                        source,
                    },
                )?;
            }
        }
    }
    let _ = path;
    Ok(())
}

fn classify_open_error(path: &Path, source: sqlx::Error) -> StoreError {
    let text = source.to_string();
    if text.contains("file is not a database") || text.contains("malformed") {
        StoreError::NotSqlite {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Refuses a database migrated by a newer jobtrail, before touching it.
async fn check_schema_version(pool: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    let has_table: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await
    .map_err(|source| classify_open_error(path, source))?;
    if has_table.is_none() {
        return Ok(());
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(pool)
            .await?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > known => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        }),
        _ => Ok(()),
    }
}
