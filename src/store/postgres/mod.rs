//! The PostgreSQL store (SPEC §8): one history shared by a team and written by
//! many sync hosts. Opening (timeouts, migrations, the newer-schema refusal),
//! and the same operations as the SQLite store, in PostgreSQL's dialect:
//! bulk job writes (`writer`, through `copy`), per-project sync locks
//! (`lock`), runs and their scopes (`runs`, `scopes`), state, the sync's
//! reads (`jobs`), what operators watch (`ops`), cached IAM answers (`iam`),
//! `status`, `report`, read-only user SQL (`adhoc`) and whole-history copies
//! (`transfer`).

mod adhoc;
mod copy;
mod iam;
mod jobs;
mod lock;
mod ops;
mod report;
mod runs;
mod scopes;
mod state;
mod status;
mod transfer;
mod url;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use lock::{PgLockError, PgProjectLock};
pub use transfer::PgImporter;
pub use url::DbUrl;
pub use writer::PgWriter;

/// The PostgreSQL schema migrations, embedded in the binary (re-run on change
/// by build.rs, which watches `migrations` and everything under it).
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long connecting may take before the store gives up and says where it
/// was connecting to: a host that drops packets would otherwise hang a cron
/// job for minutes.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool for reads and bookkeeping (the writer and each
/// lock have their own).
const POOL_CONNECTIONS: u32 = 4;

/// How long a statement runs before sqlx logs it (at debug level), as on SQLite.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Errors opening or using a PostgreSQL store. Every message names the
/// database by its redacted URL ([`DbUrl`]); none shows a password.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// The URL does not parse (the message never quotes it).
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to the PostgreSQL database {url}: {detail}")]
    Connect { url: DbUrl, detail: String },
    #[error(
        "cannot connect to the PostgreSQL database {url}: no answer within {} seconds",
        after.as_secs()
    )]
    ConnectTimeout { url: DbUrl, after: Duration },
    #[error(
        "the database {url} was written by a newer jobtrail (schema version {found}, this build knows up to {known}); upgrade jobtrail"
    )]
    NewerSchema { url: DbUrl, found: i64, known: i64 },
    #[error(
        "the database {url} holds no jobtrail history yet: run `jobtrail sync` (or `jobtrail copy --to`) with it first"
    )]
    NotMigrated { url: DbUrl },
    #[error("cannot migrate the database {url}: {source}")]
    Migrate {
        url: DbUrl,
        source: sqlx::migrate::MigrateError,
    },
    /// A row the writer cannot send as it is (a time that does not parse, a
    /// value over PostgreSQL's 1 GB field limit): the batch is not written.
    #[error("cannot store job {job}: its {column} {problem}")]
    BadValue {
        job: String,
        column: &'static str,
        problem: String,
    },
    /// A write was abandoned half-way (its future dropped): the writer's
    /// connection is in an unknown state and refuses further writes.
    #[error("the PostgreSQL writer was interrupted mid-write; open a new one")]
    WriterInterrupted,
    #[error(transparent)]
    Transfer(crate::store::TransferError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// An open PostgreSQL jobtrail database. Cheap to clone (one pool).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    url: DbUrl,
    /// The connection that holds one advisory lock per run in progress, so
    /// another host can tell a live run from one whose process died (`runs`).
    run_session: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (within [`CONNECT_TIMEOUT`]) and migrates the database,
    /// refusing one migrated by a newer jobtrail. `url` is a `postgres://`
    /// URL; the password comes from it, `PGPASSWORD` or `~/.pgpass`.
    pub async fn open(url: &str) -> Result<PgStore, PgStoreError> {
        PgStore::open_url(DbUrl::parse(url)?).await
    }

    /// [`PgStore::open`] for an already parsed URL.
    pub async fn open_url(url: DbUrl) -> Result<PgStore, PgStoreError> {
        let mut conn = connect(&url, url.options().clone()).await?;
        check_schema_version(&mut conn, &url).await?;
        // sqlx's migrator holds an advisory lock while it works, so hosts
        // opening a fresh database at once migrate it once.
        PG_MIGRATOR
            .run_direct(None, &mut conn, false)
            .await
            .map_err(|source| PgStoreError::Migrate {
                url: url.clone(),
                source,
            })?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(base_options(&url));
        // Closed politely: the pool opens its own when first used.
        let _ = sqlx::Connection::close(conn).await;
        Ok(PgStore {
            pool,
            url,
            run_session: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Connects for reading only: never migrates (a read-only role can read),
    /// refuses a database no jobtrail has set up or a newer one has migrated.
    pub async fn open_for_reading(url: DbUrl) -> Result<PgStore, PgStoreError> {
        let mut conn = connect(&url, url.options().clone()).await?;
        if check_schema_version(&mut conn, &url).await?.is_none() {
            return Err(PgStoreError::NotMigrated { url });
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(base_options(&url));
        let _ = sqlx::Connection::close(conn).await;
        Ok(PgStore {
            pool,
            url,
            run_session: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// The database's URL, redacted.
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// Closes the pool and the run session.
    pub async fn close(self) {
        self.run_session.lock().await.take();
        self.pool.close().await;
    }
}

/// The options every connection uses: slow statements logged at debug level.
fn base_options(url: &DbUrl) -> sqlx::postgres::PgConnectOptions {
    url.options()
        .clone()
        .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT)
}

/// Opens one connection outside the pool (the writer's, a lock's, the run
/// session's) within [`CONNECT_TIMEOUT`], with an error naming the database.
async fn connect(
    url: &DbUrl,
    options: sqlx::postgres::PgConnectOptions,
) -> Result<PgConnection, PgStoreError> {
    let options = options.log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT);
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(PgStoreError::Connect {
            url: url.clone(),
            detail: url.scrub(&e.to_string()),
        }),
        Err(_) => Err(PgStoreError::ConnectTimeout {
            url: url.clone(),
            after: CONNECT_TIMEOUT,
        }),
    }
}

/// The newest migration this build knows.
fn known_version() -> i64 {
    PG_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database migrated by a newer jobtrail, before touching it.
/// Returns its schema version (`None`: never migrated).
async fn check_schema_version(
    conn: &mut PgConnection,
    url: &DbUrl,
) -> Result<Option<i64>, PgStoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?;
    let known = known_version();
    match found {
        Some(found) if found > known => Err(PgStoreError::NewerSchema {
            url: url.clone(),
            found,
            known,
        }),
        found => Ok(Some(found.unwrap_or(0))),
    }
}

/// Times are stored to the millisecond, as on SQLite (`normalize::format_utc`),
/// so the same history reads the same from either backend.
fn to_millis(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}
