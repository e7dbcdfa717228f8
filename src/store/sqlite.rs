//! The SQLite backend: one file on one machine. Opening it (pragmas,
//! migrations, file mode); its queries live beside the shared row types in
//! `jobs`, `runs`, `state`, `status`, `report`, `adhoc` and `writer`, as
//! `impl SqliteStore` blocks.

use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

use super::{ANALYSIS_LIMIT, BUSY_TIMEOUT, MIGRATOR, SLOW_STATEMENT, StoreError};

/// An open SQLite jobtrail database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    path: PathBuf,
    /// `PRAGMA max_page_count` for every connection, when capped.
    pub(super) max_pages: Option<i64>,
}

impl SqliteStore {
    /// Opens (creating if needed, with its folder) and migrates the database for
    /// writing: WAL, a busy timeout, file mode 0600.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
            max_pages: None,
        })
    }

    /// Opens an existing database read-only: nothing run through this handle
    /// can change the history.
    pub async fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore {
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

    /// Pages the database file holds now (with [`SqliteStore::limit_pages`], a way
    /// to simulate a disk that is full at exactly this size).
    pub async fn page_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.pool)
            .await?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the file and of its write-ahead log (0 when there is none).
    pub fn size_in_bytes(&self) -> (u64, u64) {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        (size(&self.path), size(Path::new(&wal)))
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
